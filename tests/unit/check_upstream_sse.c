/*
 * check_upstream_sse: worker/upstream_sse — the parser of an OpenAI-compatible
 * chat completions stream. The parser has no callbacks: each complete event
 * appends its decoded, sanitized delta text to p->content, and the worker takes
 * that text after every network read (chat_take_text). These tests take it the
 * same way, so what they check is what the worker sees:
 *
 * - one stream with every framing the parser accepts (LF, CRLF and lone CR line
 *   endings, comments, extra blank lines, "data:" with and without its space,
 *   one event spread over two data lines, ignored fields, raw and escaped
 *   4-byte UTF-8, a role-only chunk, empty deltas, a usage-only chunk, text
 *   after [DONE]) gives the same text, chunk count and final state fed whole,
 *   byte by byte, at every two-way split and in 500 seeded random splits;
 * - every piece of text taken is valid UTF-8 made of whole events, so a
 *   character split across reads never reaches the worker as a broken half;
 * - the failures the parser defines (a data line that is not JSON, an "error"
 *   object, a line or an event over UPSTREAM_LINE_MAX) end the stream the same
 *   way at every split, and nothing after [DONE] is read;
 * - upstream_error_message, which turns an error body into one short line.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "worker/upstream_sse.h"
#include "suites.h"

#define RANDOM_SEEDS 500
#define MAX_TAKES 256

/* What the worker would have seen of one stream. */
struct run {
	struct upstream_sse p;
	struct buf text;		/* every piece taken, in order */
	size_t cuts[MAX_TAKES];		/* text offsets where a take ended */
	int ncuts;
};

static void run_init(struct run *r)
{
	memset(r, 0, sizeof(*r));
	upstream_sse_init(&r->p);
}

static void run_free(struct run *r)
{
	upstream_sse_free(&r->p);
	buf_free(&r->text);
}

/* Takes the text as chat_take_text does; it must be whole UTF-8 characters. */
static void take(struct run *r)
{
	struct buf *c = &r->p.content;

	if (c->len == 0)
		return;
	ck_assert_msg(util_utf8_valid(c->data, c->len), "took broken UTF-8: %s", c->data);
	ck_assert_ptr_null(memchr(c->data, '\0', c->len));
	ck_assert_int_lt(r->ncuts, MAX_TAKES);
	buf_append(&r->text, c->data, c->len);
	r->cuts[r->ncuts++] = r->text.len;
	buf_reset(c);
}

/* One network read: the bytes live in their own allocation so ASan sees over-reads. */
static int feed(struct run *r, const char *bytes, size_t n)
{
	char *copy = malloc(n ? n : 1);
	int rc;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, bytes, n);
	rc = upstream_sse_feed(&r->p, copy, n);
	free(copy);
	ck_assert_int_eq(rc, r->p.failed ? -1 : 0);
	take(r);
	return rc;
}

static int feed_str(struct run *r, const char *s)
{
	return feed(r, s, strlen(s));
}

static void feed_bytewise(struct run *r, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		feed(r, s + i, 1);
}

static uint32_t xorshift32(uint32_t *state)
{
	uint32_t x = *state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *state = x;
}

/* Reads of random sizes, empty reads included; a quarter of the seeds allow reads as long as the stream. */
static void feed_random(struct run *r, const char *s, size_t n, uint32_t seed)
{
	uint32_t state = seed * 2654435761u + 1;
	size_t max, off = 0;

	if (state == 0)
		state = 1;
	max = xorshift32(&state) % 4 == 0 ? n : 1 + xorshift32(&state) % 32;
	while (off < n) {
		size_t k = xorshift32(&state) % (max + 1);
		if (k > n - off)
			k = n - off;
		feed(r, s + off, k);
		off += k;
	}
}

/* got must end like want (the byte-by-byte run) and take text only at want's event boundaries. */
static void assert_same_as(const struct run *got, const struct run *want, const char *how)
{
	ck_assert_msg(got->text.len == want->text.len &&
			      memcmp(got->text.data ? got->text.data : "", want->text.data ? want->text.data : "",
				     want->text.len) == 0,
		      "%s: text \"%s\", want \"%s\"", how, got->text.data ? got->text.data : "",
		      want->text.data ? want->text.data : "");
	ck_assert_msg(got->p.chunks == want->p.chunks, "%s: %ld chunks, want %ld", how, got->p.chunks, want->p.chunks);
	ck_assert_msg(got->p.done == want->p.done, "%s: done %d", how, got->p.done);
	ck_assert_msg(got->p.failed == want->p.failed, "%s: failed %d", how, got->p.failed);
	ck_assert_msg(strcmp(got->p.finish_reason, want->p.finish_reason) == 0, "%s: finish_reason \"%s\"", how,
		      got->p.finish_reason);
	ck_assert_msg(strcmp(got->p.error, want->p.error) == 0, "%s: error \"%s\"", how, got->p.error);
	for (int i = 0; i < got->ncuts; i++) {
		int at_event_end = 0;
		for (int j = 0; j < want->ncuts && !at_event_end; j++)
			at_event_end = got->cuts[i] == want->cuts[j];
		ck_assert_msg(at_event_end, "%s: took text ending at byte %zu, inside an event", how, got->cuts[i]);
	}
}

/* Feeds s whole, at every two-way split and in RANDOM_SEEDS random splits: all must match byte by byte. */
static void assert_split_invariant(const char *s, size_t n)
{
	struct run bytewise, other;
	char how[64];

	run_init(&bytewise);
	feed_bytewise(&bytewise, s, n);

	run_init(&other);
	feed(&other, s, n);
	assert_same_as(&other, &bytewise, "whole");
	run_free(&other);

	for (size_t i = 0; i <= n; i++) {
		run_init(&other);
		feed(&other, s, i);
		feed(&other, s + i, n - i);
		snprintf(how, sizeof(how), "split at %zu", i);
		assert_same_as(&other, &bytewise, how);
		run_free(&other);
	}

	for (uint32_t seed = 1; seed <= RANDOM_SEEDS; seed++) {
		run_init(&other);
		feed_random(&other, s, n, seed);
		snprintf(how, sizeof(how), "seed %u", seed);
		assert_same_as(&other, &bytewise, how);
		run_free(&other);
	}
	run_free(&bytewise);
}

static const char STREAM[] =
	": OPENROUTER PROCESSING\r\n"
	"\r\n"
	"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
	"\"delta\":{\"role\":\"assistant\"},\"finish_reason\":null}]}\r\n"
	"\r\n"
	"data:{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}]}\n"
	"\n"
	"\n"
	"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"}}]}\n\n"
	"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\", wörld — \"}}]}\r\r"
	"event: message\n"
	"id: 7\n"
	"retry: 1000\n"
	"data: {\"choices\":[{\"index\":0,\"delta\":\r\n"
	"data:{\"content\":\"日本語 😀\"}}]}\n"
	"\n"
	": keep-alive\n\n"
	"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\\ud83d\\ude80 ok\"}}]}\r\n\r\n"
	"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\r\n\r\n"
	"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":4}}\n\n"
	"data: [DONE]\r\n\r\n"
	"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"late\"}}]}\n\n";

START_TEST(test_stream_byte_by_byte_yields_each_event_text_in_order)
{
	static const char *const want[] = { "Hello", ", wörld — ", "日本語 😀", "🚀 ok" };
	struct run r;
	size_t from = 0;

	run_init(&r);
	feed_bytewise(&r, STREAM, sizeof(STREAM) - 1);
	ck_assert_int_eq(r.ncuts, 4);
	for (int i = 0; i < 4; i++) {
		ck_assert_uint_eq(r.cuts[i] - from, strlen(want[i]));
		ck_assert_mem_eq(r.text.data + from, want[i], strlen(want[i]));
		from = r.cuts[i];
	}
	ck_assert_str_eq(r.text.data, "Hello, wörld — 日本語 😀🚀 ok");
	ck_assert_int_eq(r.p.chunks, 4);
	ck_assert_str_eq(r.p.finish_reason, "stop");
	ck_assert_int_eq(r.p.done, 1);
	ck_assert_int_eq(r.p.failed, 0);
	ck_assert_str_eq(r.p.error, "");
	run_free(&r);
}
END_TEST

START_TEST(test_stream_whole_every_two_way_and_500_random_splits_match_byte_by_byte)
{
	assert_split_invariant(STREAM, sizeof(STREAM) - 1);
}
END_TEST

START_TEST(test_split_inside_a_4_byte_character_delivers_it_whole)
{
	static const char s[] = "data: {\"choices\":[{\"delta\":{\"content\":\"a😀\"}}]}\n\n";
	const char *emoji = strstr(s, "😀");

	for (size_t k = 1; k < 4; k++) {
		struct run r;
		size_t at = (size_t)(emoji - s) + k;

		run_init(&r);
		feed(&r, s, at);
		ck_assert_int_eq(r.ncuts, 0);
		feed(&r, s + at, sizeof(s) - 1 - at);
		ck_assert_int_eq(r.ncuts, 1);
		ck_assert_str_eq(r.text.data, "a😀");
		run_free(&r);
	}
}
END_TEST

START_TEST(test_nothing_is_interpreted_before_its_blank_line)
{
	struct run r;

	run_init(&r);
	feed_str(&r, "data: {\"choices\":[{\"delta\":{\"content\":\"x\"},\"finish_reason\":\"stop\"}]}");
	feed_str(&r, "\n");
	ck_assert_int_eq(r.ncuts, 0);
	ck_assert_int_eq(r.p.chunks, 0);
	ck_assert_str_eq(r.p.finish_reason, "");
	feed_str(&r, "\n");
	ck_assert_str_eq(r.text.data, "x");
	ck_assert_str_eq(r.p.finish_reason, "stop");

	feed_str(&r, "data: [DONE]\n");
	ck_assert_int_eq(r.p.done, 0);
	feed_str(&r, "\n");
	ck_assert_int_eq(r.p.done, 1);
	run_free(&r);
}
END_TEST

/* A clean close takes an unterminated last event as ended, whatever was missing of its ending. */
START_TEST(test_finish_ends_an_event_the_upstream_did_not_end)
{
	static const char *const endings[] = { "", "\n", "\r", "\r\n" };
	static const char chunk[] = "data: {\"choices\":[{\"delta\":{\"content\":\"end\"}}]}\n\n";

	for (size_t i = 0; i < sizeof(endings) / sizeof(endings[0]); i++) {
		struct run r;
		char tail[32];

		run_init(&r);
		feed_str(&r, chunk);
		snprintf(tail, sizeof(tail), "data: [DONE]%s", endings[i]);
		feed_str(&r, tail);
		ck_assert_int_eq(r.p.done, 0);
		ck_assert_int_eq(upstream_sse_finish(&r.p), 0);
		ck_assert_msg(r.p.done == 1, "ending %zu: [DONE] not seen at finish", i);
		take(&r);
		ck_assert_str_eq(r.text.data, "end");
		run_free(&r);
	}
}
END_TEST

/* A clean close in the middle of an event's JSON is a malformed stream, and finish after [DONE] changes nothing. */
START_TEST(test_finish_of_a_cut_event_fails_and_after_done_is_a_no_op)
{
	struct run r;

	run_init(&r);
	feed_str(&r, "data: {\"choices\":[{\"delta\":{\"cont");
	ck_assert_int_eq(upstream_sse_finish(&r.p), -1);
	ck_assert_int_eq(r.p.failed, 1);
	run_free(&r);

	run_init(&r);
	feed_str(&r, "data: [DONE]\n\ndata: {");
	ck_assert_int_eq(upstream_sse_finish(&r.p), 0);
	ck_assert_int_eq(r.p.done, 1);
	ck_assert_int_eq(r.p.failed, 0);
	run_free(&r);
}
END_TEST

/* If \r and \n of one CRLF, read apart, counted as two endings, the blank line would cut the event in half. */
START_TEST(test_crlf_read_apart_is_one_line_ending)
{
	struct run r;

	run_init(&r);
	feed_str(&r, "data: {\"choices\":[{\"delta\":\r");
	feed_str(&r, "\n");
	feed_str(&r, "data: {\"content\":\"x\"}}]}\r");
	feed_str(&r, "\n\r");
	ck_assert_int_eq(r.p.failed, 0);
	ck_assert_str_eq(r.text.data, "x");
	feed_str(&r, "\n");
	feed_str(&r, "data: [DONE]\r");
	feed_str(&r, "\r");
	ck_assert_int_eq(r.p.done, 1);
	ck_assert_int_eq(r.p.failed, 0);
	run_free(&r);
}
END_TEST

START_TEST(test_content_is_sanitized_to_utf8_without_nul)
{
	struct run r;

	run_init(&r);
	feed_str(&r, "data: {\"choices\":[{\"delta\":{\"content\":\"a\\u0000b\"}}]}\n\n");
	ck_assert_str_eq(r.text.data, "a?b");
	feed_str(&r, "data: {\"choices\":[{\"delta\":{\"content\":\"x" "\xff" "\xc3" "\"}}]}\n\n");
	ck_assert_str_eq(r.text.data, "a?bx??");
	feed_str(&r, "data: {\"choices\":[{\"delta\":{\"content\":\"\\ud800|\"}}]}\n\n");	/* take() checks it is UTF-8 */
	ck_assert_int_eq(r.p.chunks, 3);
	ck_assert_int_eq(r.p.failed, 0);
	run_free(&r);
}
END_TEST

START_TEST(test_finish_reason_with_content_and_without_done)
{
	struct run r;

	run_init(&r);
	feed_str(&r, "data: {\"choices\":[{\"delta\":{\"content\":\"cut\"},\"finish_reason\":\"length\"}]}\n\n");
	ck_assert_str_eq(r.text.data, "cut");
	ck_assert_str_eq(r.p.finish_reason, "length");
	ck_assert_int_eq(r.p.done, 0);
	ck_assert_int_eq(r.p.failed, 0);
	run_free(&r);
}
END_TEST

/* The failing streams: text before the failure is kept, and they fail alike at every split. */
static const char NOT_JSON[] =
	"data: {\"choices\":[{\"delta\":{\"content\":\"é1\"}}]}\r\n\r\n"
	"data: {\"choices\":[{\"delta\":{\"content\":\r\n\r\n"
	"data: {\"choices\":[{\"delta\":{\"content\":\"never\"}}]}\n\n";

static const char ERROR_OBJECT[] =
	"data: {\"choices\":[{\"delta\":{\"content\":\"😀1\"}}]}\n\n"
	": comment\n"
	"data: {\"error\":{\"message\":\"Rate limit reached — retry\",\"type\":\"requests\","
	"\"code\":\"rate_limit_exceeded\"}}\n\n"
	"data: {\"choices\":[{\"delta\":{\"content\":\"never\"}}]}\n\n"
	"data: [DONE]\n\n";

START_TEST(test_data_line_that_is_not_json_fails_the_stream)
{
	struct run r;

	run_init(&r);
	ck_assert_int_eq(feed(&r, NOT_JSON, sizeof(NOT_JSON) - 1), -1);
	ck_assert_str_eq(r.text.data, "é1");
	ck_assert_int_eq(r.p.failed, 1);
	ck_assert_int_eq(r.p.done, 0);
	ck_assert_str_eq(r.p.error, "upstream sent a data line that is not JSON");
	ck_assert_int_eq(feed_str(&r, "data: [DONE]\n\n"), -1);
	ck_assert_int_eq(r.p.done, 0);
	ck_assert_int_eq(r.p.chunks, 1);
	run_free(&r);

	assert_split_invariant(NOT_JSON, sizeof(NOT_JSON) - 1);
}
END_TEST

START_TEST(test_error_object_fails_with_the_upstream_message)
{
	struct run r;

	run_init(&r);
	ck_assert_int_eq(feed(&r, ERROR_OBJECT, sizeof(ERROR_OBJECT) - 1), -1);
	ck_assert_str_eq(r.text.data, "😀1");
	ck_assert_int_eq(r.p.failed, 1);
	ck_assert_int_eq(r.p.done, 0);
	ck_assert_str_eq(r.p.error, "upstream error: Rate limit reached — retry");
	run_free(&r);

	assert_split_invariant(ERROR_OBJECT, sizeof(ERROR_OBJECT) - 1);
}
END_TEST

START_TEST(test_error_string_fails_and_error_null_does_not)
{
	struct run r;

	run_init(&r);
	feed_str(&r, "data: {\"error\":null,\"choices\":[{\"delta\":{\"content\":\"ok\"}}]}\n\n");
	ck_assert_int_eq(r.p.failed, 0);
	ck_assert_str_eq(r.text.data, "ok");
	ck_assert_int_eq(feed_str(&r, "data: {\"error\":\"overloaded\"}\n\n"), -1);
	ck_assert_str_eq(r.p.error, "upstream error: overloaded");
	run_free(&r);
}
END_TEST

START_TEST(test_error_message_is_one_line_cut_on_a_character_boundary)
{
	struct run r;
	struct buf s = { 0 };
	size_t n;

	buf_puts(&s, "data: {\"error\":{\"message\":\"line one\\nline two ");
	for (int i = 0; i < 150; i++)
		buf_puts(&s, "é");
	buf_puts(&s, "\"}}\n\n");
	run_init(&r);
	ck_assert_int_eq(feed(&r, s.data, s.len), -1);
	n = strlen(r.p.error);
	ck_assert_int_lt(n, sizeof(r.p.error));
	ck_assert_uint_gt(n, 150);
	ck_assert(util_utf8_valid(r.p.error, n));
	ck_assert_ptr_null(strchr(r.p.error, '\n'));
	ck_assert(strncmp(r.p.error, "upstream error: line one line two éé", 38) == 0);
	run_free(&r);
	buf_free(&s);
}
END_TEST

/* A line of n bytes that is a comment: the cap counts every line, not only data lines. */
static char *comment_line_new(size_t n)
{
	char *s = malloc(n + 1);

	ck_assert_ptr_nonnull(s);
	memset(s, 'x', n);
	s[0] = ':';
	s[n] = '\n';
	return s;
}

START_TEST(test_line_of_line_max_bytes_is_accepted)
{
	char *line = comment_line_new(UPSTREAM_LINE_MAX);
	struct run r;

	run_init(&r);
	ck_assert_int_eq(feed(&r, line, UPSTREAM_LINE_MAX + 1), 0);
	feed_str(&r, "data: {\"choices\":[{\"delta\":{\"content\":\"after\"}}]}\n\n");
	ck_assert_str_eq(r.text.data, "after");
	ck_assert_int_eq(r.p.failed, 0);
	run_free(&r);
	free(line);
}
END_TEST

START_TEST(test_line_over_line_max_fails_before_it_ends)
{
	char *line = comment_line_new(UPSTREAM_LINE_MAX + 1);
	struct run r;

	run_init(&r);
	feed_str(&r, "data: {\"choices\":[{\"delta\":{\"content\":\"before\"}}]}\n\n");
	ck_assert_int_eq(feed(&r, line, UPSTREAM_LINE_MAX), 0);
	ck_assert_int_eq(feed(&r, line + UPSTREAM_LINE_MAX, 1), -1);	/* the byte past the cap, not the \n */
	ck_assert_str_eq(r.p.error, "upstream line too long");
	ck_assert_str_eq(r.text.data, "before");
	ck_assert_int_eq(feed(&r, "\n", 1), -1);
	run_free(&r);
	free(line);
}
END_TEST

START_TEST(test_event_over_line_max_fails)
{
	size_t half = UPSTREAM_LINE_MAX / 2;	/* two data lines joined by \n: one byte over the cap */
	char *line = malloc(5 + half + 1);
	struct run r;

	ck_assert_ptr_nonnull(line);
	memcpy(line, "data:", 5);
	memset(line + 5, 'x', half);
	line[5 + half] = '\n';
	run_init(&r);
	ck_assert_int_eq(feed(&r, line, 5 + half + 1), 0);
	ck_assert_int_eq(feed(&r, line, 5 + half + 1), -1);
	ck_assert_str_eq(r.p.error, "upstream event too large");
	run_free(&r);
	free(line);
}
END_TEST

START_TEST(test_nothing_after_done_is_read)
{
	static const char s[] =
		"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"
		"data: [DONE]\n\n"
		"data: {\"choices\":[{\"delta\":{\"content\":\"late\"},\"finish_reason\":\"length\"}]}\n\n"
		"data: {not json\n\n"
		"data: {\"error\":\"late\"}\n\n";
	char *line = comment_line_new(UPSTREAM_LINE_MAX + 1);
	struct run r;

	run_init(&r);
	ck_assert_int_eq(feed(&r, s, sizeof(s) - 1), 0);
	ck_assert_int_eq(feed(&r, s, sizeof(s) - 1), 0);
	ck_assert_int_eq(feed(&r, line, UPSTREAM_LINE_MAX + 2), 0);
	ck_assert_str_eq(r.text.data, "a");
	ck_assert_int_eq(r.p.chunks, 1);
	ck_assert_str_eq(r.p.finish_reason, "");
	ck_assert_int_eq(r.p.done, 1);
	ck_assert_int_eq(r.p.failed, 0);
	ck_assert_str_eq(r.p.error, "");
	run_free(&r);
	free(line);

	assert_split_invariant(s, sizeof(s) - 1);
}
END_TEST

/* upstream_error_message on body, NUL-terminated or not: only len bytes are read. */
static void assert_error_message(const char *body, size_t len, size_t outlen, const char *want)
{
	char *copy = malloc(len ? len : 1), out[256];

	ck_assert_ptr_nonnull(copy);
	ck_assert_uint_le(outlen, sizeof(out));
	memcpy(copy, body, len);
	upstream_error_message(copy, len, out, outlen);
	ck_assert_str_eq(out, want);
	free(copy);
}

#define ASSERT_ERROR_MESSAGE(body, want) assert_error_message(body, strlen(body), 200, want)

START_TEST(test_error_message_from_the_known_body_shapes)
{
	ASSERT_ERROR_MESSAGE("{\"error\":{\"message\":\"Invalid API key\",\"type\":\"auth\"}}", "Invalid API key");
	ASSERT_ERROR_MESSAGE("{\"error\":\"model is loading\"}", "model is loading");
	ASSERT_ERROR_MESSAGE("{\"message\":\"Not Found\"}", "Not Found");
	ASSERT_ERROR_MESSAGE("{\"detail\":\"Model not loaded\"}", "Model not loaded");
	ASSERT_ERROR_MESSAGE("{\"error\":{\"message\":\"tab\\tand\\r\\nnewline\"}}", "tab and  newline");
}
END_TEST

START_TEST(test_error_message_falls_back_to_the_body)
{
	ASSERT_ERROR_MESSAGE("{\"error\":{\"code\":500}}", "{\"error\":{\"code\":500}}");
	ASSERT_ERROR_MESSAGE("<html>\r\n<title>502 Bad Gateway</title>", "<html>  <title>502 Bad Gateway</title>");
	ASSERT_ERROR_MESSAGE("bad \xff byte", "bad ? byte");
	ASSERT_ERROR_MESSAGE("", "");
	assert_error_message("abcdef", 3, 200, "abc");
}
END_TEST

START_TEST(test_error_message_is_cut_to_outlen_on_a_character_boundary)
{
	static const char euros[] = "€€€€€€€€€€";	/* 3 bytes each */
	static const char json[] = "{\"message\":\"€€€€\"}";

	assert_error_message(euros, sizeof(euros) - 1, 10, "€€€");
	assert_error_message(euros, sizeof(euros) - 1, 9, "€€");
	assert_error_message(euros, sizeof(euros) - 1, 1, "");
	assert_error_message(json, sizeof(json) - 1, 8, "€€");
}
END_TEST

Suite *upstream_sse_suite(void)
{
	Suite *s = suite_create("upstream_sse");
	TCase *stream = tcase_create("stream");
	TCase *failures = tcase_create("failures");
	TCase *error_body = tcase_create("error_body");

	tcase_set_timeout(stream, 60);
	tcase_add_test(stream, test_stream_byte_by_byte_yields_each_event_text_in_order);
	tcase_add_test(stream, test_stream_whole_every_two_way_and_500_random_splits_match_byte_by_byte);
	tcase_add_test(stream, test_split_inside_a_4_byte_character_delivers_it_whole);
	tcase_add_test(stream, test_nothing_is_interpreted_before_its_blank_line);
	tcase_add_test(stream, test_crlf_read_apart_is_one_line_ending);
	tcase_add_test(stream, test_content_is_sanitized_to_utf8_without_nul);
	tcase_add_test(stream, test_finish_reason_with_content_and_without_done);
	tcase_add_test(stream, test_finish_ends_an_event_the_upstream_did_not_end);
	tcase_add_test(stream, test_finish_of_a_cut_event_fails_and_after_done_is_a_no_op);
	suite_add_tcase(s, stream);

	tcase_set_timeout(failures, 60);
	tcase_add_test(failures, test_data_line_that_is_not_json_fails_the_stream);
	tcase_add_test(failures, test_error_object_fails_with_the_upstream_message);
	tcase_add_test(failures, test_error_string_fails_and_error_null_does_not);
	tcase_add_test(failures, test_error_message_is_one_line_cut_on_a_character_boundary);
	tcase_add_test(failures, test_line_of_line_max_bytes_is_accepted);
	tcase_add_test(failures, test_line_over_line_max_fails_before_it_ends);
	tcase_add_test(failures, test_event_over_line_max_fails);
	tcase_add_test(failures, test_nothing_after_done_is_read);
	suite_add_tcase(s, failures);

	tcase_add_test(error_body, test_error_message_from_the_known_body_shapes);
	tcase_add_test(error_body, test_error_message_falls_back_to_the_body);
	tcase_add_test(error_body, test_error_message_is_cut_to_outlen_on_a_character_boundary);
	suite_add_tcase(s, error_body);
	return s;
}
