/*
 * proto: what the chat protocols share (proto.h): the parser's helpers and the
 * request of a reply.
 */
#include "worker/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct json_object *proto_member(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, key, &v))
		return v;
	return NULL;
}

const char *proto_string(struct json_object *o, const char *key, size_t *len)
{
	struct json_object *v = proto_member(o, key);

	if (!v || !json_object_is_type(v, json_type_string))
		return NULL;
	if (len)
		*len = (size_t)json_object_get_string_len(v);
	return json_object_get_string(v);
}

int proto_long(struct json_object *o, const char *key, long *out)
{
	struct json_object *v = proto_member(o, key);

	if (!v || !json_object_is_type(v, json_type_int))
		return 0;
	*out = (long)json_object_get_int64(v);
	return 1;
}

void proto_text(struct upstream_sse *p, int reasoning, const char *s, size_t n)
{
	struct buf *b = reasoning ? &p->reasoning : &p->content;
	size_t at = b->len;

	if (n == 0)
		return;
	if (buf_append(b, s, n) < 0) {
		proto_fail(p, NULL, "out of memory");
		return;
	}
	util_utf8_sanitize(b->data + at, n);	/* lone surrogates, NULs */
	if (!reasoning)
		p->chunks++;
}

void proto_finish(struct upstream_sse *p, const char *reason)
{
	util_utf8_copy(p->finish_reason, sizeof(p->finish_reason), reason);
}

void proto_usage(struct upstream_sse *p, long input_tokens, long output_tokens)
{
	p->has_usage = 1;
	p->input_tokens = input_tokens < 0 ? 0 : input_tokens;
	p->output_tokens = output_tokens < 0 ? 0 : output_tokens;
}

void proto_fail(struct upstream_sse *p, const char *prefix, const char *message)
{
	if (p->failed)
		return;
	p->failed = 1;
	snprintf(p->error, sizeof(p->error), "%s%s", prefix ? prefix : "", message);
	util_utf8_sanitize(p->error, strlen(p->error));
}

void proto_fail_json(struct upstream_sse *p, struct json_object *err)
{
	const char *json = json_object_to_json_string_ext(err, JSON_C_TO_STRING_PLAIN);
	char text[200];

	upstream_error_message(json, strlen(json), text, sizeof(text));
	proto_fail(p, "upstream error: ", text);
}

/* base + path, without doubled slashes. */
static char *join_url(const char *base, const char *path)
{
	size_t n = strlen(base);
	char *out;

	while (n > 0 && base[n - 1] == '/')
		n--;
	out = malloc(n + strlen(path) + 1);
	if (out) {
		memcpy(out, base, n);
		strcpy(out + n, path);
	}
	return out;
}

/* s with every byte but unreserved ones percent-encoded (a model name in a URL path). */
static void url_escape(char *out, size_t outlen, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s && o + 4 < outlen; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		    c == '_' || c == '.' || c == '~') {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
}

static int add_header(struct proto_request *out, const char *name, const char *value)
{
	size_t n = strlen(name) + strlen(value) + 3;

	if (out->nheaders >= PROTO_HEADERS_MAX || !(out->headers[out->nheaders] = malloc(n)))
		return -1;
	snprintf(out->headers[out->nheaders++], n, "%s: %s", name, value);
	return 0;
}

int proto_request_build(enum upstream_protocol proto, const struct chat_request *r, struct proto_request *out)
{
	struct json_object *body = NULL;
	char path[512], model[400], auth[1100];
	int rc = 0;

	memset(out, 0, sizeof(*out));
	rc |= add_header(out, "Content-Type", "application/json");
	rc |= add_header(out, "Accept", "text/event-stream");
	switch (proto) {
	case PROTO_OPENAI_RESPONSES:
		body = proto_openai_responses_body(r);
		out->url = join_url(r->base_url, "/responses");
		break;
	case PROTO_ANTHROPIC:
		body = proto_anthropic_body(r);
		out->url = join_url(r->base_url, "/v1/messages");
		rc |= add_header(out, "anthropic-version", "2023-06-01");
		if (r->api_key[0])
			rc |= add_header(out, "x-api-key", r->api_key);
		break;
	case PROTO_GEMINI:
		body = proto_gemini_body(r);
		url_escape(model, sizeof(model), r->model);
		snprintf(path, sizeof(path), "/v1beta/models/%s:streamGenerateContent?alt=sse", model);
		out->url = join_url(r->base_url, path);
		if (r->api_key[0])
			rc |= add_header(out, "x-goog-api-key", r->api_key);
		break;
	default:
		body = proto_openai_chat_body(r);
		out->url = join_url(r->base_url, "/chat/completions");
		break;
	}
	if ((proto == PROTO_OPENAI_CHAT || proto == PROTO_OPENAI_RESPONSES) && r->api_key[0]) {
		snprintf(auth, sizeof(auth), "Bearer %s", r->api_key);
		rc |= add_header(out, "Authorization", auth);
	}
	if (body)
		out->body = strdup(json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN |
									JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(body);
	if (rc || !out->url || !out->body) {
		proto_request_free(out);
		return -1;
	}
	return 0;
}

int proto_models_request(enum upstream_protocol proto, const char *base_url, const char *api_key,
			 struct proto_request *out)
{
	char auth[1100];
	int rc = 0;

	memset(out, 0, sizeof(*out));
	rc |= add_header(out, "Accept", "application/json");
	switch (proto) {
	case PROTO_ANTHROPIC:
		out->url = join_url(base_url, "/v1/models");
		rc |= add_header(out, "anthropic-version", "2023-06-01");
		if (api_key[0])
			rc |= add_header(out, "x-api-key", api_key);
		break;
	case PROTO_GEMINI:
		out->url = join_url(base_url, "/v1beta/models");
		if (api_key[0])
			rc |= add_header(out, "x-goog-api-key", api_key);
		break;
	default:
		out->url = join_url(base_url, "/models");
		if (api_key[0]) {
			snprintf(auth, sizeof(auth), "Bearer %s", api_key);
			rc |= add_header(out, "Authorization", auth);
		}
		break;
	}
	if (rc || !out->url) {
		proto_request_free(out);
		return -1;
	}
	return 0;
}

int proto_models_count(const char *body, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *root = tok ? json_tokener_parse_ex(tok, body, (int)len) : NULL, *list;
	int n = -1;

	list = proto_member(root, "data");
	if (!list)
		list = proto_member(root, "models");
	if (list && json_object_is_type(list, json_type_array))
		n = (int)json_object_array_length(list);
	json_object_put(root);
	if (tok)
		json_tokener_free(tok);
	return n;
}

void proto_request_free(struct proto_request *out)
{
	free(out->url);
	free(out->body);
	for (int i = 0; i < out->nheaders; i++)
		free(out->headers[i]);
	memset(out, 0, sizeof(*out));
}
