/*
 * proto_anthropic: Anthropic's Messages API.
 *   POST {base}/v1/messages (x-api-key, anthropic-version) {"model","system",
 *        "messages":[{"role":"user"|"assistant","content"}...],"max_tokens","stream":true}
 *   event: message_start        data: {"message":{"usage":{"input_tokens":N}}}
 *   event: content_block_delta  data: {"delta":{"type":"text_delta","text":".."}}
 *                                      {"delta":{"type":"thinking_delta","thinking":".."}}
 *   event: message_delta        data: {"delta":{"stop_reason":"end_turn"|"max_tokens"},
 *                                      "usage":{"output_tokens":N}}
 *   event: message_stop, ping, content_block_start/stop
 *   event: error                data: {"type":"error","error":{"type","message"}}
 * The system prompt goes in "system", never among the messages, and the
 * messages must alternate starting with the user: turns of the same role in a
 * row are joined, and a conversation opening with the assistant gets an empty
 * user turn first.
 */
#include "worker/proto.h"

#include <string.h>

struct json_object *proto_anthropic_body(const struct chat_request *r)
{
	struct json_object *root = json_object_new_object(), *msgs = json_object_new_array();
	struct buf joined = { 0 };
	const char *role = NULL;
	int max_tokens = r->max_tokens > 0 ? r->max_tokens : PROTO_ANTHROPIC_MAX_TOKENS;

	for (int i = 0; i <= r->nturns; i++) {
		const char *next = i < r->nturns ? r->turns[i].role : NULL;
		if (role && (!next || strcmp(next, role) != 0)) {
			struct json_object *m = json_object_new_object();
			json_object_object_add(m, "role", json_object_new_string(role));
			json_object_object_add(m, "content", json_object_new_string_len(joined.data ? joined.data : "",
											      (int)joined.len));
			json_object_array_add(msgs, m);
			buf_reset(&joined);
		}
		if (!next)
			break;
		if (!role && strcmp(next, "user") != 0) {
			struct json_object *m = json_object_new_object();
			json_object_object_add(m, "role", json_object_new_string("user"));
			json_object_object_add(m, "content", json_object_new_string("(conversation continues)"));
			json_object_array_add(msgs, m);
		}
		if (joined.len)
			buf_append(&joined, "\n\n", 2);
		buf_append(&joined, r->turns[i].content, r->turns[i].len);
		role = next;
	}
	buf_free(&joined);
	json_object_object_add(root, "model", json_object_new_string(r->model));
	if (r->system[0])
		json_object_object_add(root, "system", json_object_new_string(r->system));
	json_object_object_add(root, "messages", msgs);
	json_object_object_add(root, "max_tokens", json_object_new_int(max_tokens));
	json_object_object_add(root, "stream", json_object_new_boolean(1));
	/* thinking takes a budget of at least 1,024 tokens, below max_tokens: half of it */
	if (r->reasoning && max_tokens / 2 >= 1024) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "type", json_object_new_string("enabled"));
		json_object_object_add(o, "budget_tokens", json_object_new_int(max_tokens / 2));
		json_object_object_add(root, "thinking", o);
	}
	return root;
}

void proto_anthropic_event(struct upstream_sse *p, const char *event, struct json_object *root)
{
	const char *type = proto_string(root, "type", NULL), *s, *kind;
	struct json_object *delta = proto_member(root, "delta"), *u;
	size_t n;
	long v;

	if (!type)
		type = event;
	if (!strcmp(type, "content_block_delta")) {
		kind = proto_string(delta, "type", NULL);
		if (kind && !strcmp(kind, "text_delta") && (s = proto_string(delta, "text", &n)))
			proto_text(p, 0, s, n);
		else if (kind && !strcmp(kind, "thinking_delta") && (s = proto_string(delta, "thinking", &n)))
			proto_text(p, 1, s, n);
	} else if (!strcmp(type, "message_start")) {
		u = proto_member(proto_member(root, "message"), "usage");
		if (proto_long(u, "input_tokens", &v))
			proto_usage(p, v, p->output_tokens);
	} else if (!strcmp(type, "message_delta")) {
		if ((s = proto_string(delta, "stop_reason", NULL)))
			proto_finish(p, !strcmp(s, "max_tokens") ? "length"
					: !strcmp(s, "end_turn") || !strcmp(s, "stop_sequence") ? "stop" : s);
		u = proto_member(root, "usage");
		if (proto_long(u, "output_tokens", &v))
			proto_usage(p, p->input_tokens, v);
	} else if (!strcmp(type, "message_stop")) {
		p->done = 1;
	} else if (!strcmp(type, "error")) {
		proto_fail_json(p, root);
	}
	/* ping, content_block_start/stop, signature deltas: nothing to keep */
}
