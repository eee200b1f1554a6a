/*
 * proto_openai_chat: OpenAI chat completions, the protocol of OpenAI, DeepSeek,
 * vLLM, Ollama, llama.cpp, OpenRouter and most proxies.
 *   POST {base}/chat/completions {"model","messages":[{"role","content"}...],
 *        "stream":true,"stream_options":{"include_usage":true},"max_tokens"}
 *   data: {"choices":[{"delta":{"content":"..","reasoning_content":".."},
 *          "finish_reason":null|"stop"|"length"}]}
 *   data: {"choices":[],"usage":{"prompt_tokens":N,"completion_tokens":N}}
 *   data: [DONE]
 * The reasoning comes as delta.reasoning_content (DeepSeek, vLLM) or
 * delta.reasoning (OpenRouter); an error as {"error":{...}} in a data line.
 */
#include "worker/proto.h"

#include <string.h>

static struct json_object *message(const char *role, const char *content, size_t len)
{
	struct json_object *m = json_object_new_object();

	json_object_object_add(m, "role", json_object_new_string(role));
	json_object_object_add(m, "content", json_object_new_string_len(content, (int)len));
	return m;
}

struct json_object *proto_openai_chat_body(const struct chat_request *r)
{
	struct json_object *root = json_object_new_object(), *msgs = json_object_new_array(), *opts;

	if (r->system[0])
		json_object_array_add(msgs, message("system", r->system, strlen(r->system)));
	for (int i = 0; i < r->nturns; i++)
		json_object_array_add(msgs, message(r->turns[i].role, r->turns[i].content, r->turns[i].len));
	json_object_object_add(root, "model", json_object_new_string(r->model));
	json_object_object_add(root, "messages", msgs);
	json_object_object_add(root, "stream", json_object_new_boolean(1));
	opts = json_object_new_object();
	json_object_object_add(opts, "include_usage", json_object_new_boolean(1));
	json_object_object_add(root, "stream_options", opts);
	if (r->max_tokens > 0)
		json_object_object_add(root, "max_tokens", json_object_new_int(r->max_tokens));
	return root;
}

void proto_openai_chat_event(struct upstream_sse *p, const char *event, struct json_object *root)
{
	struct json_object *err = proto_member(root, "error"), *choices, *choice, *delta, *usage;
	const char *s, *fr;
	size_t n;
	long in = 0, out = 0;

	(void)event;
	if (err && !json_object_is_type(err, json_type_null)) {
		proto_fail_json(p, root);
		return;
	}
	choices = proto_member(root, "choices");
	if (choices && json_object_is_type(choices, json_type_array) && json_object_array_length(choices) > 0) {
		choice = json_object_array_get_idx(choices, 0);
		delta = proto_member(choice, "delta");
		if ((s = proto_string(delta, "reasoning_content", &n)) || (s = proto_string(delta, "reasoning", &n)))
			proto_text(p, 1, s, n);
		if ((s = proto_string(delta, "content", &n)))
			proto_text(p, 0, s, n);
		if ((fr = proto_string(choice, "finish_reason", NULL)))
			proto_finish(p, fr);
	}
	usage = proto_member(root, "usage");
	if (usage && proto_long(usage, "prompt_tokens", &in) + proto_long(usage, "completion_tokens", &out) > 0)
		proto_usage(p, in, out);
}
