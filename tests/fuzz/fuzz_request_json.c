/*
 * fuzz_request_json: a request body (common/json) as the API reads it, any
 * bytes: the body parser and the field checks of every handler. A body is
 * accepted only as one JSON object, and every string a handler takes from it
 * is valid UTF-8 without NUL, within its bounds in characters.
 */
#include "common/json.h"
#include "common/util.h"

#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void field(struct json_object *o, const char *key, size_t min, size_t max, int flags)
{
	char *s = NULL, err[160];
	enum json_field_rc rc = json_field_string_dup(o, key, min, max, flags, &s, err, sizeof(err));

	if (rc == JSON_FIELD_OK) {
		size_t n = strlen(s), chars = json_utf8_chars(s, n);
		if (!util_utf8_valid(s, n) || chars < min || chars > max)
			abort();
		if (flags & JSON_FIELD_SINGLE_LINE)
			for (size_t i = 0; i < n; i++)
				if ((unsigned char)s[i] < ' ')
					abort();
	} else if (rc == JSON_FIELD_INVALID && !util_utf8_valid(err, strlen(err))) {
		abort();
	}
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *o = NULL;
	char err[160];
	int b;

	if (json_body_parse((const char *)data, size, &o) != JSON_BODY_OK) {
		json_object_put(o);
		return 0;
	}
	if (!json_object_is_type(o, json_type_object))
		abort();
	field(o, "title", 1, 200, JSON_FIELD_TRIM | JSON_FIELD_SINGLE_LINE);
	field(o, "content", 1, 200000, 0);
	field(o, "model", 1, 200, JSON_FIELD_TRIM | JSON_FIELD_SINGLE_LINE);
	field(o, "username", 3, 32, JSON_FIELD_TRIM);
	field(o, "password", 1, 256, 0);
	field(o, "prompt", 1, 4000, 0);
	json_field_bool(o, "blurred", &b, err, sizeof(err));
	json_object_put(o);
	return 0;
}
