/*
 * sse_decode: the response body decoder of bench/sse_load: HTTP/1.1 framing
 * (chunked, Content-Length, or until close) and the text/event-stream format
 * (lines ending in LF, CRLF or CR; data, event, id and retry fields; comments),
 * fed bytes in any split. Pure, bounded (a line or an event's data past
 * SSE_LINE_MAX is an error), unit-tested in tests/unit/check_bench.c.
 */
#ifndef MJS_BENCH_SSE_DECODE_H
#define MJS_BENCH_SSE_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "lbuf.h"

#define SSE_TYPE_MAX 64			/* event type names, longer ones cut */
#define SSE_LINE_MAX (4 * 1024 * 1024)	/* one line, one event's data */

/* One event, as dispatched at its blank line. */
struct sse_event {
	int has_id;
	int64_t id;		/* the seq of the id: field (SEQ or EPOCH.SEQ, digits), when has_id */
	const char *type;	/* "message" when the event named none */
	int has_data;		/* an event without data is only an id: line (or nothing) */
	const char *data;	/* the data: lines joined with \n */
	size_t data_len;
};

enum sse_chunk_state { SSE_CH_SIZE, SSE_CH_EXT, SSE_CH_DATA, SSE_CH_DATA_END, SSE_CH_TRAILER, SSE_CH_DONE };

struct sse_decoder {
	/* the body's framing */
	int chunked;
	int64_t body_left;		/* Content-Length left; -1: until the connection closes */
	enum sse_chunk_state ch;
	uint64_t chunk_left;
	int chunk_digits;
	int trailer_line_len;
	/* the event stream */
	struct lbuf line, data;
	int has_data, has_id;
	int64_t ev_id;
	char ev_type[SSE_TYPE_MAX];
	int skip_lf;			/* the previous line ended with CR: ignore one LF */
	int retry_ms;			/* the last retry: field (0: none yet) */
	/* what it found: every event at its blank line, every comment line */
	void (*on_event)(void *ctx, const struct sse_event *ev);
	void (*on_comment)(void *ctx);
	void *ctx;
};

/* Starts a body: chunked, or content_length bytes (-1: until close). Keeps the callbacks. */
void sse_decoder_start(struct sse_decoder *d, int chunked, int64_t content_length);

/* Feeds body bytes. Returns 0 (more to come), 1 (the body ended), or -1 (malformed or too long). */
int sse_decoder_body(struct sse_decoder *d, const char *p, size_t n);

void sse_decoder_free(struct sse_decoder *d);

#endif
