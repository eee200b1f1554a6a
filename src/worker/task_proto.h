/*
 * task_proto: the pure half of the image and video upstream clients: request
 * bodies, and answers turned into a task's status, progress, result and error.
 * No curl, no database, so every mapping is unit tested.
 *
 * Image (Midjourney-proxy): POST /mj/submit/imagine answers
 * {"code":1,"description":"…","result":"<id>"}; GET /mj/task/<id>/fetch answers
 * {"status":"NOT_START|SUBMITTED|IN_PROGRESS|SUCCESS|FAILURE","progress":"NN%",
 * "imageUrl":"…","failReason":"…"}.
 * Video (OpenAI-style): POST /videos and GET /videos/<id> both answer
 * {"id","status":"queued|in_progress|completed|failed","progress":N,"error":{"message"}}.
 */
#ifndef MJS_WORKER_TASK_PROTO_H
#define MJS_WORKER_TASK_PROTO_H

#include <stddef.h>

#define TASK_UPSTREAM_ID_MAX 128
#define TASK_URL_MAX 2048

/* What one upstream answer says about a task. */
struct task_reply {
	char upstream_id[TASK_UPSTREAM_ID_MAX];	/* submit answers; "" when not told */
	const char *status;	/* submitting, processing, succeeded, failed; NULL: not told */
	int progress;		/* 0-100, or -1 when not told */
	char url[TASK_URL_MAX];	/* the result, for succeeded */
	int private_url;	/* url is on the upstream's own origin (it needs the key and shows
				   the configured base): users get it through GET /api/tasks/{id}/content */
	char error[300];	/* why, for failed (and for TASK_REPLY_BAD: what was wrong) */
};

enum task_reply_rc {
	TASK_REPLY_OK = 0,	/* understood; fields filled */
	TASK_REPLY_REJECTED = 1,	/* the upstream refused the task for good: error says why */
	TASK_REPLY_BAD = -1,	/* not an answer we understand (a proxy's error page, say): retry */
};

/* "NN%" (or "NN.N%", or "NN") to 0-100; -1 when it is not a percentage. */
int task_proto_progress(const char *s);

/* Midjourney-proxy task status to ours; NULL for a status we do not know. */
const char *task_proto_mj_status(const char *mj_status);

/* OpenAI-style video status to ours; NULL for a status we do not know. */
const char *task_proto_video_status(const char *status);

enum task_reply_rc task_proto_mj_submit(const char *body, size_t len, struct task_reply *r);
enum task_reply_rc task_proto_mj_fetch(const char *body, size_t len, struct task_reply *r);

/*
 * A video job answer (submit or fetch). A completed job without a URL field of
 * its own gets content_url_base/videos/<id>/content (the API's download route).
 * Either way, a URL on content_url_base's origin is marked private_url.
 */
enum task_reply_rc task_proto_video(const char *body, size_t len, const char *content_url_base,
				    struct task_reply *r);

/*
 * Whether url is on the origin (scheme, host and port, compared without case)
 * of base. A default port written out is another origin here, which errs on
 * the side of showing the URL, never of hiding a foreign one behind the key.
 */
int task_proto_same_origin(const char *url, const char *base);

/* Request bodies; the caller frees the string. options is the task's options JSON text. */
char *task_proto_mj_submit_body_new(const char *prompt, const char *task_id);
char *task_proto_video_submit_body_new(const char *prompt, const char *options);

#endif
