/*
 * check_bench: bench/hist and bench/sse_decode, what bench/sse_load's figures
 * rest on: quantiles within the histogram's stated error, and the event
 * stream decoded the same in every split of its bytes, chunked or not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "sse_decode.h"
#include "suites.h"

START_TEST(test_hist_exact_below_128_and_within_1_6_percent_above)
{
	for (int64_t v = 0; v < 128; v++)
		ck_assert_double_eq(hist_value(hist_index(v)), (double)v);
	for (int64_t v = 128; v < (1LL << 40); v = v * 3 / 2 + 7) {
		double got = hist_value(hist_index(v));
		ck_assert_msg(got >= v * (1 - 0.016) && got <= v * (1 + 0.016), "%lld -> %f", (long long)v, got);
		ck_assert_int_lt(hist_index(v), HIST_BUCKETS);
	}
}
END_TEST

START_TEST(test_hist_quantiles_of_a_known_distribution)
{
	struct hist *h = calloc(1, sizeof(*h));

	ck_assert_double_eq(hist_quantile(h, 0.5), 0);
	for (int64_t v = 1; v <= 10000; v++)
		hist_add(h, v);
	hist_add(h, -5);			/* clock trouble: counted apart, as 0 */
	ck_assert_uint_eq(h->count, 10001);
	ck_assert_uint_eq(h->negative, 1);
	ck_assert_int_eq(h->min_us, 0);
	ck_assert_int_eq(h->max_us, 10000);
	ck_assert_double_eq_tol(hist_quantile(h, 0.5), 5000, 5000 * 0.016);
	ck_assert_double_eq_tol(hist_quantile(h, 0.99), 9900, 9900 * 0.016);
	ck_assert_double_eq(hist_quantile(h, 1.0), 10000);	/* the max is exact */
	ck_assert_double_le(hist_quantile(h, 0.9999), 10000);
	free(h);
}
END_TEST

/* What the decoder found, as text: one line per event or comment. */
struct seen {
	char text[8192];
	size_t len;
};

static void seen_event(void *ctx, const struct sse_event *ev)
{
	struct seen *s = ctx;

	s->len += (size_t)snprintf(s->text + s->len, sizeof(s->text) - s->len, "[%s%lld %s %s%.*s]",
				   ev->has_id ? "#" : "", ev->has_id ? (long long)ev->id : 0LL, ev->type,
				   ev->has_data ? "=" : "", (int)ev->data_len, ev->data);
}

static void seen_comment(void *ctx)
{
	struct seen *s = ctx;

	s->len += (size_t)snprintf(s->text + s->len, sizeof(s->text) - s->len, "[:]");
}

/* Decodes body in the pieces cut at the given offsets; returns the last result. */
static int decode(struct seen *s, int chunked, int64_t length, const char *body, size_t len, const size_t *cuts,
		  int ncuts, int *retry_ms)
{
	struct sse_decoder d = { .on_event = seen_event, .on_comment = seen_comment, .ctx = s };
	size_t at = 0;
	int rc = 0;

	memset(s, 0, sizeof(*s));
	sse_decoder_start(&d, chunked, length);
	for (int k = 0; k <= ncuts && rc == 0; k++) {
		size_t end = k < ncuts ? cuts[k] : len;
		rc = sse_decoder_body(&d, body + at, end - at);
		at = end;
	}
	if (retry_ms)
		*retry_ms = d.retry_ms;
	sse_decoder_free(&d);
	return rc;
}

static const char STREAM[] =
	"retry: 2000\n\n"
	": keepalive\r\n\r\n"
	"id: 7\n\n"
	"id: 2.8\nevent: message.delta\ndata: {\"text\":\"a\"}\n\n"
	"id: 3.9\r\nevent: conversation.updated\r\ndata: line one\r\ndata: line two\r\n\r\n"
	"id: 10\rdata:no space\r\r"
	"event: reset\nid: x9\ndata: {}\n\n"
	"id: .5\ndata: {}\n\n"
	"id: 1.2.3\ndata: {}\n\n";
static const char WANT[] =
	"[0 message ][:][0 message ][#7 message ][#8 message.delta ={\"text\":\"a\"}]"
	"[#9 conversation.updated =line one\nline two][#10 message =no space][0 reset ={}]"
	"[0 message ={}][0 message ={}]";

START_TEST(test_events_decode_the_same_in_every_split)
{
	struct seen s;
	size_t len = strlen(STREAM), cuts[3];
	int retry;

	ck_assert_int_eq(decode(&s, 0, -1, STREAM, len, NULL, 0, &retry), 0);
	ck_assert_str_eq(s.text, WANT);
	ck_assert_int_eq(retry, 2000);
	for (size_t a = 0; a <= len; a++) {	/* every cut in two */
		cuts[0] = a;
		ck_assert_int_eq(decode(&s, 0, -1, STREAM, len, cuts, 1, NULL), 0);
		ck_assert_msg(!strcmp(s.text, WANT), "cut at %zu: %s", a, s.text);
	}
	srand(7);
	for (int n = 0; n < 2000; n++) {	/* and random cuts in four */
		for (int k = 0; k < 3; k++)
			cuts[k] = (size_t)rand() % (len + 1);
		for (int k = 1; k < 3; k++)
			for (int j = k; j > 0 && cuts[j - 1] > cuts[j]; j--) {
				size_t t = cuts[j];
				cuts[j] = cuts[j - 1];
				cuts[j - 1] = t;
			}
		decode(&s, 0, -1, STREAM, len, cuts, 3, NULL);
		ck_assert_str_eq(s.text, WANT);
	}
}
END_TEST

START_TEST(test_chunked_bodies_decode_the_same_and_end_at_the_last_chunk)
{
	/* the stream in chunks of 5 bytes, hex sizes, an extension, a trailer */
	static char body[4096];
	size_t len = 0, n = strlen(STREAM), cuts[1];
	struct seen s;

	for (size_t at = 0; at < n; at += 5) {
		size_t k = n - at < 5 ? n - at : 5;
		len += (size_t)snprintf(body + len, sizeof(body) - len, at == 10 ? "%zX;ext=1\r\n" : "%zx\r\n", k);
		memcpy(body + len, STREAM + at, k);
		len += k;
		memcpy(body + len, "\r\n", 2);
		len += 2;
	}
	len += (size_t)snprintf(body + len, sizeof(body) - len, "0\r\nX-Trailer: 1\r\n\r\n");
	ck_assert_int_eq(decode(&s, 1, -1, body, len, NULL, 0, NULL), 1);
	ck_assert_str_eq(s.text, WANT);
	for (size_t a = 0; a <= len; a++) {
		cuts[0] = a;
		ck_assert_int_eq(decode(&s, 1, -1, body, len, cuts, 1, NULL), 1);
		ck_assert_msg(!strcmp(s.text, WANT), "cut at %zu: %s", a, s.text);
	}
}
END_TEST

START_TEST(test_content_length_ends_the_body_and_bad_framing_is_an_error)
{
	static const char body[] = "id: 1\ndata: a\n\nid: 2\ndata: b\n\n";
	struct seen s;
	char *huge;

	ck_assert_int_eq(decode(&s, 0, 15, body, strlen(body), NULL, 0, NULL), 1);
	ck_assert_str_eq(s.text, "[#1 message =a]");		/* what follows is not the body's */
	ck_assert_int_eq(decode(&s, 1, -1, "zz\r\n", 4, NULL, 0, NULL), -1);
	ck_assert_int_eq(decode(&s, 1, -1, "\r\n\r\n", 4, NULL, 0, NULL), -1);	/* no size */
	ck_assert_int_eq(decode(&s, 1, -1, "3\r\nabcX", 7, NULL, 0, NULL), -1);	/* no CRLF after data */
	huge = malloc(SSE_LINE_MAX + 16);
	memset(huge, 'x', SSE_LINE_MAX + 16);
	memcpy(huge, "data: ", 6);
	ck_assert_int_eq(decode(&s, 0, -1, huge, SSE_LINE_MAX + 16, NULL, 0, NULL), -1);	/* a line too long */
	free(huge);
}
END_TEST

Suite *bench_suite(void)
{
	Suite *s = suite_create("bench");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_hist_exact_below_128_and_within_1_6_percent_above);
	tcase_add_test(tc, test_hist_quantiles_of_a_known_distribution);
	tcase_add_test(tc, test_events_decode_the_same_in_every_split);
	tcase_add_test(tc, test_chunked_bodies_decode_the_same_and_end_at_the_last_chunk);
	tcase_add_test(tc, test_content_length_ends_the_body_and_bad_framing_is_an_error);
	suite_add_tcase(s, tc);
	return s;
}
