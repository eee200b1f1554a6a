/*
 * upstream_sse: see the header. Lines end in \n, \r\n or \r; "data:" lines of one
 * event are joined with \n and dispatched at the blank line, as the SSE spec says.
 * Each event's JSON carries choices[0].delta.content, choices[0].finish_reason, or
 * an "error" object.
 */
#include "worker/upstream_sse.h"

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
}

static void fail(struct upstream_sse *p, const char *why)
{
	if (!p->failed) {
		p->failed = 1;
		snprintf(p->error, sizeof(p->error), "%s", why);
	}
}

static const char *json_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return NULL;
}

/* One complete event: [DONE], a chunk, or an error. */
static void dispatch(struct upstream_sse *p)
{
	struct json_object *root, *err, *choices, *choice, *delta, *content;
	const char *fr;

	if (p->data.len == 0)
		return;
	if (strcmp(p->data.data, "[DONE]") == 0) {
		p->done = 1;
		return;
	}
	root = json_tokener_parse(p->data.data);
	if (!root) {
		fail(p, "upstream sent a data line that is not JSON");
		return;
	}
	if (json_object_object_get_ex(root, "error", &err) && !json_object_is_type(err, json_type_null)) {
		/* the error's truncated message must stay valid UTF-8 */
		char text[200];
		upstream_error_message(p->data.data, p->data.len, text, sizeof(text));
		snprintf(p->error, sizeof(p->error), "upstream error: %s", text);
		p->failed = 1;
		json_object_put(root);
		return;
	}
	if (json_object_object_get_ex(root, "choices", &choices) &&
	    json_object_is_type(choices, json_type_array) && json_object_array_length(choices) > 0) {
		choice = json_object_array_get_idx(choices, 0);
		if (json_object_object_get_ex(choice, "delta", &delta) &&
		    json_object_object_get_ex(delta, "content", &content) &&
		    json_object_is_type(content, json_type_string) && json_object_get_string_len(content) > 0) {
			size_t at = p->content.len, n = (size_t)json_object_get_string_len(content);
			buf_append(&p->content, json_object_get_string(content), n);
			util_utf8_sanitize(p->content.data + at, n);	/* lone surrogates, NULs */
			p->chunks++;
		}
		fr = json_str(choice, "finish_reason");
		if (fr)
			util_utf8_copy(p->finish_reason, sizeof(p->finish_reason), fr);
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
			fail(p, "upstream event too large");
	}
	/* event:, id:, retry: and unknown fields carry nothing we need */
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
			fail(p, "upstream line too long");
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
	if (root) {
		if (json_object_object_get_ex(root, "error", &err)) {
			msg = json_object_is_type(err, json_type_string) ? json_object_get_string(err)
									 : json_str(err, "message");
		}
		if (!msg)
			msg = json_str(root, "message");
		if (!msg)
			msg = json_str(root, "detail");
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
