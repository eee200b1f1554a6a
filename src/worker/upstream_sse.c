/*
 * upstream_sse: see the header. Lines end in \n, \r\n or \r; "data:" lines of one
 * event are joined with \n and dispatched at the blank line, as the SSE spec says,
 * with the event's "event:" name; what an event means is the protocol's (proto.h).
 */
#include "worker/upstream_sse.h"
#include "worker/proto.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

void upstream_sse_init(struct upstream_sse *p)
{
	memset(p, 0, sizeof(*p));
}

void upstream_sse_free(struct upstream_sse *p)
{
	buf_free(&p->line);
	buf_free(&p->data);
	buf_free(&p->content);
	buf_free(&p->reasoning);
}

/* One complete event: [DONE], or JSON for the protocol. */
static void dispatch(struct upstream_sse *p)
{
	struct json_object *root;

	if (p->data.len == 0)
		return;
	if (strcmp(p->data.data, "[DONE]") == 0) {
		p->done = 1;
		return;
	}
	root = json_tokener_parse(p->data.data);
	if (!root) {
		proto_fail(p, NULL, "upstream sent a data line that is not JSON");
		return;
	}
	switch (p->proto) {
	case PROTO_OPENAI_RESPONSES: proto_openai_responses_event(p, p->event, root); break;
	case PROTO_ANTHROPIC: proto_anthropic_event(p, p->event, root); break;
	case PROTO_GEMINI: proto_gemini_event(p, p->event, root); break;
	default: proto_openai_chat_event(p, p->event, root); break;
	}
	json_object_put(root);
}

static void handle_line(struct upstream_sse *p)
{
	const char *l = p->line.data ? p->line.data : "";
	size_t n = p->line.len;

	if (n == 0) {
		dispatch(p);
		buf_reset(&p->data);
		p->event[0] = '\0';
		return;
	}
	if (l[0] == ':')
		return;	/* comment */
	if (n >= 5 && memcmp(l, "data:", 5) == 0) {
		size_t off = (n > 5 && l[5] == ' ') ? 6 : 5;
		if (p->data.len)
			buf_append(&p->data, "\n", 1);
		buf_append(&p->data, l + off, n - off);
		if (p->data.len > UPSTREAM_LINE_MAX)
			proto_fail(p, NULL, "upstream event too large");
	} else if (n >= 6 && memcmp(l, "event:", 6) == 0) {
		size_t off = (n > 6 && l[6] == ' ') ? 7 : 6;
		util_utf8_copy(p->event, sizeof(p->event), l + off);
	}
	/* id:, retry: and unknown fields carry nothing we need */
}

int upstream_sse_feed(struct upstream_sse *p, const char *bytes, size_t n)
{
	size_t i = 0;

	while (i < n && !p->failed && !p->done) {
		char c = bytes[i];
		size_t end;

		if (c == '\n' && p->saw_cr) {
			p->saw_cr = 0;
			i++;
			continue;
		}
		p->saw_cr = c == '\r';
		if (c == '\n' || c == '\r') {
			handle_line(p);
			buf_reset(&p->line);
			i++;
			continue;
		}
		/* the bytes up to the next line end go in at once */
		for (end = i + 1; end < n && bytes[end] != '\n' && bytes[end] != '\r'; end++)
			;
		if (p->line.len + (end - i) > UPSTREAM_LINE_MAX || buf_append(&p->line, bytes + i, end - i) < 0)
			proto_fail(p, NULL, "upstream line too long");
		i = end;
	}
	return p->failed ? -1 : 0;
}

int upstream_sse_finish(struct upstream_sse *p)
{
	if (!p->failed && !p->done && p->line.len > 0) {
		handle_line(p);
		buf_reset(&p->line);
	}
	if (!p->failed && !p->done && p->data.len > 0)
		handle_line(p);		/* the line is empty now: the blank line that never came */
	/* gemini's stream has no end event: it ends with the connection, after a finishReason */
	if (!p->failed && p->proto == PROTO_GEMINI && p->finish_reason[0])
		p->done = 1;
	return p->failed ? -1 : 0;
}

void upstream_error_message(const char *body, size_t len, char *out, size_t outlen)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *root = NULL, *err;
	const char *msg = NULL;
	size_t n;

	if (tok && len > 0)
		root = json_tokener_parse_ex(tok, body, (int)len);
	if (root && json_object_is_type(root, json_type_array) && json_object_array_length(root) > 0) {
		struct json_object *first = json_object_get(json_object_array_get_idx(root, 0));
		json_object_put(root);
		root = first;		/* Gemini answers errors as [{"error": ...}] */
	}
	if (root && json_object_is_type(root, json_type_object)) {
		if (json_object_object_get_ex(root, "error", &err)) {
			msg = json_object_is_type(err, json_type_string) ? json_object_get_string(err)
									 : proto_string(err, "message", NULL);
		}
		if (!msg)
			msg = proto_string(root, "message", NULL);
		if (!msg)
			msg = proto_string(root, "detail", NULL);
	}
	if (!msg)
		msg = body;
	else
		len = strlen(msg);
	n = util_utf8_trim(msg, len < outlen - 1 ? len : outlen - 1);
	memcpy(out, msg, n);
	out[n] = '\0';
	util_utf8_sanitize(out, n);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20)
			out[i] = ' ';
	json_object_put(root);
	if (tok)
		json_tokener_free(tok);
}
