/*
 * check_api: the pure helpers of the mjs-api handlers — the replay point of
 * GET /api/events, the conversation list cursor, and the session cookie.
 */
#include <stdint.h>
#include <string.h>

#include "api/auth.h"
#include "api/page.h"
#include "api/events_get.h"
#include "suites.h"

#define UUID_A "0b5e5a4c-6f1d-4c7e-9a3b-2d1f0e9c8b7a"

START_TEST(test_last_event_id_header_wins_over_query)
{
	struct sse_id v = { 0, 0 };

	ck_assert_int_eq(events_last_event_id("17", "last_event_id=99", &v), 0);
	ck_assert_int_eq(v.seq, 17);
	ck_assert_int_eq(v.epoch, 0);
	ck_assert_int_eq(events_last_event_id("3.17", "last_event_id=junk", &v), 0);
	ck_assert_int_eq(v.seq, 17);
	ck_assert_int_eq(v.epoch, 3);
	ck_assert_int_eq(events_last_event_id(NULL, NULL, &v), 0);
	ck_assert_int_eq(v.seq, -1);	/* none: from the head */
}
END_TEST

START_TEST(test_last_event_id_from_query_when_no_header)
{
	struct sse_id v = { 0, 0 };

	ck_assert_int_eq(events_last_event_id(NULL, "last_event_id=99", &v), 0);
	ck_assert_int_eq(v.seq, 99);
	ck_assert_int_eq(events_last_event_id("", "a=1&last_event_id=0", &v), 0);
	ck_assert_int_eq(v.seq, 0);
	ck_assert_int_eq(events_last_event_id(NULL, "last_event_id=%31%32", &v), 0);
	ck_assert_int_eq(v.seq, 12);
	ck_assert_int_eq(events_last_event_id(NULL, "last_event_id=2147483647.9", &v), 0);
	ck_assert_int_eq(v.epoch, 2147483647);
	ck_assert_int_eq(v.seq, 9);
}
END_TEST

START_TEST(test_last_event_id_invalid_is_an_error)
{
	struct sse_id v = { 0, 0 };

	ck_assert_int_eq(events_last_event_id("abc", NULL, &v), -1);
	ck_assert_int_eq(events_last_event_id("-1", NULL, &v), -1);
	ck_assert_int_eq(events_last_event_id(" 5", NULL, &v), -1);
	ck_assert_int_eq(events_last_event_id("99999999999999999999", NULL, &v), -1);
	ck_assert_int_eq(events_last_event_id("abc", "last_event_id=5", &v), -1);
	ck_assert_int_eq(events_last_event_id(NULL, "last_event_id=x", &v), -1);
	ck_assert_int_eq(events_last_event_id(NULL, "last_event_id=", &v), -1);
	ck_assert_int_eq(events_last_event_id("0.5", NULL, &v), -1);		/* epochs start at 1 */
	ck_assert_int_eq(events_last_event_id("2147483648.5", NULL, &v), -1);
	ck_assert_int_eq(events_last_event_id(".5", NULL, &v), -1);
	ck_assert_int_eq(events_last_event_id("1.", NULL, &v), -1);
	ck_assert_int_eq(events_last_event_id("1.2.3", NULL, &v), -1);
	ck_assert_int_eq(events_last_event_id("1.-2", NULL, &v), -1);
	/* given in the query but too long to be an id: an error, not a stream from the head */
	ck_assert_int_eq(events_last_event_id(NULL, "last_event_id=1111111111111111111111111111111111111111111111111111",
					      &v), -1);
	ck_assert_int_eq(events_last_event_id(NULL, "a=1&last_event_id=%zz", &v), -1);
}
END_TEST

START_TEST(test_last_event_id_absent_is_zero_with_minus_one)
{
	struct sse_id v = { 4, 123 };

	ck_assert_int_eq(events_last_event_id(NULL, NULL, &v), 0);
	ck_assert_int_eq(v.seq, -1);
	ck_assert_int_eq(v.epoch, 0);
	v.seq = 123;
	ck_assert_int_eq(events_last_event_id("", "", &v), 0);
	ck_assert_int_eq(v.seq, -1);
	v.seq = 123;
	ck_assert_int_eq(events_last_event_id(NULL, "xlast_event_id=5&other=1", &v), 0);
	ck_assert_int_eq(v.seq, -1);
}
END_TEST

START_TEST(test_parse_cursor_splits_usec_and_id)
{
	char usec[24], id[37];

	ck_assert_int_eq(page_parse_cursor("1712345678901234_" UUID_A, usec, sizeof(usec), id), 0);
	ck_assert_str_eq(usec, "1712345678901234");
	ck_assert_str_eq(id, UUID_A);
	ck_assert_int_eq(page_parse_cursor("0_" UUID_A, usec, sizeof(usec), id), 0);
	ck_assert_str_eq(usec, "0");
	ck_assert_int_eq(page_parse_cursor("999999999999999999_" UUID_A, usec, sizeof(usec), id), 0);
	ck_assert_str_eq(usec, "999999999999999999");
}
END_TEST

START_TEST(test_parse_cursor_rejects_malformed)
{
	static const char *const bad[] = {
		"", "_", "123", "123_", "_" UUID_A, "12a_" UUID_A, "-1_" UUID_A, "+1_" UUID_A,
		"1 _" UUID_A, "1234567890123456789_" UUID_A,		/* 19 digits */
		"1_0b5e5a4c-6f1d-4c7e-9a3b-2d1f0e9c8b7", "1_" UUID_A "x", "1_" UUID_A "_",
		"1__" UUID_A, "1_0b5e5a4c-6f1d-4c7e-9a3b-2d1f0e9c8b7g", UUID_A "_1",
	};
	char usec[24], id[37];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(page_parse_cursor(bad[i], usec, sizeof(usec), id) == -1,
			      "\"%s\" was accepted", bad[i]);
	/* a usec buffer too small for the digits is an error, not an overflow */
	ck_assert_int_eq(page_parse_cursor("12345_" UUID_A, usec, 5, id), -1);
	ck_assert_int_eq(page_parse_cursor("1234_" UUID_A, usec, 5, id), 0);
	ck_assert_str_eq(usec, "1234");
}
END_TEST

START_TEST(test_cookie_value_sets_the_session_attributes)
{
	char out[256];

	auth_cookie_value(out, sizeof(out), "tok", 2592000, 0);
	ck_assert_str_eq(out, "mjs_session=tok; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax");
	ck_assert_ptr_null(strstr(out, "Secure"));
}
END_TEST

START_TEST(test_cookie_value_secure_only_when_asked)
{
	char out[256];

	auth_cookie_value(out, sizeof(out), "tok", 60, 1);
	/* __Host-: the browser keeps it only from a secure origin, for Path=/ and without Domain */
	ck_assert_str_eq(out, "__Host-mjs_session=tok; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure");
	ck_assert_ptr_nonnull(strstr(out, "HttpOnly"));
	ck_assert_ptr_nonnull(strstr(out, "SameSite=Lax"));
}
END_TEST

START_TEST(test_cookie_value_max_age_zero_clears)
{
	char out[256];

	auth_cookie_value(out, sizeof(out), "", 0, 1);
	ck_assert_str_eq(out, "__Host-mjs_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure");
	auth_cookie_value(out, sizeof(out), "", 0, 0);
	ck_assert_str_eq(out, "mjs_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
}
END_TEST

START_TEST(test_cookie_secure_auto_follows_the_public_origin)
{
	/* yes and no are what they say, whatever the origin */
	ck_assert_int_eq(auth_cookie_secure(1, "http://example.test", 0), 1);
	ck_assert_int_eq(auth_cookie_secure(0, "https://example.test", 1), 0);
	/* auto: secure unless the configured origin is http:// */
	ck_assert_int_eq(auth_cookie_secure(CONFIG_AUTO, "https://example.test", 0), 1);
	ck_assert_int_eq(auth_cookie_secure(CONFIG_AUTO, "http://127.0.0.1:8080", 1), 0);
	ck_assert_int_eq(auth_cookie_secure(CONFIG_AUTO, "HTTP://example.test", 1), 0);
	/* auto without public_origin: the request's own scheme */
	ck_assert_int_eq(auth_cookie_secure(CONFIG_AUTO, "", 1), 1);
	ck_assert_int_eq(auth_cookie_secure(CONFIG_AUTO, "", 0), 0);
	ck_assert_int_eq(auth_cookie_secure(CONFIG_AUTO, NULL, 1), 1);
}
END_TEST

START_TEST(test_cookie_value_is_truncated_not_overflowed)
{
	char out[16];

	memset(out, 'Q', sizeof(out));
	auth_cookie_value(out, sizeof(out), "tok", 60, 1);
	ck_assert_uint_eq(strlen(out), sizeof(out) - 1);
}
END_TEST

Suite *api_suite(void)
{
	Suite *s = suite_create("api");
	TCase *stream = tcase_create("stream");
	TCase *conv = tcase_create("conversations");
	TCase *auth = tcase_create("auth");

	tcase_add_test(stream, test_last_event_id_header_wins_over_query);
	tcase_add_test(stream, test_last_event_id_from_query_when_no_header);
	tcase_add_test(stream, test_last_event_id_invalid_is_an_error);
	tcase_add_test(stream, test_last_event_id_absent_is_zero_with_minus_one);
	suite_add_tcase(s, stream);

	tcase_add_test(conv, test_parse_cursor_splits_usec_and_id);
	tcase_add_test(conv, test_parse_cursor_rejects_malformed);
	suite_add_tcase(s, conv);

	tcase_add_test(auth, test_cookie_value_sets_the_session_attributes);
	tcase_add_test(auth, test_cookie_value_secure_only_when_asked);
	tcase_add_test(auth, test_cookie_value_max_age_zero_clears);
	tcase_add_test(auth, test_cookie_secure_auto_follows_the_public_origin);
	tcase_add_test(auth, test_cookie_value_is_truncated_not_overflowed);
	suite_add_tcase(s, auth);
	return s;
}
