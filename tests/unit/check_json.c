/*
 * check_json: common/json — what json_body_parse accepts as a request body, and
 * the 422 rules of the field helpers (absent vs null vs wrong type, trimming,
 * lengths in code points, control characters, NUL).
 */
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "suites.h"

/* json_body_parse on exactly len bytes of s (a heap copy, so ASan sees any over-read). */
static enum json_body_rc parse_n(const char *s, size_t len)
{
	struct json_object *obj = (struct json_object *)1;
	char *copy = malloc(len ? len : 1);
	enum json_body_rc rc;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, s, len);
	rc = json_body_parse(copy, len, &obj);
	free(copy);
	if (rc == JSON_BODY_OK)
		ck_assert_ptr_nonnull(obj);
	else
		ck_assert_ptr_null(obj);
	json_object_put(obj);
	return rc;
}

static enum json_body_rc parse(const char *s)
{
	return parse_n(s, strlen(s));
}

#define ASSERT_BODY(s, want) \
	ck_assert_msg(parse(s) == (want), "body \"%s\": got %d, want %d", (s), parse(s), (want))

/* n nested objects {"a":{"a":...1...}} */
static char *nested_objects(int n)
{
	char *s = malloc((size_t)n * 6 + 2);
	size_t o = 0;

	ck_assert_ptr_nonnull(s);
	for (int i = 0; i < n; i++) {
		memcpy(s + o, "{\"a\":", 5);
		o += 5;
	}
	s[o++] = '1';
	for (int i = 0; i < n; i++)
		s[o++] = '}';
	s[o] = '\0';
	return s;
}

/* A body {"<key>": <value>} parsed for the field tests; value is JSON text. */
static struct json_object *body_with(const char *key, const char *value)
{
	struct json_object *obj = json_object_new_object();

	ck_assert_ptr_nonnull(obj);
	json_object_object_add(obj, key, value ? json_tokener_parse(value) : NULL);
	return obj;
}

START_TEST(test_body_parse_accepts_an_object)
{
	struct json_object *obj = NULL, *v;
	const char body[] = "{\"title\":\"hi\",\"n\":[1,2,{\"x\":null}],\"ok\":true}";

	ck_assert_int_eq(json_body_parse(body, strlen(body), &obj), JSON_BODY_OK);
	ck_assert_ptr_nonnull(obj);
	ck_assert(json_object_object_get_ex(obj, "title", &v));
	ck_assert_str_eq(json_object_get_string(v), "hi");
	json_object_put(obj);
	ASSERT_BODY("{}", JSON_BODY_OK);
}
END_TEST

START_TEST(test_body_parse_allows_surrounding_white_space)
{
	ASSERT_BODY("{} ", JSON_BODY_OK);
	ASSERT_BODY("{}\r\n", JSON_BODY_OK);
	ASSERT_BODY("{}\t \n\n", JSON_BODY_OK);
	ASSERT_BODY(" \n{\"a\" : 1 }", JSON_BODY_OK);
}
END_TEST

START_TEST(test_body_parse_non_objects_are_not_object)
{
	ASSERT_BODY("[]", JSON_BODY_NOT_OBJECT);
	ASSERT_BODY("[{\"a\":1}]", JSON_BODY_NOT_OBJECT);
	ASSERT_BODY("\"s\"", JSON_BODY_NOT_OBJECT);
	ASSERT_BODY("123 ", JSON_BODY_NOT_OBJECT);
	ASSERT_BODY("-1.5e3\n", JSON_BODY_NOT_OBJECT);
	ASSERT_BODY("true ", JSON_BODY_NOT_OBJECT);
}
END_TEST

/* A number or literal ending exactly at the end of the body, and a top-level null. */
START_TEST(test_body_parse_bare_scalars_and_null_are_not_object)
{
	ASSERT_BODY("123", JSON_BODY_NOT_OBJECT);
	ASSERT_BODY("true", JSON_BODY_NOT_OBJECT);
	ASSERT_BODY("null", JSON_BODY_NOT_OBJECT);
	ASSERT_BODY("null\n", JSON_BODY_NOT_OBJECT);
}
END_TEST

START_TEST(test_body_parse_malformed_is_syntax)
{
	static const char *const bad[] = {
		"{", "}", "{\"a\":", "{\"a\":1", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "{\"a\":01}",
		"{\"a\":tru}", "{\"a\":\"x}", "{\"a\":[1,]}", "{\"a\":[1}", "{\"a\":\"\\x\"}",
		"{\"a\":\"\\u12\"}", "{,}", "{\"a\":1 \"b\":2}", "x", "{\"a\":-}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ASSERT_BODY(bad[i], JSON_BODY_SYNTAX);
}
END_TEST

/* json-c's STRICT mode alone takes these extensions. */
START_TEST(test_body_parse_rejects_json_extensions)
{
	ASSERT_BODY("{'a':1}", JSON_BODY_SYNTAX);
	ASSERT_BODY("{\"a\":NaN}", JSON_BODY_SYNTAX);
	ASSERT_BODY("{\"a\":\"tab\there\"}", JSON_BODY_SYNTAX);
}
END_TEST

START_TEST(test_body_parse_trailing_garbage_is_syntax)
{
	ASSERT_BODY("{} x", JSON_BODY_SYNTAX);
	ASSERT_BODY("{}{}", JSON_BODY_SYNTAX);
	ASSERT_BODY("{} {}", JSON_BODY_SYNTAX);
	ASSERT_BODY("{}]", JSON_BODY_SYNTAX);
	ASSERT_BODY("{},", JSON_BODY_SYNTAX);
	ASSERT_BODY("{}\f", JSON_BODY_SYNTAX);
	ASSERT_BODY("[] x", JSON_BODY_SYNTAX);
	ck_assert_int_eq(parse_n("{}\0", 3), JSON_BODY_SYNTAX);
	ck_assert_int_eq(parse_n("{}\0{}", 5), JSON_BODY_SYNTAX);
}
END_TEST

START_TEST(test_body_parse_truncated_is_syntax)
{
	const char body[] = "{\"title\":\"hello\",\"n\":[1,2]}";

	for (size_t len = 1; len < sizeof(body) - 1; len++)
		ck_assert_msg(parse_n(body, len) == JSON_BODY_SYNTAX, "prefix of %zu bytes accepted", len);
	ck_assert_int_eq(parse_n(body, sizeof(body) - 1), JSON_BODY_OK);
}
END_TEST

START_TEST(test_body_parse_invalid_utf8_bytes_are_syntax)
{
	ASSERT_BODY("{\"a\":\"\xff\"}", JSON_BODY_SYNTAX);
	ASSERT_BODY("{\"a\":\"\xfe\"}", JSON_BODY_SYNTAX);
	ASSERT_BODY("{\"a\":\"\x80\"}", JSON_BODY_SYNTAX);		/* lone continuation byte */
	ASSERT_BODY("{\"a\":\"\xc3\"}", JSON_BODY_SYNTAX);		/* truncated sequence */
	ASSERT_BODY("{\"a\":\"\xe2\x82\"}", JSON_BODY_SYNTAX);
	ASSERT_BODY("{\"\xff\":1}", JSON_BODY_SYNTAX);
	ASSERT_BODY("{\"a\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}", JSON_BODY_OK);
}
END_TEST

/* json-c's own UTF-8 check only counts continuation bytes. */
START_TEST(test_body_parse_overlongs_and_surrogates_are_syntax)
{
	ASSERT_BODY("{\"a\":\"\xc0\xaf\"}", JSON_BODY_SYNTAX);		/* overlong '/' */
	ASSERT_BODY("{\"a\":\"\xc0\x80\"}", JSON_BODY_SYNTAX);		/* overlong NUL */
	ASSERT_BODY("{\"a\":\"\xe0\x80\xaf\"}", JSON_BODY_SYNTAX);	/* overlong, 3 bytes */
	ASSERT_BODY("{\"a\":\"\xed\xa0\x80\"}", JSON_BODY_SYNTAX);	/* U+D800 */
	ASSERT_BODY("{\"a\":\"\xf4\x90\x80\x80\"}", JSON_BODY_SYNTAX);	/* U+110000 */
	ASSERT_BODY("{\"a\":\"\xf5\x80\x80\x80\"}", JSON_BODY_SYNTAX);
}
END_TEST

START_TEST(test_body_parse_nesting_deeper_than_max_is_syntax)
{
	char *s = nested_objects(JSON_MAX_DEPTH + 1);

	ck_assert_int_eq(parse(s), JSON_BODY_SYNTAX);
	free(s);
	s = nested_objects(200);
	ck_assert_int_eq(parse(s), JSON_BODY_SYNTAX);
	free(s);
	s = nested_objects(JSON_MAX_DEPTH - 1);
	ck_assert_int_eq(parse(s), JSON_BODY_OK);
	free(s);
}
END_TEST

/* json-c's own depth limit lets through one level less than JSON_MAX_DEPTH. */
START_TEST(test_body_parse_nesting_of_exactly_max_depth_is_ok)
{
	char *s = nested_objects(JSON_MAX_DEPTH);

	ck_assert_int_eq(parse(s), JSON_BODY_OK);
	free(s);
}
END_TEST

START_TEST(test_body_parse_empty_body_is_syntax)
{
	struct json_object *obj = (struct json_object *)1;

	ck_assert_int_eq(json_body_parse("", 0, &obj), JSON_BODY_SYNTAX);
	ck_assert_ptr_null(obj);
	ASSERT_BODY(" ", JSON_BODY_SYNTAX);
	ASSERT_BODY("\r\n\r\n", JSON_BODY_SYNTAX);
}
END_TEST

START_TEST(test_field_string_absent_null_and_wrong_type)
{
	static const char *const wrong[] = { "1", "1.5", "true", "{}", "[\"x\"]" };
	struct json_object *obj = body_with("title", "\"x\"");
	char *out = (char *)1, err[128] = "";

	ck_assert_int_eq(json_field_string_dup(obj, "other", 0, 10, 0, &out, err, sizeof(err)),
			 JSON_FIELD_ABSENT);
	ck_assert_ptr_null(out);
	json_object_put(obj);

	obj = body_with("title", NULL);
	out = (char *)1;
	ck_assert_int_eq(json_field_string_dup(obj, "title", 1, 10, 0, &out, err, sizeof(err)),
			 JSON_FIELD_ABSENT);
	ck_assert_ptr_null(out);
	json_object_put(obj);

	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		obj = body_with("title", wrong[i]);
		ck_assert_int_eq(json_field_string_dup(obj, "title", 0, 10, 0, &out, err, sizeof(err)),
				 JSON_FIELD_INVALID);
		ck_assert_ptr_null(out);
		ck_assert_str_eq(err, "title must be a string");
		json_object_put(obj);
	}
}
END_TEST

START_TEST(test_field_string_returns_a_copy)
{
	struct json_object *obj = body_with("content", "\"h\\u00e9llo \\\"w\\\"\"");
	char *out = NULL, err[128];

	ck_assert_int_eq(json_field_string_dup(obj, "content", 0, 100, 0, &out, err, sizeof(err)),
			 JSON_FIELD_OK);
	ck_assert_str_eq(out, "h\xc3\xa9llo \"w\"");
	json_object_put(obj);	/* the copy outlives the body */
	ck_assert_str_eq(out, "h\xc3\xa9llo \"w\"");
	free(out);
}
END_TEST

START_TEST(test_field_string_trims_only_when_asked)
{
	struct json_object *obj = body_with("title", "\" \\t hi there \\r\\n \"");
	char *out = NULL, err[128];

	ck_assert_int_eq(json_field_string_dup(obj, "title", 1, 100, JSON_FIELD_TRIM, &out, err, sizeof(err)),
			 JSON_FIELD_OK);
	ck_assert_str_eq(out, "hi there");
	free(out);
	ck_assert_int_eq(json_field_string_dup(obj, "title", 1, 100, 0, &out, err, sizeof(err)), JSON_FIELD_OK);
	ck_assert_str_eq(out, " \t hi there \r\n ");
	free(out);
	/* trimmed before the control character check */
	ck_assert_int_eq(json_field_string_dup(obj, "title", 1, 100, JSON_FIELD_TRIM | JSON_FIELD_SINGLE_LINE,
					       &out, err, sizeof(err)), JSON_FIELD_OK);
	ck_assert_str_eq(out, "hi there");
	free(out);
	json_object_put(obj);
}
END_TEST

START_TEST(test_field_string_min_counts_after_trimming)
{
	struct json_object *obj = body_with("title", "\"   \"");
	char *out = NULL, err[128];

	ck_assert_int_eq(json_field_string_dup(obj, "title", 1, 100, JSON_FIELD_TRIM, &out, err, sizeof(err)),
			 JSON_FIELD_INVALID);
	ck_assert_ptr_null(out);
	ck_assert_str_eq(err, "title must not be empty");
	ck_assert_int_eq(json_field_string_dup(obj, "title", 1, 100, 0, &out, err, sizeof(err)), JSON_FIELD_OK);
	free(out);
	json_object_put(obj);

	obj = body_with("password", "\"\\u00e9\\u00e9\\u00e9\"");	/* 3 chars, 6 bytes */
	ck_assert_int_eq(json_field_string_dup(obj, "password", 4, 100, 0, &out, err, sizeof(err)),
			 JSON_FIELD_INVALID);
	ck_assert_str_eq(err, "password must be at least 4 characters");
	ck_assert_int_eq(json_field_string_dup(obj, "password", 3, 100, 0, &out, err, sizeof(err)),
			 JSON_FIELD_OK);
	free(out);
	json_object_put(obj);

	obj = body_with("title", "\"\"");
	ck_assert_int_eq(json_field_string_dup(obj, "title", 0, 100, 0, &out, err, sizeof(err)), JSON_FIELD_OK);
	ck_assert_str_eq(out, "");
	free(out);
	json_object_put(obj);
}
END_TEST

/* A JSON string of n copies of the UTF-8 text unit. */
static struct json_object *body_repeated(const char *key, const char *unit, size_t n)
{
	size_t ulen = strlen(unit);
	char *s = malloc(n * ulen + 1);
	struct json_object *obj = json_object_new_object();

	ck_assert_ptr_nonnull(s);
	for (size_t i = 0; i < n; i++)
		memcpy(s + i * ulen, unit, ulen);
	s[n * ulen] = '\0';
	json_object_object_add(obj, key, json_object_new_string(s));
	free(s);
	return obj;
}

START_TEST(test_field_string_max_counts_code_points_not_bytes)
{
	struct json_object *obj = body_repeated("title", "\xc3\xa9", 200);	/* 200 x é, 400 bytes */
	char *out = NULL, err[128];

	ck_assert_int_eq(json_field_string_dup(obj, "title", 1, 200, 0, &out, err, sizeof(err)), JSON_FIELD_OK);
	ck_assert_uint_eq(strlen(out), 400);
	free(out);
	json_object_put(obj);

	obj = body_repeated("title", "\xc3\xa9", 201);
	ck_assert_int_eq(json_field_string_dup(obj, "title", 1, 200, 0, &out, err, sizeof(err)),
			 JSON_FIELD_INVALID);
	ck_assert_ptr_null(out);
	ck_assert_str_eq(err, "title must be at most 200 characters");
	json_object_put(obj);

	obj = body_repeated("title", "\xf0\x9f\x98\x80", 200);	/* 4-byte code points */
	ck_assert_int_eq(json_field_string_dup(obj, "title", 1, 200, 0, &out, err, sizeof(err)), JSON_FIELD_OK);
	free(out);
	json_object_put(obj);

	obj = body_repeated("title", "a", 201);
	ck_assert_int_eq(json_field_string_dup(obj, "title", 1, 200, 0, &out, err, sizeof(err)),
			 JSON_FIELD_INVALID);
	json_object_put(obj);
}
END_TEST

START_TEST(test_field_string_single_line_rejects_control_characters)
{
	static const char *const bad[] = {
		"\"a\\nb\"", "\"a\\tb\"", "\"a\\rb\"", "\"\\u0001\"", "\"a\\u001fb\"", "\"del\\u007f\"",
	};
	struct json_object *obj;
	char *out = NULL, err[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		obj = body_with("title", bad[i]);
		ck_assert_msg(json_field_string_dup(obj, "title", 0, 100, JSON_FIELD_SINGLE_LINE, &out, err,
						    sizeof(err)) == JSON_FIELD_INVALID, "%s accepted", bad[i]);
		ck_assert_ptr_null(out);
		ck_assert_str_eq(err, "title must not contain control characters");
		/* multi-line fields take them */
		ck_assert_int_eq(json_field_string_dup(obj, "title", 0, 100, 0, &out, err, sizeof(err)),
				 JSON_FIELD_OK);
		free(out);
		out = NULL;
		json_object_put(obj);
	}
}
END_TEST

START_TEST(test_field_string_embedded_nul_is_invalid)
{
	struct json_object *obj = body_with("content", "\"a\\u0000b\"");
	char *out = NULL, err[128];

	ck_assert_int_eq(json_field_string_dup(obj, "content", 0, 100, 0, &out, err, sizeof(err)),
			 JSON_FIELD_INVALID);
	ck_assert_ptr_null(out);
	ck_assert_str_eq(err, "content must not contain NUL characters");
	ck_assert_int_eq(json_field_string_dup(obj, "content", 0, 100, JSON_FIELD_TRIM, &out, err, sizeof(err)),
			 JSON_FIELD_INVALID);
	json_object_put(obj);

	obj = body_with("content", "\"ab\\u0000\"");	/* not hidden by trimming either */
	ck_assert_int_eq(json_field_string_dup(obj, "content", 0, 100, JSON_FIELD_TRIM, &out, err, sizeof(err)),
			 JSON_FIELD_INVALID);
	json_object_put(obj);
}
END_TEST

START_TEST(test_field_bool_absent_null_and_wrong_type)
{
	static const char *const wrong[] = { "\"true\"", "1", "0", "{}", "[]" };
	struct json_object *obj = body_with("pinned", "true");
	int v = 7;
	char err[128];

	ck_assert_int_eq(json_field_bool(obj, "pinned", &v, err, sizeof(err)), JSON_FIELD_OK);
	ck_assert_int_eq(v, 1);
	v = 7;
	ck_assert_int_eq(json_field_bool(obj, "other", &v, err, sizeof(err)), JSON_FIELD_ABSENT);
	ck_assert_int_eq(v, 7);
	json_object_put(obj);

	obj = body_with("pinned", "false");
	ck_assert_int_eq(json_field_bool(obj, "pinned", &v, err, sizeof(err)), JSON_FIELD_OK);
	ck_assert_int_eq(v, 0);
	json_object_put(obj);

	obj = body_with("pinned", NULL);
	v = 7;
	ck_assert_int_eq(json_field_bool(obj, "pinned", &v, err, sizeof(err)), JSON_FIELD_ABSENT);
	ck_assert_int_eq(v, 7);
	json_object_put(obj);

	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		obj = body_with("pinned", wrong[i]);
		ck_assert_int_eq(json_field_bool(obj, "pinned", &v, err, sizeof(err)), JSON_FIELD_INVALID);
		ck_assert_str_eq(err, "pinned must be true or false");
		ck_assert_int_eq(v, 7);
		json_object_put(obj);
	}
}
END_TEST

START_TEST(test_utf8_chars_counts_code_points)
{
	static const char mixed[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";	/* a é € 😀 */

	ck_assert_uint_eq(json_utf8_chars("", 0), 0);
	ck_assert_uint_eq(json_utf8_chars("abc", 3), 3);
	ck_assert_uint_eq(json_utf8_chars("\xc3\xa9", 2), 1);
	ck_assert_uint_eq(json_utf8_chars("\xe2\x82\xac", 3), 1);
	ck_assert_uint_eq(json_utf8_chars("\xf0\x9f\x98\x80", 4), 1);
	ck_assert_uint_eq(json_utf8_chars(mixed, sizeof(mixed) - 1), 4);
	ck_assert_uint_eq(json_utf8_chars(mixed, 2), 2);	/* stops at len */
	ck_assert_uint_eq(json_utf8_chars("a\0b", 3), 3);
}
END_TEST

Suite *json_suite(void)
{
	Suite *s = suite_create("json");
	TCase *body = tcase_create("body");
	TCase *field = tcase_create("field");

	tcase_add_test(body, test_body_parse_accepts_an_object);
	tcase_add_test(body, test_body_parse_allows_surrounding_white_space);
	tcase_add_test(body, test_body_parse_non_objects_are_not_object);
	tcase_add_test(body, test_body_parse_malformed_is_syntax);
	tcase_add_test(body, test_body_parse_trailing_garbage_is_syntax);
	tcase_add_test(body, test_body_parse_truncated_is_syntax);
	tcase_add_test(body, test_body_parse_invalid_utf8_bytes_are_syntax);
	tcase_add_test(body, test_body_parse_nesting_deeper_than_max_is_syntax);
	tcase_add_test(body, test_body_parse_empty_body_is_syntax);
	tcase_add_test(body, test_body_parse_bare_scalars_and_null_are_not_object);
	tcase_add_test(body, test_body_parse_rejects_json_extensions);
	tcase_add_test(body, test_body_parse_overlongs_and_surrogates_are_syntax);
	tcase_add_test(body, test_body_parse_nesting_of_exactly_max_depth_is_ok);
	suite_add_tcase(s, body);

	tcase_add_test(field, test_field_string_absent_null_and_wrong_type);
	tcase_add_test(field, test_field_string_returns_a_copy);
	tcase_add_test(field, test_field_string_trims_only_when_asked);
	tcase_add_test(field, test_field_string_min_counts_after_trimming);
	tcase_add_test(field, test_field_string_max_counts_code_points_not_bytes);
	tcase_add_test(field, test_field_string_single_line_rejects_control_characters);
	tcase_add_test(field, test_field_string_embedded_nul_is_invalid);
	tcase_add_test(field, test_field_bool_absent_null_and_wrong_type);
	tcase_add_test(field, test_utf8_chars_counts_code_points);
	suite_add_tcase(s, field);

	return s;
}
