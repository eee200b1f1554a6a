/*
 * check_util: common/util — growable buffers, base64url (RFC 4648 vectors in
 * the url alphabet, no padding), UUID syntax, strict integer parsing, UTF-8
 * validation, trimming and sanitizing, and random bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "suites.h"

START_TEST(test_buf_append_grows_and_stays_terminated)
{
	struct buf b = { 0 };
	char chunk[100];

	ck_assert_int_eq(buf_append(&b, "", 0), 0);
	ck_assert_ptr_nonnull(b.data);
	ck_assert_str_eq(b.data, "");
	for (int i = 0; i < 100; i++) {
		memset(chunk, 'a' + i % 26, sizeof(chunk));
		ck_assert_int_eq(buf_append(&b, chunk, sizeof(chunk)), 0);
		ck_assert_uint_eq(b.len, (size_t)(i + 1) * sizeof(chunk));
		ck_assert_uint_gt(b.cap, b.len);
		ck_assert_int_eq(b.data[b.len], '\0');
	}
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(b.data[i * 100 + 99], 'a' + i % 26);
	buf_free(&b);
	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_uint_eq(b.cap, 0);
}
END_TEST

START_TEST(test_buf_append_takes_binary_bytes)
{
	struct buf b = { 0 };

	ck_assert_int_eq(buf_append(&b, "a\0b", 3), 0);
	ck_assert_uint_eq(b.len, 3);
	ck_assert_mem_eq(b.data, "a\0b", 4);
	buf_free(&b);
}
END_TEST

START_TEST(test_buf_reserve_keeps_content_and_room)
{
	struct buf b = { 0 };
	char *before;

	buf_puts(&b, "abc");
	ck_assert_int_eq(buf_reserve(&b, 10000), 0);
	ck_assert_uint_ge(b.cap, 3 + 10000 + 1);
	ck_assert_str_eq(b.data, "abc");
	before = b.data;
	buf_append(&b, "x", 1);
	ck_assert_ptr_eq(b.data, before);	/* reserved room needs no realloc */
	buf_free(&b);
}
END_TEST

START_TEST(test_buf_array_builds_postgres_array_literals)
{
	struct buf b = { 0 };

	ck_assert_str_eq(buf_array_end(&b), "{}");
	buf_free(&b);
	ck_assert_int_eq(buf_array_add(&b, "4e6f1a0c-0000-4000-8000-000000000001"), 0);
	ck_assert_str_eq(buf_array_end(&b), "{4e6f1a0c-0000-4000-8000-000000000001}");
	buf_free(&b);
	buf_array_add(&b, "1");
	buf_array_add(&b, "22");
	buf_array_add(&b, "333");
	ck_assert_str_eq(buf_array_end(&b), "{1,22,333}");
	buf_free(&b);
}
END_TEST

START_TEST(test_buf_printf_formats_and_appends)
{
	struct buf b = { 0 };
	char big[5000];

	ck_assert_int_eq(buf_printf(&b, "%d-%s", 42, "x"), 0);
	ck_assert_str_eq(b.data, "42-x");
	ck_assert_int_eq(buf_printf(&b, "%s", ""), 0);
	ck_assert_str_eq(b.data, "42-x");
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(buf_printf(&b, "[%s]", big), 0);
	ck_assert_uint_eq(b.len, 4 + 2 + sizeof(big) - 1);
	ck_assert_int_eq(b.data[4], '[');
	ck_assert_int_eq(b.data[b.len - 1], ']');
	ck_assert_int_eq(b.data[b.len], '\0');
	buf_free(&b);

	ck_assert_int_eq(buf_printf(&b, "%s", ""), 0);	/* on an empty buffer */
	ck_assert_str_eq(b.data, "");
	buf_free(&b);
}
END_TEST

START_TEST(test_buf_consume_drops_from_the_front)
{
	struct buf b = { 0 };

	buf_consume(&b, 5);	/* empty, never allocated */
	ck_assert_uint_eq(b.len, 0);
	buf_puts(&b, "hello world");
	buf_consume(&b, 0);
	ck_assert_str_eq(b.data, "hello world");
	buf_consume(&b, 6);
	ck_assert_str_eq(b.data, "world");
	ck_assert_uint_eq(b.len, 5);
	buf_consume(&b, 5);
	ck_assert_str_eq(b.data, "");
	ck_assert_uint_eq(b.len, 0);
	buf_puts(&b, "abc");
	buf_consume(&b, 100);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_str_eq(b.data, "");
	buf_free(&b);
}
END_TEST

START_TEST(test_buf_reset_empties_and_keeps_memory)
{
	struct buf b = { 0 };
	size_t cap;

	buf_reset(&b);
	ck_assert_uint_eq(b.len, 0);
	buf_puts(&b, "some text");
	cap = b.cap;
	buf_reset(&b);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_uint_eq(b.cap, cap);
	ck_assert_str_eq(b.data, "");
	buf_puts(&b, "x");
	ck_assert_str_eq(b.data, "x");
	buf_free(&b);
}
END_TEST

/* RFC 4648 section 10 vectors, plus bytes that use the two url-only letters. */
static const struct {
	const char *in;
	size_t len;
	const char *out;
} b64_vectors[] = {
	{ "", 0, "" },
	{ "f", 1, "Zg" },
	{ "fo", 2, "Zm8" },
	{ "foo", 3, "Zm9v" },
	{ "foob", 4, "Zm9vYg" },
	{ "fooba", 5, "Zm9vYmE" },
	{ "foobar", 6, "Zm9vYmFy" },
	{ "\xfb\xff\xbf", 3, "-_-_" },		/* standard alphabet: "+/+/" */
	{ "\xfb\xff", 2, "-_8" },		/* "+/8=" */
	{ "\x00\x00\x00", 3, "AAAA" },
	{ "\xff", 1, "_w" },			/* "/w==" */
	{ "\x14\xfb\x9c\x03\xd9\x7e", 6, "FPucA9l-" },	/* RFC 4648 section 9: "FPucA9l+" */
};
#define NB64 ((int)(sizeof(b64_vectors) / sizeof(b64_vectors[0])))

START_TEST(test_b64url_encode_matches_rfc4648_vectors)
{
	char out[32];

	memset(out, 'Q', sizeof(out));
	util_b64url_encode((const unsigned char *)b64_vectors[_i].in, b64_vectors[_i].len, out);
	ck_assert_str_eq(out, b64_vectors[_i].out);
	ck_assert_uint_eq(util_b64url_len(b64_vectors[_i].len), strlen(b64_vectors[_i].out));
}
END_TEST

START_TEST(test_b64url_len_of_a_session_token)
{
	unsigned char raw[32];
	char *out = malloc(util_b64url_len(sizeof(raw)) + 1);	/* exactly the documented size */

	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(util_b64url_len(32), 43);
	memset(raw, 0xfa, sizeof(raw));
	util_b64url_encode(raw, sizeof(raw), out);
	ck_assert_uint_eq(strlen(out), 43);
	ck_assert(strspn(out, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == 43);
	free(out);
	for (size_t n = 0; n < 100; n++)
		ck_assert_uint_eq(util_b64url_len(n), (n / 3) * 4 + (n % 3 ? n % 3 + 1 : 0));
}
END_TEST

START_TEST(test_is_uuid_takes_canonical_form_only)
{
	ck_assert_int_eq(util_is_uuid("0b5e5a4c-6f1d-4c7e-9a3b-2d1f0e9c8b7a", 36), 1);
	ck_assert_int_eq(util_is_uuid("0B5E5A4C-6F1D-4C7E-9A3B-2D1F0E9C8B7A", 36), 1);
	ck_assert_int_eq(util_is_uuid("00000000-0000-0000-0000-000000000000", 36), 1);
	ck_assert_int_eq(util_is_uuid("0b5e5a4c-6f1d-4c7e-9a3b-2d1f0e9c8b7a", 35), 0);
	ck_assert_int_eq(util_is_uuid("0b5e5a4c-6f1d-4c7e-9a3b-2d1f0e9c8b7aa", 37), 0);
	ck_assert_int_eq(util_is_uuid("0b5e5a4c-6f1d-4c7e-9a3b-2d1f0e9c8b7g", 36), 0);
	ck_assert_int_eq(util_is_uuid("0b5e5a4c06f1d-4c7e-9a3b-2d1f0e9c8b7a", 36), 0);
	ck_assert_int_eq(util_is_uuid("0b5e5a4c-6f1d-4c7e-9a3b-2d1f0e9c8b-a", 36), 0);
	ck_assert_int_eq(util_is_uuid("{b5e5a4c-6f1d-4c7e-9a3b-2d1f0e9c8b7}", 36), 0);
	ck_assert_int_eq(util_is_uuid("0b5e5a4c 6f1d 4c7e 9a3b 2d1f0e9c8b7a", 36), 0);
	ck_assert_int_eq(util_is_uuid("", 0), 0);
}
END_TEST

START_TEST(test_parse_i64_takes_whole_non_negative_decimals)
{
	int64_t v = -5;

	ck_assert_int_eq(util_parse_i64("0", &v), 0);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(util_parse_i64("42", &v), 0);
	ck_assert_int_eq(v, 42);
	ck_assert_int_eq(util_parse_i64("007", &v), 0);
	ck_assert_int_eq(v, 7);
	ck_assert_int_eq(util_parse_i64("9223372036854775807", &v), 0);
	ck_assert_int_eq(v, INT64_MAX);
}
END_TEST

START_TEST(test_parse_i64_rejects_overflow_empty_sign_and_junk)
{
	static const char *const bad[] = {
		"", "-1", "+1", "-0", " 1", "1 ", "1x", "x1", "0x10", "1.0", "1e3",
		"9223372036854775808", "99999999999999999999", "18446744073709551616",
	};
	int64_t v = 5;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(util_parse_i64(bad[i], &v) == -1, "\"%s\" was accepted", bad[i]);
	ck_assert_int_eq(util_parse_i64(NULL, &v), -1);
	ck_assert_int_eq(v, 5);
}
END_TEST

#define UTF8_VALID(s) util_utf8_valid((s), sizeof(s) - 1)

START_TEST(test_utf8_valid_accepts_one_to_four_byte_sequences)
{
	ck_assert_int_eq(util_utf8_valid("", 0), 1);
	ck_assert_int_eq(UTF8_VALID("plain ascii ~\x7f"), 1);
	ck_assert_int_eq(UTF8_VALID("\xc2\x80"), 1);		/* U+0080 */
	ck_assert_int_eq(UTF8_VALID("\xc3\xa9"), 1);		/* é */
	ck_assert_int_eq(UTF8_VALID("\xdf\xbf"), 1);		/* U+07FF */
	ck_assert_int_eq(UTF8_VALID("\xe0\xa0\x80"), 1);	/* U+0800 */
	ck_assert_int_eq(UTF8_VALID("\xe2\x82\xac"), 1);	/* € */
	ck_assert_int_eq(UTF8_VALID("\xed\x9f\xbf"), 1);	/* U+D7FF */
	ck_assert_int_eq(UTF8_VALID("\xee\x80\x80"), 1);	/* U+E000 */
	ck_assert_int_eq(UTF8_VALID("\xef\xbf\xbf"), 1);	/* U+FFFF */
	ck_assert_int_eq(UTF8_VALID("\xf0\x90\x80\x80"), 1);	/* U+10000 */
	ck_assert_int_eq(UTF8_VALID("\xf0\x9f\x98\x80"), 1);	/* 😀 */
	ck_assert_int_eq(UTF8_VALID("\xf4\x8f\xbf\xbf"), 1);	/* U+10FFFF */
	ck_assert_int_eq(UTF8_VALID("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"), 1);
}
END_TEST

START_TEST(test_utf8_valid_rejects_overlongs_surrogates_and_out_of_range)
{
	static const char *const bad[] = {
		"\xc0\x80", "\xc0\xaf", "\xc1\xbf",		/* overlong 2-byte */
		"\xe0\x80\x80", "\xe0\x9f\xbf",			/* overlong 3-byte */
		"\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf",		/* overlong 4-byte */
		"\xed\xa0\x80", "\xed\xbf\xbf",			/* surrogates */
		"\xf4\x90\x80\x80", "\xf7\xbf\xbf\xbf",		/* above U+10FFFF */
		"\xf8\x88\x80\x80\x80", "\xfc\x84\x80\x80\x80\x80", "\xfe", "\xff",
		"\x80", "a\xbf", "\xc3\xa9\x80",		/* stray continuation bytes */
		"\xc3\x28", "\xe2\x28\xa1", "\xf0\x9f\x28\x80",	/* bad continuation */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(util_utf8_valid(bad[i], strlen(bad[i])) == 0, "bad[%zu] accepted", i);
}
END_TEST

START_TEST(test_utf8_valid_rejects_truncated_sequences)
{
	/* heap copies of exactly len bytes, so a read past the end is an ASan error */
	static const char *const full[] = { "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80" };

	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(full[i]);
		for (size_t len = 1; len < n; len++) {
			char *p = malloc(len);
			ck_assert_ptr_nonnull(p);
			memcpy(p, full[i], len);
			ck_assert_msg(util_utf8_valid(p, len) == 0, "%zu of %zu bytes accepted", len, n);
			free(p);
		}
	}
}
END_TEST

START_TEST(test_utf8_trim_drops_only_an_incomplete_tail)
{
	ck_assert_uint_eq(util_utf8_trim("", 0), 0);
	ck_assert_uint_eq(util_utf8_trim("abc", 3), 3);
	ck_assert_uint_eq(util_utf8_trim("a\xc3\xa9", 3), 3);
	ck_assert_uint_eq(util_utf8_trim("a\xc3", 2), 1);
	ck_assert_uint_eq(util_utf8_trim("a\xe2\x82\xac", 4), 4);
	ck_assert_uint_eq(util_utf8_trim("a\xe2\x82", 3), 1);
	ck_assert_uint_eq(util_utf8_trim("a\xe2", 2), 1);
	ck_assert_uint_eq(util_utf8_trim("a\xf0\x9f\x98\x80", 5), 5);
	ck_assert_uint_eq(util_utf8_trim("a\xf0\x9f\x98", 4), 1);
	ck_assert_uint_eq(util_utf8_trim("\xf0\x9f", 2), 0);
}
END_TEST

START_TEST(test_utf8_sanitize_replaces_invalid_bytes_and_nul)
{
	char s1[] = "ok \xc3\xa9\xe2\x82\xac";
	char s2[] = "a\xff" "b\xc0\x80" "c\xed\xa0\x80";
	char s3[] = "x\0y\xc3";

	util_utf8_sanitize(s1, sizeof(s1) - 1);
	ck_assert_str_eq(s1, "ok \xc3\xa9\xe2\x82\xac");
	util_utf8_sanitize(s2, sizeof(s2) - 1);
	ck_assert_str_eq(s2, "a?b??c???");
	util_utf8_sanitize(s3, sizeof(s3) - 1);
	ck_assert_mem_eq(s3, "x?y?", 4);
	ck_assert_int_eq(util_utf8_valid(s2, strlen(s2)), 1);
}
END_TEST

START_TEST(test_utf8_copy_cuts_at_a_character_and_replaces_invalid_bytes)
{
	char out[8];

	ck_assert_uint_eq(util_utf8_copy(out, sizeof(out), "abc"), 3);
	ck_assert_str_eq(out, "abc");
	/* 7 bytes of room: two 3-byte characters fit, the third is not cut in half */
	ck_assert_uint_eq(util_utf8_copy(out, sizeof(out), "\xe5\x86\x99\xe4\xb8\x80\xe4\xb8\xaa"), 6);
	ck_assert_str_eq(out, "\xe5\x86\x99\xe4\xb8\x80");
	ck_assert_uint_eq(util_utf8_copy(out, sizeof(out), "a\xff\xfe" "b"), 4);
	ck_assert_str_eq(out, "a??b");
	ck_assert_int_eq(util_utf8_valid(out, strlen(out)), 1);
	ck_assert_uint_eq(util_utf8_copy(out, 1, "abc"), 0);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_random_bytes_fills_and_differs)
{
	unsigned char a[64], b[64], zero[64] = { 0 };

	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	ck_assert_int_eq(util_random_bytes(a, sizeof(a)), 0);
	ck_assert_int_eq(util_random_bytes(b, sizeof(b)), 0);
	ck_assert(memcmp(a, zero, sizeof(a)) != 0);
	ck_assert(memcmp(a, b, sizeof(a)) != 0);
	ck_assert_int_eq(util_random_bytes(a, 0), 0);
}
END_TEST

START_TEST(test_now_ms_is_monotonic)
{
	int64_t t0 = util_now_ms(), t1 = util_now_ms();

	ck_assert_int_ge(t0, 0);
	ck_assert_int_ge(t1, t0);
}
END_TEST

Suite *util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *buf = tcase_create("buf");
	TCase *enc = tcase_create("encoding");
	TCase *utf8 = tcase_create("utf8");

	tcase_add_test(buf, test_buf_append_grows_and_stays_terminated);
	tcase_add_test(buf, test_buf_append_takes_binary_bytes);
	tcase_add_test(buf, test_buf_reserve_keeps_content_and_room);
	tcase_add_test(buf, test_buf_printf_formats_and_appends);
	tcase_add_test(buf, test_buf_array_builds_postgres_array_literals);
	tcase_add_test(buf, test_buf_consume_drops_from_the_front);
	tcase_add_test(buf, test_buf_reset_empties_and_keeps_memory);
	suite_add_tcase(s, buf);

	tcase_add_loop_test(enc, test_b64url_encode_matches_rfc4648_vectors, 0, NB64);
	tcase_add_test(enc, test_b64url_len_of_a_session_token);
	tcase_add_test(enc, test_is_uuid_takes_canonical_form_only);
	tcase_add_test(enc, test_parse_i64_takes_whole_non_negative_decimals);
	tcase_add_test(enc, test_parse_i64_rejects_overflow_empty_sign_and_junk);
	tcase_add_test(enc, test_random_bytes_fills_and_differs);
	tcase_add_test(enc, test_now_ms_is_monotonic);
	suite_add_tcase(s, enc);

	tcase_add_test(utf8, test_utf8_valid_accepts_one_to_four_byte_sequences);
	tcase_add_test(utf8, test_utf8_valid_rejects_overlongs_surrogates_and_out_of_range);
	tcase_add_test(utf8, test_utf8_valid_rejects_truncated_sequences);
	tcase_add_test(utf8, test_utf8_trim_drops_only_an_incomplete_tail);
	tcase_add_test(utf8, test_utf8_sanitize_replaces_invalid_bytes_and_nul);
	tcase_add_test(utf8, test_utf8_copy_cuts_at_a_character_and_replaces_invalid_bytes);
	suite_add_tcase(s, utf8);
	return s;
}
