/*
 * sse: pure framing for open streams. Event text follows text/event-stream
 * ("id: 1.42\nevent: conversation.updated\ndata: {...}\n\n"); the hub wraps text
 * in FastCGI STDOUT records itself because it owns the connection after hand-off.
 *
 * An event's id is "EPOCH.SEQ" (mjs-events(7)): the seq numbers the user's
 * events, the epoch names the history they belong to (the PostgreSQL timeline
 * the event was written on, sql/functions/epoch.sql).
 */
#ifndef MJS_API_SSE_H
#define MJS_API_SSE_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define FCGI_HEADER_LEN 8
#define FCGI_MAX_CONTENT 65535

/* An SSE id. epoch 0: not known (a bare seq from a client: the current epoch). */
struct sse_id {
	int32_t epoch;
	int64_t seq;
};

/*
 * Parses a Last-Event-ID: "SEQ" (epoch 0) or "EPOCH.SEQ", digits only, the
 * epoch 1 to 2^31-1 and the seq 0 to 2^63-1. Returns 0, or -1 (out unchanged).
 */
int sse_parse_id(const char *text, struct sse_id *out);

/*
 * Appends one SSE event with id "epoch.seq", or a bare "seq" when epoch is 0
 * (for a client that sent a bare one: a client from before epochs). data must
 * be one line (JSON from PostgreSQL is).
 */
int sse_format_event(struct buf *out, int32_t epoch, int64_t seq, const char *type, size_t type_len,
		     const char *data, size_t data_len);

/* Appends "id: EPOCH.SEQ\n\n" (bare when epoch is 0): moves the client's Last-Event-ID without firing an event. */
int sse_format_id(struct buf *out, int32_t epoch, int64_t seq);

/* Appends the HTTP headers (CGI style) and the retry: line that open a stream. */
int sse_format_open(struct buf *out, int retry_ms);

/* Appends text as FastCGI STDOUT records (split at 65535 bytes) for request_id. */
int sse_fcgi_stdout(struct buf *out, uint16_t request_id, const char *text, size_t len);

/* Appends the records that end a request: an empty STDOUT and END_REQUEST. */
int sse_fcgi_end(struct buf *out, uint16_t request_id);

#endif
