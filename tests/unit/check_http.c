/*
 * check_http: api/http — the pure request helpers (query parameters, cookies,
 * JSON media type, the Origin check) and the exact JSON error body.
 */
#include <string.h>

#include "api/http.h"
#include "suites.h"

START_TEST(test_query_param_finds_the_first_match)
{
	char out[64];

	ck_assert_int_eq(http_query_param("limit=20&cursor=abc", "limit", out, sizeof(out)), 2);
	ck_assert_str_eq(out, "20");
	ck_assert_int_eq(http_query_param("limit=20&cursor=abc", "cursor", out, sizeof(out)), 3);
	ck_assert_str_eq(out, "abc");
	ck_assert_int_eq(http_query_param("a=1&a=2", "a", out, sizeof(out)), 1);
	ck_assert_str_eq(out, "1");
	ck_assert_int_eq(http_query_param("&&a=1&", "a", out, sizeof(out)), 1);
	ck_assert_str_eq(out, "1");
	ck_assert_int_eq(http_query_param("a=x=y", "a", out, sizeof(out)), 3);
	ck_assert_str_eq(out, "x=y");
}
END_TEST

START_TEST(test_query_param_decodes_percent_and_plus)
{
	char out[64];

	ck_assert_int_eq(http_query_param("q=x%20y+z", "q", out, sizeof(out)), 5);
	ck_assert_str_eq(out, "x y z");
	ck_assert_int_eq(http_query_param("q=%2b%2B%25%3d%26", "q", out, sizeof(out)), 5);
	ck_assert_str_eq(out, "++%=&");
	ck_assert_int_eq(http_query_param("q=%C3%A9", "q", out, sizeof(out)), 2);
	ck_assert_str_eq(out, "\xc3\xa9");
	ck_assert_int_eq(http_query_param("q=%41", "q", out, sizeof(out)), 1);	/* escape at the very end */
	ck_assert_str_eq(out, "A");
}
END_TEST

START_TEST(test_query_param_malformed_escape_is_an_error)
{
	char out[64];

	ck_assert_int_eq(http_query_param("q=%G1", "q", out, sizeof(out)), -1);
	ck_assert_int_eq(http_query_param("q=%1G", "q", out, sizeof(out)), -1);
	ck_assert_int_eq(http_query_param("q=%4", "q", out, sizeof(out)), -1);
	ck_assert_int_eq(http_query_param("q=%", "q", out, sizeof(out)), -1);
	ck_assert_int_eq(http_query_param("q=%4&r=1", "q", out, sizeof(out)), -1);	/* not across '&' */
	ck_assert_int_eq(http_query_param("q=ab%", "q", out, sizeof(out)), -1);
}
END_TEST

START_TEST(test_query_param_too_long_for_out_is_an_error)
{
	char out[8];

	memset(out, 'Q', sizeof(out));
	ck_assert_int_eq(http_query_param("q=1234567", "q", out, sizeof(out)), 7);
	ck_assert_str_eq(out, "1234567");
	memset(out, 'Q', sizeof(out));
	ck_assert_int_eq(http_query_param("q=12345678", "q", out, sizeof(out)), -1);
	ck_assert_int_eq(http_query_param("q=%41%41%41%41%41%41%41%41", "q", out, sizeof(out)), -1);
	ck_assert_int_eq(http_query_param("q=%41%41%41%41%41%41%41", "q", out, sizeof(out)), 7);
	ck_assert_int_eq(http_query_param("q=x", "q", out, 1), -1);
	ck_assert_int_eq(http_query_param("q=", "q", out, 1), 0);
}
END_TEST

START_TEST(test_query_param_does_not_confuse_name_prefixes)
{
	char out[64];

	ck_assert_int_eq(http_query_param("xlimit=1", "limit", out, sizeof(out)), -1);
	ck_assert_int_eq(http_query_param("limitx=1", "limit", out, sizeof(out)), -1);
	ck_assert_int_eq(http_query_param("lim=1", "limit", out, sizeof(out)), -1);
	ck_assert_int_eq(http_query_param("xlimit=1&limit=2", "limit", out, sizeof(out)), 1);
	ck_assert_str_eq(out, "2");
	ck_assert_int_eq(http_query_param("a%3D1=2", "a", out, sizeof(out)), -1);
}
END_TEST

START_TEST(test_query_param_absent_or_without_value)
{
	char out[64];

	strcpy(out, "junk");
	ck_assert_int_eq(http_query_param("flag&b=1", "flag", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "");
	strcpy(out, "junk");
	ck_assert_int_eq(http_query_param("b=1&flag", "flag", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "");
	strcpy(out, "junk");
	ck_assert_int_eq(http_query_param("flag=", "flag", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(http_query_param("", "flag", out, sizeof(out)), -1);
	ck_assert_int_eq(http_query_param(NULL, "flag", out, sizeof(out)), -1);
	ck_assert_int_eq(http_query_param("b=1", "flag", out, sizeof(out)), -1);
}
END_TEST

START_TEST(test_query_has_whatever_the_value)
{
	char out[4];

	ck_assert_int_eq(http_query_param("q=%zz", "q", out, sizeof(out)), -1);	/* unreadable... */
	ck_assert_int_eq(http_query_has("q=%zz", "q"), 1);			/* ...but given */
	ck_assert_int_eq(http_query_has("a=1&q=123456789", "q"), 1);
	ck_assert_int_eq(http_query_has("a=1&q", "q"), 1);
	ck_assert_int_eq(http_query_has("qq=1&xq=2", "q"), 0);
	ck_assert_int_eq(http_query_has("", "q"), 0);
	ck_assert_int_eq(http_query_has(NULL, "q"), 0);
}
END_TEST

START_TEST(test_cookie_get_finds_one_among_several)
{
	char out[64];

	ck_assert_int_eq(http_cookie_get("a=1; mjs_session=tok; b=2", "mjs_session", out, sizeof(out)), 3);
	ck_assert_str_eq(out, "tok");
	ck_assert_int_eq(http_cookie_get("mjs_session=tok", "mjs_session", out, sizeof(out)), 3);
	ck_assert_str_eq(out, "tok");
	ck_assert_int_eq(http_cookie_get("a=1;mjs_session=tok;b=2", "mjs_session", out, sizeof(out)), 3);
	ck_assert_str_eq(out, "tok");
	ck_assert_int_eq(http_cookie_get("  a=1 ;  mjs_session=tok  ; b=2", "mjs_session", out, sizeof(out)), 3);
	ck_assert_str_eq(out, "tok");
	ck_assert_int_eq(http_cookie_get("a=1; b=2", "mjs_session", out, sizeof(out)), -1);
	ck_assert_int_eq(http_cookie_get("", "mjs_session", out, sizeof(out)), -1);
	ck_assert_int_eq(http_cookie_get("a=x=y", "a", out, sizeof(out)), 3);
	ck_assert_str_eq(out, "x=y");
	ck_assert_int_eq(http_cookie_get("a=", "a", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_cookie_get_strips_quotes)
{
	char out[64];

	ck_assert_int_eq(http_cookie_get("a=1; mjs_session=\"tok\"", "mjs_session", out, sizeof(out)), 3);
	ck_assert_str_eq(out, "tok");
	ck_assert_int_eq(http_cookie_get("s=\"\"", "s", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(http_cookie_get("s=\"x", "s", out, sizeof(out)), 2);	/* unbalanced: kept */
	ck_assert_str_eq(out, "\"x");
}
END_TEST

START_TEST(test_cookie_get_does_not_confuse_name_prefixes)
{
	char out[64];

	ck_assert_int_eq(http_cookie_get("xmjs_session=evil", "mjs_session", out, sizeof(out)), -1);
	ck_assert_int_eq(http_cookie_get("mjs_session_old=evil", "mjs_session", out, sizeof(out)), -1);
	ck_assert_int_eq(http_cookie_get("mjs_sess=evil", "mjs_session", out, sizeof(out)), -1);
	ck_assert_int_eq(http_cookie_get("xmjs_session=evil; mjs_session=good", "mjs_session", out,
					 sizeof(out)), 4);
	ck_assert_str_eq(out, "good");
	ck_assert_int_eq(http_cookie_get("a=mjs_session=evil", "mjs_session", out, sizeof(out)), -1);
}
END_TEST

START_TEST(test_cookie_get_too_long_for_out_is_an_error)
{
	char out[4];

	ck_assert_int_eq(http_cookie_get("s=abc", "s", out, sizeof(out)), 3);
	ck_assert_str_eq(out, "abc");
	ck_assert_int_eq(http_cookie_get("s=abcd", "s", out, sizeof(out)), -1);
	ck_assert_int_eq(http_cookie_get("s=\"abc\"", "s", out, sizeof(out)), 3);
}
END_TEST

START_TEST(test_is_json_type_accepts_parameters_and_any_case)
{
	ck_assert_int_eq(http_is_json_type("application/json"), 1);
	ck_assert_int_eq(http_is_json_type("application/json; charset=utf-8"), 1);
	ck_assert_int_eq(http_is_json_type("application/json;charset=UTF-8"), 1);
	ck_assert_int_eq(http_is_json_type("Application/JSON"), 1);
	ck_assert_int_eq(http_is_json_type(" application/json "), 1);
	ck_assert_int_eq(http_is_json_type("application/jsonx"), 0);
	ck_assert_int_eq(http_is_json_type("application/json-patch+json"), 0);
	ck_assert_int_eq(http_is_json_type("application/jso"), 0);
	ck_assert_int_eq(http_is_json_type("text/json"), 0);
	ck_assert_int_eq(http_is_json_type("text/plain; x=application/json"), 0);
	ck_assert_int_eq(http_is_json_type(""), 0);
	ck_assert_int_eq(http_is_json_type(NULL), 0);
}
END_TEST

START_TEST(test_origin_absent_is_allowed)
{
	ck_assert_int_eq(http_origin_allowed(NULL, "https://chat.example", "chat.example", 1), 1);
	ck_assert_int_eq(http_origin_allowed("", "https://chat.example", "chat.example", 1), 1);
	ck_assert_int_eq(http_origin_allowed(NULL, "", NULL, 0), 1);
}
END_TEST

START_TEST(test_origin_with_public_origin_is_exact_match_only)
{
	const char *pub = "https://chat.example";

	ck_assert_int_eq(http_origin_allowed("https://chat.example", pub, "other.example", 0), 1);
	ck_assert_int_eq(http_origin_allowed("http://chat.example", pub, "chat.example", 0), 0);
	ck_assert_int_eq(http_origin_allowed("https://chat.example:443", pub, "chat.example", 1), 0);
	ck_assert_int_eq(http_origin_allowed("https://chat.example.evil", pub, "chat.example", 1), 0);
	ck_assert_int_eq(http_origin_allowed("https://chat.exampl", pub, "chat.example", 1), 0);
	ck_assert_int_eq(http_origin_allowed("https://chat.example/", pub, "chat.example", 1), 0);
	/* the request's own Host does not matter once public_origin is set */
	ck_assert_int_eq(http_origin_allowed("https://evil.example", pub, "evil.example", 1), 0);
	ck_assert_int_eq(http_origin_allowed("null", pub, "chat.example", 1), 0);
}
END_TEST

START_TEST(test_origin_without_public_origin_compares_scheme_and_host)
{
	ck_assert_int_eq(http_origin_allowed("http://localhost:8080", NULL, "localhost:8080", 0), 1);
	ck_assert_int_eq(http_origin_allowed("http://localhost:8080", "", "localhost:8080", 0), 1);
	ck_assert_int_eq(http_origin_allowed("https://chat.example", "", "chat.example", 1), 1);
	ck_assert_int_eq(http_origin_allowed("HTTPS://Chat.Example", "", "chat.example", 1), 1);
	ck_assert_int_eq(http_origin_allowed("http://chat.example", "", "chat.example", 1), 0);
	ck_assert_int_eq(http_origin_allowed("https://chat.example", "", "chat.example", 0), 0);
	ck_assert_int_eq(http_origin_allowed("http://localhost", "", "localhost:8080", 0), 0);
	ck_assert_int_eq(http_origin_allowed("http://evil.example", "", "localhost:8080", 0), 0);
	ck_assert_int_eq(http_origin_allowed("http://localhost:8080", "", NULL, 0), 0);
	ck_assert_int_eq(http_origin_allowed("http://localhost:8080", "", "", 0), 0);
	ck_assert_int_eq(http_origin_allowed("null", "", "localhost", 0), 0);
}
END_TEST

START_TEST(test_error_body_is_the_documented_shape)
{
	struct http_response resp = { 0 };

	buf_puts(&resp.body, "previous body");
	http_error(&resp, 404, "not_found", "no such conversation");
	ck_assert_int_eq(resp.status, 404);
	ck_assert_str_eq(resp.body.data, "{\"error\":{\"code\":\"not_found\",\"message\":\"no such conversation\"}}");
	ck_assert_uint_eq(resp.body.len, strlen(resp.body.data));
	http_response_free(&resp);
}
END_TEST

START_TEST(test_error_body_escapes_quotes_and_controls)
{
	struct http_response resp = { 0 };

	http_error(&resp, 422, "invalid", "title \"x\" is bad\\\n/é");
	ck_assert_int_eq(resp.status, 422);
	ck_assert_str_eq(resp.body.data,
			 "{\"error\":{\"code\":\"invalid\",\"message\":\"title \\\"x\\\" is bad\\\\\\n/é\"}}");
	http_response_free(&resp);
}
END_TEST

START_TEST(test_json_sets_status_and_body_verbatim)
{
	struct http_response resp = { 0 };

	buf_puts(&resp.body, "old");
	http_json(&resp, 201, "{\"id\":\"x\"}");
	ck_assert_int_eq(resp.status, 201);
	ck_assert_str_eq(resp.body.data, "{\"id\":\"x\"}");
	http_response_free(&resp);
}
END_TEST

START_TEST(test_header_appends_one_crlf_line_each)
{
	struct http_response resp = { 0 };
	char big[2000];

	http_header(&resp, "Allow: %s", "GET, POST");
	http_header(&resp, "Set-Cookie: a=%d", 1);
	ck_assert_str_eq(resp.headers.data, "Allow: GET, POST\r\nSet-Cookie: a=1\r\n");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	http_header(&resp, "X-Big: %s", big);	/* too long: dropped, never cut */
	ck_assert_str_eq(resp.headers.data, "Allow: GET, POST\r\nSet-Cookie: a=1\r\n");
	http_response_free(&resp);
}
END_TEST

START_TEST(test_status_text_names_every_status_used)
{
	static const struct {
		int status;
		const char *text;
	} want[] = {
		{ 200, "OK" }, { 201, "Created" }, { 204, "No Content" }, { 400, "Bad Request" },
		{ 401, "Unauthorized" }, { 403, "Forbidden" }, { 404, "Not Found" },
		{ 405, "Method Not Allowed" }, { 409, "Conflict" }, { 413, "Payload Too Large" },
		{ 415, "Unsupported Media Type" }, { 422, "Unprocessable Entity" },
		{ 500, "Internal Server Error" }, { 503, "Service Unavailable" },
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_str_eq(http_status_text(want[i].status), want[i].text);
	ck_assert_str_eq(http_status_text(299), "Unknown");
	ck_assert_str_eq(http_status_text(0), "Unknown");
}
END_TEST

Suite *http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *query = tcase_create("query");
	TCase *cookie = tcase_create("cookie");
	TCase *checks = tcase_create("checks");
	TCase *resp = tcase_create("response");

	tcase_add_test(query, test_query_param_finds_the_first_match);
	tcase_add_test(query, test_query_param_decodes_percent_and_plus);
	tcase_add_test(query, test_query_param_malformed_escape_is_an_error);
	tcase_add_test(query, test_query_param_too_long_for_out_is_an_error);
	tcase_add_test(query, test_query_param_does_not_confuse_name_prefixes);
	tcase_add_test(query, test_query_param_absent_or_without_value);
	tcase_add_test(query, test_query_has_whatever_the_value);
	suite_add_tcase(s, query);

	tcase_add_test(cookie, test_cookie_get_finds_one_among_several);
	tcase_add_test(cookie, test_cookie_get_strips_quotes);
	tcase_add_test(cookie, test_cookie_get_does_not_confuse_name_prefixes);
	tcase_add_test(cookie, test_cookie_get_too_long_for_out_is_an_error);
	suite_add_tcase(s, cookie);

	tcase_add_test(checks, test_is_json_type_accepts_parameters_and_any_case);
	tcase_add_test(checks, test_origin_absent_is_allowed);
	tcase_add_test(checks, test_origin_with_public_origin_is_exact_match_only);
	tcase_add_test(checks, test_origin_without_public_origin_compares_scheme_and_host);
	suite_add_tcase(s, checks);

	tcase_add_test(resp, test_error_body_is_the_documented_shape);
	tcase_add_test(resp, test_error_body_escapes_quotes_and_controls);
	tcase_add_test(resp, test_json_sets_status_and_body_verbatim);
	tcase_add_test(resp, test_header_appends_one_crlf_line_each);
	tcase_add_test(resp, test_status_text_names_every_status_used);
	suite_add_tcase(s, resp);
	return s;
}
