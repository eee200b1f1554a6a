/*
 * json: strict parsing and field validation of request bodies (json-c).
 * Bodies must be one JSON object, valid UTF-8, nesting at most JSON_MAX_DEPTH,
 * with nothing after it. Field helpers say exactly what is wrong, for the
 * 422 message the client sees.
 */
#ifndef MJS_COMMON_JSON_H
#define MJS_COMMON_JSON_H

#include <json-c/json.h>
#include <stddef.h>

#define JSON_MAX_DEPTH 16

enum json_body_rc { JSON_BODY_OK = 0, JSON_BODY_SYNTAX = -1, JSON_BODY_NOT_OBJECT = -2 };

/* Parses body into *out (caller json_object_put()s it on success). */
enum json_body_rc json_body_parse(const char *body, size_t len, struct json_object **out);

/* Field validation flags. */
#define JSON_FIELD_TRIM        1	/* strip leading and trailing white space first */
#define JSON_FIELD_SINGLE_LINE 2	/* no control characters at all */

enum json_field_rc { JSON_FIELD_OK = 0, JSON_FIELD_ABSENT = 1, JSON_FIELD_INVALID = -1 };

/*
 * Reads string field key of obj into a new NUL-terminated copy *out (caller frees).
 * Length is counted in characters (code points) after trimming. A string with a
 * NUL character is invalid (PostgreSQL text cannot hold it). JSON null counts as
 * absent. On JSON_FIELD_INVALID, err holds a message naming the field.
 */
enum json_field_rc json_field_string_dup(struct json_object *obj, const char *key, size_t min_chars,
					 size_t max_chars, int flags, char **out, char *err, size_t errlen);

enum json_field_rc json_field_bool(struct json_object *obj, const char *key, int *out, char *err,
				   size_t errlen);

/* Number of UTF-8 code points in s[0..len). */
size_t json_utf8_chars(const char *s, size_t len);

#endif
