/*
 * proto_gemini: Google's Gemini API.
 *   POST {base}/v1beta/models/{model}:streamGenerateContent?alt=sse (x-goog-api-key)
 *        {"systemInstruction":{"parts":[{"text"}]},"contents":[{"role":"user"|"model",
 *         "parts":[{"text"}]}...],"generationConfig":{"maxOutputTokens"}}
 *   data: {"candidates":[{"content":{"parts":[{"text":"..","thought":true}...]},
 *          "finishReason":"STOP"|"MAX_TOKENS"|...}],
 *          "usageMetadata":{"promptTokenCount","candidatesTokenCount","thoughtsTokenCount"}}
 *   data: {"error":{"code","message","status"}}
 * Parts marked thought are reasoning. The stream has no end event: it is
 * complete when it closes after a finishReason (upstream_sse_finish).
 */
#include "worker/proto.h"

#include <ctype.h>
#include <string.h>

static struct json_object *text_parts(const char *text, size_t len)
{
	struct json_object *parts = json_object_new_array(), *part = json_object_new_object();

	json_object_object_add(part, "text", json_object_new_string_len(text, (int)len));
	json_object_array_add(parts, part);
	return parts;
}

struct json_object *proto_gemini_body(const struct chat_request *r)
{
	struct json_object *root = json_object_new_object(), *contents = json_object_new_array(), *o;

	for (int i = 0; i < r->nturns; i++) {
		o = json_object_new_object();
		json_object_object_add(o, "role", json_object_new_string(strcmp(r->turns[i].role, "assistant") ? "user"
												     : "model"));
		json_object_object_add(o, "parts", text_parts(r->turns[i].content, r->turns[i].len));
		json_object_array_add(contents, o);
	}
	json_object_object_add(root, "contents", contents);
	if (r->system[0]) {
		o = json_object_new_object();
		json_object_object_add(o, "parts", text_parts(r->system, strlen(r->system)));
		json_object_object_add(root, "systemInstruction", o);
	}
	if (r->max_tokens > 0 || r->reasoning) {
		o = json_object_new_object();
		if (r->max_tokens > 0)
			json_object_object_add(o, "maxOutputTokens", json_object_new_int(r->max_tokens));
		if (r->reasoning) {
			struct json_object *th = json_object_new_object();
			json_object_object_add(th, "includeThoughts", json_object_new_boolean(1));
			json_object_object_add(o, "thinkingConfig", th);
		}
		json_object_object_add(root, "generationConfig", o);
	}
	return root;
}

void proto_gemini_event(struct upstream_sse *p, const char *event, struct json_object *root)
{
	struct json_object *err = proto_member(root, "error"), *cands, *cand, *parts, *u;
	const char *s;
	size_t n;
	long in = 0, out = 0, thoughts = 0;

	(void)event;
	if (err && !json_object_is_type(err, json_type_null)) {
		proto_fail_json(p, root);
		return;
	}
	cands = proto_member(root, "candidates");
	if (cands && json_object_is_type(cands, json_type_array) && json_object_array_length(cands) > 0) {
		cand = json_object_array_get_idx(cands, 0);
		parts = proto_member(proto_member(cand, "content"), "parts");
		for (size_t i = 0; parts && json_object_is_type(parts, json_type_array) &&
				   i < json_object_array_length(parts); i++) {
			struct json_object *part = json_object_array_get_idx(parts, i), *thought;
			if (!(s = proto_string(part, "text", &n)))
				continue;
			thought = proto_member(part, "thought");
			proto_text(p, thought && json_object_get_boolean(thought), s, n);
		}
		if ((s = proto_string(cand, "finishReason", NULL)) && s[0] &&
		    strcmp(s, "FINISH_REASON_UNSPECIFIED") != 0) {
			char lower[32];
			size_t k;
			for (k = 0; s[k] && k < sizeof(lower) - 1; k++)
				lower[k] = (char)tolower((unsigned char)s[k]);
			lower[k] = '\0';
			proto_finish(p, !strcmp(lower, "max_tokens") ? "length" : lower);
		}
	}
	u = proto_member(root, "usageMetadata");
	if (u && proto_long(u, "promptTokenCount", &in) + proto_long(u, "candidatesTokenCount", &out) +
			 proto_long(u, "thoughtsTokenCount", &thoughts) > 0)
		proto_usage(p, in, out + thoughts);
}
