/*
 * upstream_sse: a pure, incremental parser of a chat upstream's streamed
 * answer, for the four protocols mjs speaks (DESIGN.md "Upstreams"). Every one
 * of them streams text/event-stream; they differ in what an event says:
 *   openai-chat       "data: {json}" chunks (choices[0].delta.content, the
 *                     reasoning in delta.reasoning_content or delta.reasoning,
 *                     usage in the last chunk), ending with "data: [DONE]";
 *   openai-responses  typed events (response.output_text.delta,
 *                     response.reasoning_summary_text.delta, response.completed
 *                     with usage, response.incomplete, response.failed, error);
 *   anthropic         "event:" lines naming the data's type (message_start,
 *                     content_block_delta with text_delta or thinking_delta,
 *                     message_delta with stop_reason and usage, message_stop,
 *                     error, ping);
 *   gemini            "data: {json}" of GenerateContentResponse (parts with
 *                     thought: true are reasoning; finishReason; usageMetadata),
 *                     ending when the connection closes.
 * Bytes may be split anywhere, including inside a line or a multi-byte UTF-8
 * character: nothing is interpreted before its line is whole. What arrives is
 * untrusted: text is made valid UTF-8, lines and events are bounded, a
 * malformed stream fails with a reason. The protocol's own code lives in
 * proto_*.c (proto.h); tests/unit/check_upstream_sse.c feeds each one
 * byte by byte and in random splits.
 */
#ifndef MJS_WORKER_UPSTREAM_SSE_H
#define MJS_WORKER_UPSTREAM_SSE_H

#include <stddef.h>

#include "common/config.h"	/* enum upstream_protocol */
#include "common/util.h"

#define UPSTREAM_LINE_MAX (1 << 20)

struct upstream_sse {
	enum upstream_protocol proto;
	struct buf line;	/* the current, incomplete line */
	struct buf data;	/* data: lines of the current event */
	char event[64];		/* the event: line of the current event ("" when none) */
	int saw_cr;		/* last byte was \r: a following \n is not a new line */
	int done;		/* the stream said it is complete */
	int failed;		/* malformed stream, or an error event: error holds why */
	char finish_reason[32];	/* "stop", "length" (cut at the token limit), or the upstream's own word */
	char error[256];	/* why it failed */
	struct buf content;	/* answer text received and not yet taken by the caller */
	struct buf reasoning;	/* reasoning ("thinking") text received and not yet taken */
	long chunks;		/* pieces of answer text received */
	int has_usage;		/* the upstream reported token counts */
	long input_tokens, output_tokens;
};

/* A parser of the openai-chat protocol; set proto after it for another. */
void upstream_sse_init(struct upstream_sse *p);
void upstream_sse_free(struct upstream_sse *p);

/* Feeds bytes. Returns 0, or -1 once the stream is malformed or failed (p->error says why). */
int upstream_sse_feed(struct upstream_sse *p, const char *bytes, size_t n);

/*
 * The upstream closed the stream cleanly: an event it did not end with a blank
 * line is taken as ended (some proxies drop the last "\n"). Returns as _feed.
 * A gemini stream is done when it closes after a finishReason.
 */
int upstream_sse_finish(struct upstream_sse *p);

/*
 * Extracts a human error message from an upstream JSON error body such as
 * {"error":{"message":"…"}} or {"message":"…"} or {"detail":"…"} (or a JSON
 * array of those, as Gemini answers); falls back to the first bytes of the body.
 * Writes at most outlen bytes (NUL-terminated).
 */
void upstream_error_message(const char *body, size_t len, char *out, size_t outlen);

#endif
