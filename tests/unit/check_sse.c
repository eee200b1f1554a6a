/*
 * check_sse: api/sse — the exact bytes of SSE event text and of the FastCGI
 * records the hub writes to a detached connection (version 1, big-endian ids
 * and lengths, no padding, content split at 65535 bytes).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/sse.h"
#include "suites.h"

/* Checks one FastCGI record header at h. */
static void assert_header(const unsigned char *h, int type, uint16_t request_id, size_t len)
{
	ck_assert_int_eq(h[0], 1);
	ck_assert_int_eq(h[1], type);
	ck_assert_int_eq(h[2], request_id >> 8);
	ck_assert_int_eq(h[3], request_id & 0xff);
	ck_assert_int_eq(h[4], (len >> 8) & 0xff);
	ck_assert_int_eq(h[5], len & 0xff);
	ck_assert_int_eq(h[6], 0);	/* no padding */
	ck_assert_int_eq(h[7], 0);
}

START_TEST(test_format_event_exact_bytes)
{
	static const char want[] = "id: 3.42\nevent: conversation.updated\ndata: {\"id\":\"x\"}\n\n";
	struct buf b = { 0 };
	const char *type = "conversation.updated", *data = "{\"id\":\"x\"}";

	ck_assert_int_eq(sse_format_event(&b, 3, 42, type, strlen(type), data, strlen(data)), 0);
	ck_assert_uint_eq(b.len, sizeof(want) - 1);
	ck_assert_mem_eq(b.data, want, sizeof(want) - 1);
	ck_assert_int_eq(b.data[b.len], '\0');
	buf_free(&b);
}
END_TEST

START_TEST(test_format_event_uses_lengths_not_terminators)
{
	static const char want[] = "id: 2147483647.9223372036854775807\nevent: message.delta\ndata: {}\n\n";
	struct buf b = { 0 };

	ck_assert_int_eq(sse_format_event(&b, INT32_MAX, INT64_MAX, "message.deltaXYZ", 13, "{}garbage", 2), 0);
	ck_assert_str_eq(b.data, want);
	buf_free(&b);
}
END_TEST

START_TEST(test_format_event_appends_after_existing_text)
{
	static const char want[] = "retry: 1\n\nid: 1.1\nevent: a\ndata: 1\n\nid: 1.2\nevent: b\ndata: \n\n";
	struct buf b = { 0 };

	buf_puts(&b, "retry: 1\n\n");
	ck_assert_int_eq(sse_format_event(&b, 1, 1, "a", 1, "1", 1), 0);
	ck_assert_int_eq(sse_format_event(&b, 1, 2, "b", 1, "", 0), 0);
	ck_assert_str_eq(b.data, want);
	buf_free(&b);
}
END_TEST

START_TEST(test_format_event_carries_large_data_whole)
{
	size_t n = 200000;
	char *data = malloc(n);
	struct buf b = { 0 };

	ck_assert_ptr_nonnull(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (char)('a' + i % 26);
	ck_assert_int_eq(sse_format_event(&b, 1, 5, "x", 1, data, n), 0);
	ck_assert_uint_eq(b.len, strlen("id: 1.5\nevent: x\ndata: ") + n + 2);
	ck_assert(memcmp(b.data + strlen("id: 1.5\nevent: x\ndata: "), data, n) == 0);
	ck_assert_mem_eq(b.data + b.len - 2, "\n\n", 2);
	free(data);
	buf_free(&b);
}
END_TEST

START_TEST(test_format_id_exact_bytes)
{
	struct buf b = { 0 };

	ck_assert_int_eq(sse_format_id(&b, 1, 7), 0);
	ck_assert_str_eq(b.data, "id: 1.7\n\n");
	ck_assert_int_eq(sse_format_id(&b, 12, 1234567890123LL), 0);
	ck_assert_str_eq(b.data, "id: 1.7\n\nid: 12.1234567890123\n\n");
	ck_assert_int_eq(sse_format_id(&b, 0, 8), 0);	/* epoch 0: a bare id, for a client that sent one */
	ck_assert_str_eq(b.data, "id: 1.7\n\nid: 12.1234567890123\n\nid: 8\n\n");
	buf_free(&b);
}
END_TEST

START_TEST(test_format_open_exact_bytes)
{
	static const char want[] =
		"Status: 200 OK\r\n"
		"Content-Type: text/event-stream; charset=utf-8\r\n"
		"Cache-Control: no-store\r\n"
		"X-Accel-Buffering: no\r\n"
		"\r\n"
		"retry: 2000\n\n";
	struct buf b = { 0 };

	ck_assert_int_eq(sse_format_open(&b, 2000), 0);
	ck_assert_str_eq(b.data, want);
	ck_assert_uint_eq(b.len, sizeof(want) - 1);
	buf_free(&b);
}
END_TEST

START_TEST(test_fcgi_stdout_record_header_bytes)
{
	static const unsigned char want[] = { 1, 6, 0x12, 0x34, 0, 5, 0, 0, 'h', 'e', 'l', 'l', 'o' };
	struct buf b = { 0 };

	ck_assert_int_eq(sse_fcgi_stdout(&b, 0x1234, "hello", 5), 0);
	ck_assert_uint_eq(b.len, sizeof(want));
	ck_assert_mem_eq(b.data, want, sizeof(want));
	buf_free(&b);
}
END_TEST

START_TEST(test_fcgi_stdout_length_and_id_are_big_endian)
{
	char text[300];
	struct buf b = { 0 };

	memset(text, 'x', sizeof(text));
	ck_assert_int_eq(sse_fcgi_stdout(&b, 0xfffe, text, sizeof(text)), 0);
	ck_assert_uint_eq(b.len, FCGI_HEADER_LEN + sizeof(text));
	assert_header((unsigned char *)b.data, 6, 0xfffe, 300);
	ck_assert_int_eq((unsigned char)b.data[4], 0x01);
	ck_assert_int_eq((unsigned char)b.data[5], 0x2c);
	ck_assert(memcmp(b.data + FCGI_HEADER_LEN, text, sizeof(text)) == 0);
	buf_free(&b);

	ck_assert_int_eq(sse_fcgi_stdout(&b, 1, "x", 1), 0);
	assert_header((unsigned char *)b.data, 6, 1, 1);
	buf_free(&b);
}
END_TEST

START_TEST(test_fcgi_stdout_splits_70000_bytes_into_65535_and_4465)
{
	size_t n = 70000;
	char *text = malloc(n);
	struct buf b = { 0 };
	const unsigned char *p;

	ck_assert_ptr_nonnull(text);
	for (size_t i = 0; i < n; i++)
		text[i] = (char)(i * 7 % 251);
	ck_assert_int_eq(sse_fcgi_stdout(&b, 3, text, n), 0);
	ck_assert_uint_eq(b.len, n + 2 * FCGI_HEADER_LEN);
	p = (const unsigned char *)b.data;
	assert_header(p, 6, 3, 65535);
	ck_assert(memcmp(p + FCGI_HEADER_LEN, text, 65535) == 0);
	p += FCGI_HEADER_LEN + 65535;
	assert_header(p, 6, 3, 4465);
	ck_assert(memcmp(p + FCGI_HEADER_LEN, text + 65535, 4465) == 0);
	free(text);
	buf_free(&b);
}
END_TEST

START_TEST(test_fcgi_stdout_splits_exactly_at_the_boundary)
{
	size_t n = 2 * FCGI_MAX_CONTENT + 1;
	char *text = calloc(1, n);
	struct buf b = { 0 };
	const unsigned char *p;

	ck_assert_ptr_nonnull(text);
	ck_assert_int_eq(sse_fcgi_stdout(&b, 1, text, FCGI_MAX_CONTENT), 0);
	ck_assert_uint_eq(b.len, FCGI_HEADER_LEN + FCGI_MAX_CONTENT);	/* one full record */
	assert_header((unsigned char *)b.data, 6, 1, FCGI_MAX_CONTENT);
	buf_reset(&b);

	ck_assert_int_eq(sse_fcgi_stdout(&b, 1, text, n), 0);
	ck_assert_uint_eq(b.len, 3 * FCGI_HEADER_LEN + n);
	p = (const unsigned char *)b.data;
	assert_header(p, 6, 1, FCGI_MAX_CONTENT);
	p += FCGI_HEADER_LEN + FCGI_MAX_CONTENT;
	assert_header(p, 6, 1, FCGI_MAX_CONTENT);
	p += FCGI_HEADER_LEN + FCGI_MAX_CONTENT;
	assert_header(p, 6, 1, 1);
	free(text);
	buf_free(&b);
}
END_TEST

START_TEST(test_fcgi_stdout_empty_text_writes_no_record)
{
	struct buf b = { 0 };

	ck_assert_int_eq(sse_fcgi_stdout(&b, 1, "", 0), 0);
	ck_assert_uint_eq(b.len, 0);
	buf_puts(&b, "keep");
	ck_assert_int_eq(sse_fcgi_stdout(&b, 1, NULL, 0), 0);
	ck_assert_str_eq(b.data, "keep");
	buf_free(&b);
}
END_TEST

START_TEST(test_fcgi_end_is_empty_stdout_then_end_request)
{
	static const unsigned char want[] = {
		1, 6, 0xab, 0xcd, 0, 0, 0, 0,		/* empty STDOUT: end of stream */
		1, 3, 0xab, 0xcd, 0, 8, 0, 0,		/* END_REQUEST, 8 content bytes */
		0, 0, 0, 0, 0, 0, 0, 0,			/* appStatus 0, REQUEST_COMPLETE */
	};
	struct buf b = { 0 };

	buf_append(&b, "x", 1);
	ck_assert_int_eq(sse_fcgi_end(&b, 0xabcd), 0);
	ck_assert_uint_eq(b.len, 1 + sizeof(want));
	ck_assert_mem_eq(b.data + 1, want, sizeof(want));
	buf_free(&b);
}
END_TEST

Suite *sse_suite(void)
{
	Suite *s = suite_create("sse");
	TCase *text = tcase_create("text");
	TCase *fcgi = tcase_create("fcgi");

	tcase_add_test(text, test_format_event_exact_bytes);
	tcase_add_test(text, test_format_event_uses_lengths_not_terminators);
	tcase_add_test(text, test_format_event_appends_after_existing_text);
	tcase_add_test(text, test_format_event_carries_large_data_whole);
	tcase_add_test(text, test_format_id_exact_bytes);
	tcase_add_test(text, test_format_open_exact_bytes);
	suite_add_tcase(s, text);

	tcase_add_test(fcgi, test_fcgi_stdout_record_header_bytes);
	tcase_add_test(fcgi, test_fcgi_stdout_length_and_id_are_big_endian);
	tcase_add_test(fcgi, test_fcgi_stdout_splits_70000_bytes_into_65535_and_4465);
	tcase_add_test(fcgi, test_fcgi_stdout_splits_exactly_at_the_boundary);
	tcase_add_test(fcgi, test_fcgi_stdout_empty_text_writes_no_record);
	tcase_add_test(fcgi, test_fcgi_end_is_empty_stdout_then_end_request);
	suite_add_tcase(s, fcgi);
	return s;
}
