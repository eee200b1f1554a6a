/*
 * upstream_sse: a pure, byte-at-a-time parser for an OpenAI-compatible chat
 * completions stream (text/event-stream of "data: {json}" events ending with
 * "data: [DONE]"). Bytes may be split anywhere, including inside a line or a
 * multi-byte UTF-8 character: nothing is interpreted before its line is whole.
 */
#ifndef MJS_WORKER_UPSTREAM_SSE_H
#define MJS_WORKER_UPSTREAM_SSE_H

#include <stddef.h>

#include "common/util.h"

#define UPSTREAM_LINE_MAX (1 << 20)

struct upstream_sse {
	struct buf line;	/* the current, incomplete line */
	struct buf data;	/* data: lines of the current event */
	int saw_cr;		/* last byte was \r: a following \n is not a new line */
	int done;		/* [DONE] seen */
	int failed;		/* malformed stream: error holds why */
	char finish_reason[32];
	char error[256];	/* an error the upstream sent in the stream */
	struct buf content;	/* text received and not yet taken by the caller */
	long chunks;		/* content pieces received */
};

void upstream_sse_init(struct upstream_sse *p);
void upstream_sse_free(struct upstream_sse *p);

/* Feeds bytes. Returns 0, or -1 once the stream is malformed (p->error says why). */
int upstream_sse_feed(struct upstream_sse *p, const char *bytes, size_t n);

/*
 * The upstream closed the stream cleanly: an event it did not end with a blank
 * line is taken as ended (some proxies drop the last "\n"). Returns as _feed.
 */
int upstream_sse_finish(struct upstream_sse *p);

/*
 * Extracts a human error message from an upstream JSON error body such as
 * {"error":{"message":"…"}} or {"message":"…"} or {"detail":"…"}; falls back to
 * the first bytes of the body. Writes at most outlen bytes (NUL-terminated).
 */
void upstream_error_message(const char *body, size_t len, char *out, size_t outlen);

#endif
