/*
 * proto: the chat protocols' own code, one file each (proto_openai_chat.c,
 * proto_openai_responses.c, proto_anthropic.c, proto_gemini.c): what one
 * streamed event means (called by upstream_sse.c with the event's JSON), and
 * the request a reply sends (url, headers, body). Pure: no curl, no database;
 * tests/unit/check_upstream_sse.c and check_proto.c drive them.
 */
#ifndef MJS_WORKER_PROTO_H
#define MJS_WORKER_PROTO_H

#include <json-c/json.h>
#include <stddef.h>

#include "worker/upstream_sse.h"

/* --- one event of a stream (upstream_sse.c calls the protocol's) ---------------- */

void proto_openai_chat_event(struct upstream_sse *p, const char *event, struct json_object *root);
void proto_openai_responses_event(struct upstream_sse *p, const char *event, struct json_object *root);
void proto_anthropic_event(struct upstream_sse *p, const char *event, struct json_object *root);
void proto_gemini_event(struct upstream_sse *p, const char *event, struct json_object *root);

/* What the protocols share: text of a part (sanitized), the finish, usage, failure. */
void proto_text(struct upstream_sse *p, int reasoning, const char *s, size_t n);
void proto_finish(struct upstream_sse *p, const char *reason);
void proto_usage(struct upstream_sse *p, long input_tokens, long output_tokens);
void proto_fail(struct upstream_sse *p, const char *prefix, const char *message);
/* The error message of an error object ({"message"} or {"error":{"message"}}), as upstream_error_message. */
void proto_fail_json(struct upstream_sse *p, struct json_object *err);

/* Members of a JSON object, NULL / 0 when absent or of another type. */
struct json_object *proto_member(struct json_object *o, const char *key);
const char *proto_string(struct json_object *o, const char *key, size_t *len);
int proto_long(struct json_object *o, const char *key, long *out);

/* --- the request of a reply ------------------------------------------------------ */

/* One message of the conversation so far. */
struct chat_turn {
	const char *role;	/* "user" or "assistant" */
	const char *content;
	size_t len;
};

struct chat_request {
	const char *base_url;	/* the upstream's base, without the protocol's path */
	const char *api_key;	/* "" when none */
	const char *model;
	const char *system;	/* the system prompt, "" when none */
	const struct chat_turn *turns;
	int nturns;
	int max_tokens;		/* 0: the upstream's default (anthropic needs one: PROTO_ANTHROPIC_MAX_TOKENS) */
	int reasoning;		/* ask for the reasoning: Responses' summary, Anthropic's thinking, Gemini's thoughts */
};

#define PROTO_ANTHROPIC_MAX_TOKENS 8192
#define PROTO_HEADERS_MAX 4

struct proto_request {
	char *url;
	char *body;
	char *headers[PROTO_HEADERS_MAX];	/* "Name: value" */
	int nheaders;
};

/* Builds what a reply sends to an upstream of protocol proto. Returns 0, or -1 out of memory. */
int proto_request_build(enum upstream_protocol proto, const struct chat_request *r, struct proto_request *out);
void proto_request_free(struct proto_request *out);

/*
 * The request that lists an upstream's models (GET, no body): what mjsctl check
 * asks each upstream. Returns 0, or -1 out of memory.
 */
int proto_models_request(enum upstream_protocol proto, const char *base_url, const char *api_key,
			 struct proto_request *out);

/* How many models a models list answer names (data[] or models[]), or -1 when it is not one. */
int proto_models_count(const char *body, size_t len);

/* The protocols' request bodies (proto_request_build calls the one of its protocol). */
struct json_object *proto_openai_chat_body(const struct chat_request *r);
struct json_object *proto_openai_responses_body(const struct chat_request *r);
struct json_object *proto_anthropic_body(const struct chat_request *r);
struct json_object *proto_gemini_body(const struct chat_request *r);

#endif
