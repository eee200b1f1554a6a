/*
 * task_proto: parsing of image and video upstream answers (see task_proto.h).
 * Everything the upstream sends is untrusted, bounded and checked: ids that do
 * not fit or are not printable ASCII, and result URLs that are not http(s),
 * make the answer BAD; every text that reaches the task (the reason of a
 * failure, what was wrong) is cut at a character boundary and its invalid
 * UTF-8 replaced, so no answer can make the task's write fail.
 */
#include "worker/task_proto.h"
#include "common/util.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void reply_init(struct task_reply *r)
{
	memset(r, 0, sizeof(*r));
	r->progress = -1;
}

int task_proto_progress(const char *s)
{
	long whole = 0;
	int digits = 0;

	if (!s)
		return -1;
	while (*s == ' ')
		s++;
	for (; *s >= '0' && *s <= '9'; s++, digits++) {
		whole = whole * 10 + (*s - '0');
		if (whole > 100)
			return -1;
	}
	if (!digits)
		return -1;
	if (*s == '.') {
		s++;
		if (*s < '0' || *s > '9')
			return -1;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (*s == '%')
		s++;
	while (*s == ' ')
		s++;
	return *s ? -1 : (int)whole;
}

const char *task_proto_mj_status(const char *s)
{
	if (!s)
		return NULL;
	if (!strcmp(s, "NOT_START"))
		return "submitting";
	if (!strcmp(s, "SUBMITTED") || !strcmp(s, "IN_PROGRESS") || !strcmp(s, "MODAL"))
		return "processing";
	if (!strcmp(s, "SUCCESS"))
		return "succeeded";
	if (!strcmp(s, "FAILURE") || !strcmp(s, "CANCEL"))
		return "failed";
	return NULL;
}

const char *task_proto_video_status(const char *s)
{
	if (!s)
		return NULL;
	if (!strcmp(s, "queued"))
		return "submitting";
	if (!strcmp(s, "in_progress"))
		return "processing";
	if (!strcmp(s, "completed"))
		return "succeeded";
	if (!strcmp(s, "failed") || !strcmp(s, "cancelled"))
		return "failed";
	return NULL;
}

/* Parses body as one JSON object, or NULL (r->error says why). */
static struct json_object *parse_object(const char *body, size_t len, struct task_reply *r)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;

	if (!tok) {
		snprintf(r->error, sizeof(r->error), "out of memory");
		return NULL;
	}
	o = json_tokener_parse_ex(tok, body, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
		snprintf(r->error, sizeof(r->error), "the upstream answered something that is not a JSON object");
	}
	json_tokener_free(tok);
	return o;
}

static const char *get_string(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Copies s into out when it fits and is printable ASCII without spaces. */
static int copy_token(char *out, size_t outlen, const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= outlen)
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return -1;
	memcpy(out, s, n + 1);
	return 0;
}

/* Copies a result URL: a token (copy_token) that is http:// or https:// with a host. */
static int copy_url(char *out, size_t outlen, const char *s)
{
	size_t scheme = !strncmp(s, "https://", 8) ? 8 : !strncmp(s, "http://", 7) ? 7 : 0;

	if (!scheme || !s[scheme] || s[scheme] == '/' || s[scheme] == '?' || s[scheme] == '#')
		return -1;
	return copy_token(out, outlen, s);
}

/* Length of "scheme://authority" at the start of s, or 0 when s has no such prefix. */
static size_t origin_len(const char *s)
{
	size_t scheme = !strncasecmp(s, "https://", 8) ? 8 : !strncasecmp(s, "http://", 7) ? 7 : 0;

	if (!scheme)
		return 0;
	return scheme + strcspn(s + scheme, "/?#");
}

int task_proto_same_origin(const char *url, const char *base)
{
	size_t n = base ? origin_len(base) : 0;

	return n > 0 && origin_len(url) == n && strncasecmp(url, base, n) == 0;
}

/*
 * The last step of every answer: r->error, built from the upstream's words and
 * cut at a byte limit, ends at a character boundary and holds valid UTF-8 only.
 */
static enum task_reply_rc finish(struct task_reply *r, enum task_reply_rc rc)
{
	char error[sizeof(r->error)];

	memcpy(error, r->error, sizeof(error));
	util_utf8_copy(r->error, sizeof(r->error), error);
	return rc;
}

/* Copies a human message, control characters turned into spaces. */
static void copy_message(char *out, size_t outlen, const char *prefix, const char *s)
{
	snprintf(out, outlen, "%s%s", prefix, s && *s ? s : "no reason given");
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < ' ')
			*p = ' ';
}

enum task_reply_rc task_proto_mj_submit(const char *body, size_t len, struct task_reply *r)
{
	struct json_object *o, *v;
	enum task_reply_rc rc = TASK_REPLY_BAD;
	const char *id = NULL;
	int code;

	reply_init(r);
	if (!(o = parse_object(body, len, r)))
		return finish(r, TASK_REPLY_BAD);
	if (!json_object_object_get_ex(o, "code", &v) || !json_object_is_type(v, json_type_int)) {
		snprintf(r->error, sizeof(r->error), "the upstream's submit answer has no code");
		goto out;
	}
	code = json_object_get_int(v);
	/* 1 submitted, 21 already exists, 22 queued: all give the task id */
	if (code == 1 || code == 21 || code == 22) {
		if (json_object_object_get_ex(o, "result", &v) && json_object_is_type(v, json_type_int))
			id = json_object_get_string(v);
		else
			id = get_string(o, "result");
		if (!id || copy_token(r->upstream_id, sizeof(r->upstream_id), id) < 0) {
			snprintf(r->error, sizeof(r->error), "the upstream's submit answer has no usable task id");
			goto out;
		}
		r->status = "submitting";
		rc = TASK_REPLY_OK;
	} else if (code == 23) {
		/* queue full: try again later */
		copy_message(r->error, sizeof(r->error), "the image upstream's queue is full: ",
			     get_string(o, "description"));
	} else {
		copy_message(r->error, sizeof(r->error), "the image upstream refused the task: ",
			     get_string(o, "description"));
		r->status = "failed";
		rc = TASK_REPLY_REJECTED;
	}
out:
	json_object_put(o);
	return finish(r, rc);
}

enum task_reply_rc task_proto_mj_fetch(const char *body, size_t len, struct task_reply *r)
{
	struct json_object *o;
	enum task_reply_rc rc = TASK_REPLY_BAD;
	const char *status, *url;

	reply_init(r);
	if (!(o = parse_object(body, len, r)))
		return finish(r, TASK_REPLY_BAD);
	status = get_string(o, "status");
	r->status = task_proto_mj_status(status);
	if (!r->status) {
		snprintf(r->error, sizeof(r->error), "the image upstream sent an unknown status \"%.40s\"",
			 status ? status : "(none)");
		goto out;
	}
	r->progress = task_proto_progress(get_string(o, "progress"));
	if (!strcmp(r->status, "succeeded")) {
		url = get_string(o, "imageUrl");
		if (!url || copy_url(r->url, sizeof(r->url), url) < 0) {
			snprintf(r->error, sizeof(r->error), "the image upstream reported success without a usable image URL");
			r->status = NULL;
			goto out;
		}
		r->progress = 100;
	} else if (!strcmp(r->status, "failed")) {
		copy_message(r->error, sizeof(r->error), "the image upstream failed the task: ",
			     get_string(o, "failReason"));
	}
	rc = TASK_REPLY_OK;
out:
	json_object_put(o);
	return finish(r, rc);
}

enum task_reply_rc task_proto_video(const char *body, size_t len, const char *content_url_base,
				    struct task_reply *r)
{
	struct json_object *o, *v, *e;
	enum task_reply_rc rc = TASK_REPLY_BAD;
	const char *status, *id, *url;

	reply_init(r);
	if (!(o = parse_object(body, len, r)))
		return finish(r, TASK_REPLY_BAD);
	id = get_string(o, "id");
	if (!id || copy_token(r->upstream_id, sizeof(r->upstream_id), id) < 0) {
		snprintf(r->error, sizeof(r->error), "the video upstream's answer has no usable job id");
		goto out;
	}
	status = get_string(o, "status");
	r->status = task_proto_video_status(status);
	if (!r->status) {
		snprintf(r->error, sizeof(r->error), "the video upstream sent an unknown status \"%.40s\"",
			 status ? status : "(none)");
		goto out;
	}
	if (json_object_object_get_ex(o, "progress", &v) &&
	    (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))) {
		double p = json_object_get_double(v);
		/* NaN and infinities (json-c reads them) are no progress, never converted */
		r->progress = !isfinite(p) ? -1 : p < 0 ? 0 : p > 100 ? 100 : (int)p;
	} else {
		r->progress = task_proto_progress(get_string(o, "progress"));
	}
	if (!strcmp(r->status, "succeeded")) {
		url = get_string(o, "url");
		if (!url)
			url = get_string(o, "video_url");
		if (url) {
			if (copy_url(r->url, sizeof(r->url), url) < 0) {
				snprintf(r->error, sizeof(r->error), "the video upstream sent an unusable video URL");
				r->status = NULL;
				goto out;
			}
		} else {
			size_t n = strlen(content_url_base ? content_url_base : "");
			while (n > 0 && content_url_base[n - 1] == '/')
				n--;
			if ((size_t)snprintf(r->url, sizeof(r->url), "%.*s/videos/%s/content", (int)n,
					     content_url_base ? content_url_base : "", r->upstream_id) >= sizeof(r->url)) {
				snprintf(r->error, sizeof(r->error), "the video URL would be too long");
				r->status = NULL;
				goto out;
			}
		}
		r->private_url = task_proto_same_origin(r->url, content_url_base);
		r->progress = 100;
	} else if (!strcmp(r->status, "failed")) {
		const char *msg = NULL;
		if (json_object_object_get_ex(o, "error", &e)) {
			if (json_object_is_type(e, json_type_object))
				msg = get_string(e, "message");
			else if (json_object_is_type(e, json_type_string))
				msg = json_object_get_string(e);
		}
		copy_message(r->error, sizeof(r->error), "the video upstream failed the job: ", msg);
	}
	rc = TASK_REPLY_OK;
out:
	json_object_put(o);
	return finish(r, rc);
}

static char *to_string_new(struct json_object *o)
{
	char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));

	json_object_put(o);
	return s;
}

char *task_proto_mj_submit_body_new(const char *prompt, const char *task_id)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "prompt", json_object_new_string(prompt));
	json_object_object_add(o, "state", json_object_new_string(task_id));
	return to_string_new(o);
}

char *task_proto_video_submit_body_new(const char *prompt, const char *options)
{
	struct json_object *opts = options ? json_tokener_parse(options) : NULL;
	struct json_object *o = json_object_new_object(), *v;

	json_object_object_add(o, "prompt", json_object_new_string(prompt));
	if (opts && json_object_is_type(opts, json_type_object)) {
		if (json_object_object_get_ex(opts, "model", &v))
			json_object_object_add(o, "model", json_object_get(v));
		if (json_object_object_get_ex(opts, "seconds", &v))
			json_object_object_add(o, "seconds", json_object_new_string(json_object_get_string(v)));
		if (json_object_object_get_ex(opts, "size", &v))
			json_object_object_add(o, "size", json_object_get(v));
	}
	json_object_put(opts);
	return to_string_new(o);
}
