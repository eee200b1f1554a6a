/*
 * proto_openai_responses: OpenAI's Responses API.
 *   POST {base}/responses {"model","instructions","input":[{"role","content"}...],
 *        "stream":true,"max_output_tokens"}
 *   event: response.output_text.delta             data: {"type":..,"delta":".."}
 *   event: response.reasoning_summary_text.delta  data: {"type":..,"delta":".."}
 *   event: response.completed  data: {"response":{"usage":{"input_tokens","output_tokens"}}}
 *   event: response.incomplete data: {"response":{"incomplete_details":{"reason":
 *          "max_output_tokens"},"usage":{...}}}
 *   event: response.failed     data: {"response":{"error":{"code","message"}}}
 *   event: error               data: {"type":"error","code","message"}
 * The type is the data's "type" (the event: line says the same).
 */
#include "worker/proto.h"

#include <string.h>

struct json_object *proto_openai_responses_body(const struct chat_request *r)
{
	struct json_object *root = json_object_new_object(), *input = json_object_new_array();

	for (int i = 0; i < r->nturns; i++) {
		struct json_object *m = json_object_new_object();
		json_object_object_add(m, "role", json_object_new_string(r->turns[i].role));
		json_object_object_add(m, "content", json_object_new_string_len(r->turns[i].content,
										     (int)r->turns[i].len));
		json_object_array_add(input, m);
	}
	json_object_object_add(root, "model", json_object_new_string(r->model));
	if (r->system[0])
		json_object_object_add(root, "instructions", json_object_new_string(r->system));
	json_object_object_add(root, "input", input);
	json_object_object_add(root, "stream", json_object_new_boolean(1));
	json_object_object_add(root, "store", json_object_new_boolean(0));
	if (r->max_tokens > 0)
		json_object_object_add(root, "max_output_tokens", json_object_new_int(r->max_tokens));
	if (r->reasoning) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "summary", json_object_new_string("auto"));
		json_object_object_add(root, "reasoning", o);
	}
	return root;
}

static void usage(struct upstream_sse *p, struct json_object *response)
{
	struct json_object *u = proto_member(response, "usage");
	long in = 0, out = 0;

	if (u && proto_long(u, "input_tokens", &in) + proto_long(u, "output_tokens", &out) > 0)
		proto_usage(p, in, out);
}

void proto_openai_responses_event(struct upstream_sse *p, const char *event, struct json_object *root)
{
	const char *type = proto_string(root, "type", NULL), *s;
	struct json_object *response = proto_member(root, "response"), *err;
	size_t n;

	if (!type)
		type = event;
	if (!strcmp(type, "response.output_text.delta")) {
		if ((s = proto_string(root, "delta", &n)))
			proto_text(p, 0, s, n);
	} else if (!strcmp(type, "response.reasoning_summary_text.delta") ||
		   !strcmp(type, "response.reasoning_text.delta")) {
		if ((s = proto_string(root, "delta", &n)))
			proto_text(p, 1, s, n);
	} else if (!strcmp(type, "response.completed")) {
		usage(p, response);
		proto_finish(p, "stop");
		p->done = 1;
	} else if (!strcmp(type, "response.incomplete")) {
		const char *why = proto_string(proto_member(response, "incomplete_details"), "reason", NULL);
		usage(p, response);
		proto_finish(p, why && !strcmp(why, "max_output_tokens") ? "length" : why ? why : "incomplete");
		p->done = 1;
	} else if (!strcmp(type, "response.failed")) {
		err = proto_member(response, "error");
		if (err && json_object_is_type(err, json_type_object))
			proto_fail_json(p, err);
		else
			proto_fail(p, NULL, "upstream error: the response failed");
	} else if (!strcmp(type, "error")) {
		proto_fail_json(p, root);
	}
	/* response.created, output_item.added, content_part.*, *.done: nothing new */
}
