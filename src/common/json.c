/*
 * json: request body parsing and field checks on top of json-c.
 */
#include "common/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum json_body_rc json_body_parse(const char *body, size_t len, struct json_object **out)
{
	struct json_tokener *tok;
	struct json_object *obj;
	enum json_body_rc rc = JSON_BODY_SYNTAX;
	size_t end;

	*out = NULL;
	if (len == 0 || len > (size_t)INT32_MAX)
		return JSON_BODY_SYNTAX;
	tok = json_tokener_new_ex(JSON_MAX_DEPTH);
	if (!tok)
		return JSON_BODY_SYNTAX;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, body, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success || !obj)
		goto out;
	/* only white space may follow the value */
	for (end = json_tokener_get_parse_end(tok); end < len; end++) {
		char c = body[end];
		if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
			goto out;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		rc = JSON_BODY_NOT_OBJECT;
		goto out;
	}
	*out = obj;
	obj = NULL;
	rc = JSON_BODY_OK;
out:
	json_object_put(obj);
	json_tokener_free(tok);
	return rc;
}

size_t json_utf8_chars(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			n++;
	return n;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

enum json_field_rc json_field_string_dup(struct json_object *obj, const char *key, size_t min_chars,
					 size_t max_chars, int flags, char **out, char *err, size_t errlen)
{
	struct json_object *v;
	const char *s;
	size_t len, chars;

	*out = NULL;
	if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null))
		return JSON_FIELD_ABSENT;
	if (!json_object_is_type(v, json_type_string)) {
		snprintf(err, errlen, "%s must be a string", key);
		return JSON_FIELD_INVALID;
	}
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (memchr(s, '\0', len)) {
		snprintf(err, errlen, "%s must not contain NUL characters", key);
		return JSON_FIELD_INVALID;
	}
	if (flags & JSON_FIELD_TRIM) {
		while (len > 0 && is_space(*s)) {
			s++;
			len--;
		}
		while (len > 0 && is_space(s[len - 1]))
			len--;
	}
	if (flags & JSON_FIELD_SINGLE_LINE) {
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c < 0x20 || c == 0x7f) {
				snprintf(err, errlen, "%s must not contain control characters", key);
				return JSON_FIELD_INVALID;
			}
		}
	}
	chars = json_utf8_chars(s, len);
	if (chars < min_chars) {
		if (min_chars == 1)
			snprintf(err, errlen, "%s must not be empty", key);
		else
			snprintf(err, errlen, "%s must be at least %zu characters", key, min_chars);
		return JSON_FIELD_INVALID;
	}
	if (chars > max_chars) {
		snprintf(err, errlen, "%s must be at most %zu characters", key, max_chars);
		return JSON_FIELD_INVALID;
	}
	*out = strndup(s, len);
	if (!*out) {
		snprintf(err, errlen, "out of memory");
		return JSON_FIELD_INVALID;
	}
	return JSON_FIELD_OK;
}

enum json_field_rc json_field_bool(struct json_object *obj, const char *key, int *out, char *err,
				   size_t errlen)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null))
		return JSON_FIELD_ABSENT;
	if (!json_object_is_type(v, json_type_boolean)) {
		snprintf(err, errlen, "%s must be true or false", key);
		return JSON_FIELD_INVALID;
	}
	*out = json_object_get_boolean(v);
	return JSON_FIELD_OK;
}
