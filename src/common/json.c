/*
 * json: request body parsing and field checks on top of json-c.
 */
#include "common/json.h"

#include "common/util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A strict RFC 8259 checker run before json-c, because json-c's STRICT mode
 * still takes single quotes, NaN, raw control characters in strings, overlong
 * UTF-8 and surrogates, and counts depth one off. After it passes, json-c only
 * builds the tree. Depth counts objects and arrays: "{}" is depth 1.
 */
struct jcheck {
	const unsigned char *s;
	size_t len, i;
	int depth;
};

static void jc_space(struct jcheck *c)
{
	while (c->i < c->len && (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\n' ||
				 c->s[c->i] == '\r'))
		c->i++;
}

static int jc_lit(struct jcheck *c, const char *word)
{
	size_t n = strlen(word);

	if (c->len - c->i < n || memcmp(c->s + c->i, word, n) != 0)
		return -1;
	c->i += n;
	return 0;
}

static int jc_digits(struct jcheck *c)
{
	size_t start = c->i;

	while (c->i < c->len && c->s[c->i] >= '0' && c->s[c->i] <= '9')
		c->i++;
	return c->i > start ? 0 : -1;
}

static int jc_number(struct jcheck *c)
{
	if (c->s[c->i] == '-')
		c->i++;
	if (c->i < c->len && c->s[c->i] == '0')
		c->i++;
	else if (jc_digits(c) < 0)
		return -1;
	if (c->i < c->len && c->s[c->i] == '.') {
		c->i++;
		if (jc_digits(c) < 0)
			return -1;
	}
	if (c->i < c->len && (c->s[c->i] == 'e' || c->s[c->i] == 'E')) {
		c->i++;
		if (c->i < c->len && (c->s[c->i] == '+' || c->s[c->i] == '-'))
			c->i++;
		if (jc_digits(c) < 0)
			return -1;
	}
	return 0;
}

static int jc_hex4(struct jcheck *c)
{
	if (c->len - c->i < 4)
		return -1;
	for (int k = 0; k < 4; k++)
		if (!isxdigit(c->s[c->i + k]))
			return -1;
	c->i += 4;
	return 0;
}

/* A string from its opening quote; raw bytes must be valid UTF-8 (util_utf8_valid). */
static int jc_string(struct jcheck *c)
{
	size_t run;

	c->i++;
	for (;;) {
		run = c->i;
		while (c->i < c->len && c->s[c->i] != '"' && c->s[c->i] != '\\' && c->s[c->i] >= 0x20)
			c->i++;
		if (!util_utf8_valid((const char *)c->s + run, c->i - run))
			return -1;
		if (c->i >= c->len || c->s[c->i] < 0x20)
			return -1;
		if (c->s[c->i] == '"') {
			c->i++;
			return 0;
		}
		c->i++;			/* backslash */
		if (c->i >= c->len)
			return -1;
		switch (c->s[c->i++]) {
		case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
			break;
		case 'u':
			if (jc_hex4(c) < 0)
				return -1;
			break;
		default:
			return -1;
		}
	}
}

static int jc_value(struct jcheck *c);

/* An object or array from its opening bracket. */
static int jc_container(struct jcheck *c)
{
	int object = c->s[c->i] == '{';
	unsigned char close = object ? '}' : ']';

	if (++c->depth > JSON_MAX_DEPTH)
		return -1;
	c->i++;
	jc_space(c);
	if (c->i < c->len && c->s[c->i] == close)
		goto done;
	for (;;) {
		if (object) {
			if (c->i >= c->len || c->s[c->i] != '"' || jc_string(c) < 0)
				return -1;
			jc_space(c);
			if (c->i >= c->len || c->s[c->i++] != ':')
				return -1;
		}
		if (jc_value(c) < 0)
			return -1;
		jc_space(c);
		if (c->i >= c->len)
			return -1;
		if (c->s[c->i] == close)
			goto done;
		if (c->s[c->i++] != ',')
			return -1;
		jc_space(c);
	}
done:
	c->i++;
	c->depth--;
	return 0;
}

static int jc_value(struct jcheck *c)
{
	jc_space(c);
	if (c->i >= c->len)
		return -1;
	switch (c->s[c->i]) {
	case '{': case '[':
		return jc_container(c);
	case '"':
		return jc_string(c);
	case 't':
		return jc_lit(c, "true");
	case 'f':
		return jc_lit(c, "false");
	case 'n':
		return jc_lit(c, "null");
	default:
		if (c->s[c->i] == '-' || (c->s[c->i] >= '0' && c->s[c->i] <= '9'))
			return jc_number(c);
		return -1;
	}
}

enum json_body_rc json_body_parse(const char *body, size_t len, struct json_object **out)
{
	struct jcheck c = { .s = (const unsigned char *)body, .len = len };
	struct json_tokener *tok = NULL;
	struct json_object *obj = NULL;
	enum json_body_rc rc = JSON_BODY_SYNTAX;
	char *copy = NULL;

	*out = NULL;
	if (len == 0 || len >= (size_t)INT32_MAX)
		return JSON_BODY_SYNTAX;
	if (jc_value(&c) < 0)
		return JSON_BODY_SYNTAX;
	jc_space(&c);
	if (c.i != len)
		return JSON_BODY_SYNTAX;
	c.i = 0;
	jc_space(&c);
	if (body[c.i] != '{')
		return JSON_BODY_NOT_OBJECT;

	/* Valid and NUL-free now; json-c gets a terminated copy so it sees the end. */
	copy = malloc(len + 1);
	tok = json_tokener_new_ex(JSON_MAX_DEPTH + 1);
	if (!copy || !tok)
		goto out;
	memcpy(copy, body, len);
	copy[len] = '\0';
	obj = json_tokener_parse_ex(tok, copy, (int)len + 1);
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(obj, json_type_object))
		goto out;
	*out = obj;
	obj = NULL;
	rc = JSON_BODY_OK;
out:
	json_object_put(obj);
	json_tokener_free(tok);
	free(copy);
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
