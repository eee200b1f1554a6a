/*
 * taskq: the image and video task queue (see taskq.h). Answers are parsed
 * by task_proto; this file owns the timers, the transfers and the SQL.
 *
 * Invariants:
 * - a task has at most one transfer at a time (submit or poll);
 * - a task with an upstream id is only ever polled: the id reaches the database
 *   in the tick its submit answered, before anything else is done with it;
 * - status only moves forward and progress only grows, here and in SQL, so a
 *   late or repeated answer never shows the user a step back;
 * - an upstream that fails (connection error, 5xx, an answer we cannot read)
 *   fails nothing until task_upstream_grace has passed since its first failure;
 *   meanwhile polls back off from task_poll_interval up to task_backoff_max.
 */
#include "config.h"
#include "worker/taskq.h"
#include "common/db.h"
#include "common/log.h"
#include "common/util.h"
#include "worker/lease.h"
#include "worker/task_proto.h"
#include "worker/transfer.h"
#include "worker/upstream_sse.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLAIM_POLL_MS 1000
#define RESPONSE_MAX (1 << 20)
#define WRITE_RETRY_MS 100	/* after a failed write, doubling */
#define WRITE_RETRY_MAX_MS 5000

struct task {
	struct transfer transfer;	/* CURLOPT_PRIVATE of easy points here */
	char id[37];
	char user_id[37];
	int video;
	char *prompt;
	char *options;
	char upstream_id[TASK_UPSTREAM_ID_MAX];
	int attempt;
	/* what the user sees, as last known here (written, or to write when dirty) */
	const char *status;
	int progress;
	char url[TASK_URL_MAX];
	int private_url;	/* url is served through GET /api/tasks/{id}/content (task_proto.h) */
	char error[300];
	int dirty;		/* something to write */
	int new_upstream_id;	/* the upstream id is not in the database yet */
	int gone;		/* the database says: not ours (any more) */
	/* the current transfer */
	CURL *easy;
	int submit;		/* the transfer is the submit */
	struct curl_slist *headers;
	char *request_body;
	struct buf response;
	/* timers (monotonic ms) */
	int64_t next_at;	/* next submit or poll */
	int64_t deadline_at;	/* task_deadline from creation */
	int64_t down_since;	/* first of the current run of upstream failures, or 0 */
	int64_t start_ms;
	int failures;		/* in the current run */
	struct task *next;
};

struct taskq {
	const struct config *cfg;
	CURLM *multi;
	char worker[128];
	struct task *list;
	int count;
	int stopping;		/* SIGTERM seen: no new claim, submit or poll */
	int64_t next_claim, next_renew;
	int64_t write_retry_at;	/* no write before this (monotonic ms), after failures */
	int leases_unsure;	/* reconnected: renew before claiming */
	int write_failures;	/* writes failed in a row */
};

static int status_rank(const char *s)
{
	return !strcmp(s, "submitting") ? 0 : !strcmp(s, "processing") ? 1 : 2;
}

static int is_final(const struct task *t)
{
	return status_rank(t->status) == 2;
}

static void set_failed(struct task *t, const char *error)
{
	if (is_final(t))
		return;
	t->status = "failed";
	util_utf8_copy(t->error, sizeof(t->error), error);
	t->dirty = 1;
}

struct taskq *taskq_new(const struct config *cfg, CURLM *multi, const char *worker)
{
	struct taskq *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->cfg = cfg;
	s->multi = multi;
	snprintf(s->worker, sizeof(s->worker), "%s", worker);
	return s;
}

static void release(struct taskq *s, struct task *t)
{
	if (t->easy) {
		curl_multi_remove_handle(s->multi, t->easy);
		curl_easy_cleanup(t->easy);
		t->easy = NULL;
	}
	curl_slist_free_all(t->headers);
	t->headers = NULL;
	free(t->request_body);
	t->request_body = NULL;
	buf_reset(&t->response);
}

static void task_free(struct taskq *s, struct task *t)
{
	release(s, t);
	buf_free(&t->response);
	free(t->prompt);
	free(t->options);
	free(t);
}

void taskq_free(struct taskq *s)
{
	if (!s)
		return;
	while (s->list) {
		struct task *t = s->list;
		s->list = t->next;
		task_free(s, t);
	}
	free(s);
}

/* --- claiming ------------------------------------------------------------------- */

static int held(const struct taskq *s, const char *id)
{
	for (const struct task *t = s->list; t; t = t->next)
		if (!strcmp(t->id, id))
			return 1;
	return 0;
}

static void claim(struct taskq *s, PGconn *db, int64_t now)
{
	int room = s->cfg->max_tasks - s->count;
	PGresult *res;

	s->next_claim = now + CLAIM_POLL_MS;
	if (room <= 0)
		return;
	res = lease_claim(db, &LEASE_TASKS, s->worker, room, s->cfg->lease_time_ms);
	if (!res)
		return;
	for (int i = 0; i < PQntuples(res); i++) {
		struct task *t;
		const char *status = PQgetvalue(res, i, 6);

		if (held(s, PQgetvalue(res, i, 0))) {
			/* its row is ours again; the task goes on as it was, never submitted twice */
			log_warn("task already held id=%s reason=\"claimed back after its lease ran out here\"",
				 PQgetvalue(res, i, 0));
			continue;
		}
		t = calloc(1, sizeof(*t));
		if (!t)
			break;
		t->transfer.kind = TRANSFER_TASK;
		snprintf(t->id, sizeof(t->id), "%s", PQgetvalue(res, i, 0));
		snprintf(t->user_id, sizeof(t->user_id), "%s", PQgetvalue(res, i, 1));
		t->video = !strcmp(PQgetvalue(res, i, 2), "video");
		t->prompt = strdup(PQgetvalue(res, i, 3));
		t->options = strdup(PQgetvalue(res, i, 4));
		if (!t->prompt || !t->options) {
			task_free(s, t);
			break;
		}
		snprintf(t->upstream_id, sizeof(t->upstream_id), "%s", PQgetvalue(res, i, 5));
		t->status = !strcmp(status, "processing") ? "processing" : "submitting";
		t->progress = atoi(PQgetvalue(res, i, 7));
		t->attempt = atoi(PQgetvalue(res, i, 8));
		t->deadline_at = now - atoll(PQgetvalue(res, i, 9)) + s->cfg->task_deadline_ms;
		t->start_ms = now;
		t->next_at = now;
		log_info("task start id=%s user=%s kind=%s attempt=%d upstream_id=%s%s", t->id, t->user_id,
			 t->video ? "video" : "image", t->attempt, t->upstream_id[0] ? t->upstream_id : "-",
			 PQgetvalue(res, i, 10)[0] == 't' ? " recovered=1" : "");
		t->next = s->list;
		s->list = t;
		s->count++;
	}
	PQclear(res);
}

/* --- transfers ------------------------------------------------------------------ */

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct task *t = arg;
	size_t n = size * nmemb;

	if (t->response.len + n > RESPONSE_MAX)
		return 0;	/* no task answer is this big: abort, counts as an upstream failure */
	buf_append(&t->response, ptr, n);
	return n;
}

/* base + path, without doubled slashes. */
static void join_url(char *out, size_t outlen, const char *base, const char *path)
{
	size_t n = strlen(base);

	while (n > 0 && base[n - 1] == '/')
		n--;
	snprintf(out, outlen, "%.*s%s", (int)n, base, path);
}

static void start_request(struct taskq *s, struct task *t, int64_t now)
{
	const struct config *cfg = s->cfg;
	const char *base = t->video ? cfg->video_url : cfg->image_url;
	char url[TASK_URL_MAX + 256], path[TASK_UPSTREAM_ID_MAX * 3 + 64], header[1024];
	char *escaped = NULL;

	if (!base[0]) {
		set_failed(t, t->video ? "no video upstream configured (video_url)"
				       : "no image upstream configured (image_url)");
		return;
	}
	t->submit = !t->upstream_id[0];
	t->easy = curl_easy_init();
	if (!t->easy) {
		t->next_at = now + cfg->task_poll_interval_ms;
		return;
	}
	if (t->submit) {
		t->request_body = t->video ? task_proto_video_submit_body_new(t->prompt, t->options)
					   : task_proto_mj_submit_body_new(t->prompt, t->id);
		snprintf(path, sizeof(path), "%s", t->video ? "/videos" : "/mj/submit/imagine");
	} else {
		escaped = curl_easy_escape(t->easy, t->upstream_id, 0);
		snprintf(path, sizeof(path), t->video ? "/videos/%s" : "/mj/task/%s/fetch", escaped ? escaped : "");
		curl_free(escaped);
	}
	join_url(url, sizeof(url), base, path);
	t->headers = curl_slist_append(t->headers, "Accept: application/json");
	if (t->submit)
		t->headers = curl_slist_append(t->headers, "Content-Type: application/json");
	if (t->video && cfg->video_api_key[0]) {
		snprintf(header, sizeof(header), "Authorization: Bearer %s", cfg->video_api_key);
		t->headers = curl_slist_append(t->headers, header);
	} else if (!t->video && cfg->image_secret[0]) {
		snprintf(header, sizeof(header), "mj-api-secret: %s", cfg->image_secret);
		t->headers = curl_slist_append(t->headers, header);
	}
	curl_easy_setopt(t->easy, CURLOPT_URL, url);
	curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
	if (t->submit)
		curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, t->request_body ? t->request_body : "{}");
	curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(t->easy, CURLOPT_PRIVATE, &t->transfer);
	curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms);
	curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, (long)cfg->task_request_timeout_ms);
	curl_easy_setopt(t->easy, CURLOPT_USERAGENT, "mjs-worker/" PACKAGE_VERSION);
	if (curl_multi_add_handle(s->multi, t->easy) != CURLM_OK) {
		release(s, t);
		t->next_at = now + cfg->task_poll_interval_ms;
		return;
	}
	log_debug("task %s id=%s url=%s", t->submit ? "submit" : "poll", t->id, url);
}

/* The upstream failed this time: back off, or fail the task once the grace is over. */
static void upstream_failed(struct taskq *s, struct task *t, int64_t now, const char *detail)
{
	const struct config *cfg = s->cfg;
	int64_t delay = cfg->task_poll_interval_ms;
	char msg[300];

	if (!t->down_since)
		t->down_since = now;
	t->failures++;
	if (now - t->down_since >= cfg->task_upstream_grace_ms) {
		snprintf(msg, sizeof(msg), "the %s upstream kept failing for %ds (task_upstream_grace): %.200s",
			 t->video ? "video" : "image", (int)((now - t->down_since) / 1000), detail);
		set_failed(t, msg);
		return;
	}
	for (int i = 0; i < t->failures && delay < cfg->task_backoff_max_ms; i++)
		delay *= 2;
	if (delay > cfg->task_backoff_max_ms)
		delay = cfg->task_backoff_max_ms;
	t->next_at = now + delay;
	log_warn("task upstream error id=%s %s=%s failures=%d retry_ms=%lld detail=\"%s\"", t->id,
		 t->submit ? "phase" : "upstream_id", t->submit ? "submit" : t->upstream_id, t->failures,
		 (long long)delay, detail);
}

/* An answer the upstream gave: take what is new. */
static void apply(struct task *t, const struct task_reply *r)
{
	if (t->submit && r->upstream_id[0] && !t->upstream_id[0]) {
		snprintf(t->upstream_id, sizeof(t->upstream_id), "%s", r->upstream_id);
		t->new_upstream_id = 1;
		t->dirty = 1;
		log_info("task submitted id=%s upstream_id=%s", t->id, t->upstream_id);
	}
	if (r->status && status_rank(r->status) > status_rank(t->status)) {
		t->status = r->status;
		t->dirty = 1;
		if (!strcmp(r->status, "succeeded")) {
			snprintf(t->url, sizeof(t->url), "%s", r->url);
			t->private_url = r->private_url;
			t->progress = 100;
		} else if (!strcmp(r->status, "failed")) {
			util_utf8_copy(t->error, sizeof(t->error), r->error);
		}
	}
	if (!is_final(t) && r->progress > t->progress) {
		t->progress = r->progress;
		t->dirty = 1;
	}
}

void taskq_transfer_done(struct taskq *s, struct transfer *transfer, CURLcode result)
{
	const struct config *cfg = s->cfg;
	struct task *t = TRANSFER_OWNER(transfer, struct task, transfer);
	struct task_reply reply;
	enum task_reply_rc rc;
	long code = 0;
	int64_t now = util_now_ms();
	char detail[300], msg[200];
	const char *body;

	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
	curl_multi_remove_handle(s->multi, t->easy);
	curl_easy_cleanup(t->easy);
	t->easy = NULL;
	body = t->response.data ? t->response.data : "";
	if (result != CURLE_OK) {
		snprintf(detail, sizeof(detail), "%s", curl_easy_strerror(result));
		upstream_failed(s, t, now, detail);
	} else if (code < 200 || code >= 300) {
		upstream_error_message(body, t->response.len, msg, sizeof(msg));
		if (t->submit && code >= 400 && code < 500 && code != 408 && code != 429) {
			snprintf(detail, sizeof(detail), "the %s upstream refused the task: HTTP %ld: %.200s",
				 t->video ? "video" : "image", code, msg);
			set_failed(t, detail);
		} else {
			snprintf(detail, sizeof(detail), "HTTP %ld: %.200s", code, msg);
			upstream_failed(s, t, now, detail);
		}
	} else {
		if (t->video)
			rc = task_proto_video(body, t->response.len, cfg->video_url, &reply);
		else if (t->submit)
			rc = task_proto_mj_submit(body, t->response.len, &reply);
		else
			rc = task_proto_mj_fetch(body, t->response.len, &reply);
		if (rc == TASK_REPLY_BAD) {
			upstream_failed(s, t, now, reply.error);
		} else if (rc == TASK_REPLY_REJECTED) {
			set_failed(t, reply.error);
		} else {
			t->failures = 0;
			t->down_since = 0;
			apply(t, &reply);
			t->next_at = now + cfg->task_poll_interval_ms;
		}
	}
	release(s, t);
}

/* --- writing -------------------------------------------------------------------- */

static const char SQL_UPDATE[] = "SELECT id FROM mjs.update_tasks($1, $2::json) AS id";

/* Task t's news as one element of mjs.update_tasks's array. */
static struct json_object *news_json(const struct task *t)
{
	struct json_object *o = json_object_new_object(), *urls;

	json_object_object_add(o, "id", json_object_new_string(t->id));
	json_object_object_add(o, "upstream_id", t->new_upstream_id ? json_object_new_string(t->upstream_id) : NULL);
	json_object_object_add(o, "status", json_object_new_string(t->status));
	json_object_object_add(o, "progress", json_object_new_int(t->progress));
	if (!strcmp(t->status, "succeeded")) {
		urls = json_object_new_array();
		if (t->private_url) {
			/* the upstream's URL stays in the database; users fetch it through the API */
			char api[96];
			snprintf(api, sizeof(api), "/api/tasks/%s/content", t->id);
			json_object_array_add(urls, json_object_new_string(api));
			json_object_object_add(o, "content_url", json_object_new_string(t->url));
		} else {
			json_object_array_add(urls, json_object_new_string(t->url));
		}
		json_object_object_add(o, "result", urls);
	}
	if (!strcmp(t->status, "failed"))
		json_object_object_add(o, "error", json_object_new_string(t->error));
	return o;
}

/*
 * Writes the news of task one, or of every dirty task (one NULL), in one
 * mjs.update_tasks call. Returns 1 written (and drops what the database says
 * is not ours), 0 nothing to write, -2 when the database refused the data
 * itself (db_data_refused), -1 when it failed otherwise (the news stays to
 * write).
 */
static int write_news(struct taskq *s, PGconn *db, struct task *one)
{
	struct json_object *batch = json_object_new_array();
	const char *params[2] = { s->worker, NULL };
	char state[6];
	PGresult *res;

	for (struct task *t = one ? one : s->list; t; t = one ? NULL : t->next)
		if (t->dirty)
			json_object_array_add(batch, news_json(t));
	if (json_object_array_length(batch) == 0) {
		json_object_put(batch);
		return 0;
	}
	params[1] = json_object_to_json_string_ext(batch, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	res = db_exec_state(db, SQL_UPDATE, 2, params, state);
	json_object_put(batch);
	if (!res)
		return db_data_refused(state) ? -2 : -1;
	for (struct task *t = one ? one : s->list; t; t = one ? NULL : t->next) {
		t->dirty = 0;
		t->new_upstream_id = 0;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		for (struct task *t = one ? one : s->list; t; t = one ? NULL : t->next) {
			if (!strcmp(t->id, PQgetvalue(res, i, 0)) && !is_final(t)) {
				log_warn("task lost id=%s reason=\"gone, finished or leased by another worker\"", t->id);
				t->gone = 1;
			}
		}
	}
	PQclear(res);
	return 1;
}

/*
 * One write per tick carries every task with news. When the database refuses
 * its data (not a passing failure: a deadlock or a failover only backs off),
 * one task's news cannot be stored: each is written alone, and a task whose
 * news is still refused is failed with a reason of ours (or, if even that is
 * refused, dropped), so one bad answer never stops the others. Returns 0, or
 * -1 when the write failed otherwise (the caller backs off).
 */
static int flush(struct taskq *s, PGconn *db)
{
	int rc = write_news(s, db, NULL);

	if (rc != -2)
		return rc < 0 ? -1 : 0;
	for (struct task *t = s->list; t; t = t->next) {
		if (!t->dirty || (rc = write_news(s, db, t)) >= 0)
			continue;
		if (rc == -1)
			return -1;
		log_warn("task write refused id=%s status=%s reason=\"its news could not be stored; failing it\"",
			 t->id, t->status);
		t->status = "failed";
		t->new_upstream_id = 0;
		snprintf(t->error, sizeof(t->error), "the %s upstream sent an answer that could not be stored",
			 t->video ? "video" : "image");
		if ((rc = write_news(s, db, t)) == -1)
			return -1;
		if (rc == -2) {
			log_error("task dropped id=%s reason=\"not even its failure could be stored\"", t->id);
			t->gone = 1;
			t->dirty = 0;
		}
	}
	return 0;
}

/* Removes finished (and written) or lost tasks. */
static void reap(struct taskq *s, int64_t now)
{
	for (struct task **pp = &s->list; *pp;) {
		struct task *t = *pp;
		if (t->gone || (is_final(t) && !t->dirty)) {
			if (!t->gone)
				log_info("task end id=%s user=%s status=%s upstream_id=%s ms=%lld%s%s%s", t->id, t->user_id,
					 t->status, t->upstream_id[0] ? t->upstream_id : "-",
					 (long long)(now - t->start_ms), t->error[0] ? " error=\"" : "", t->error,
					 t->error[0] ? "\"" : "");
			*pp = t->next;
			task_free(s, t);
			s->count--;
		} else {
			pp = &t->next;
		}
	}
}

/* Renews the leases of the tasks held (lease.h); returns 0, or -1 when the query failed. */
static int renew(struct taskq *s, PGconn *db)
{
	struct buf ids = { 0 };
	PGresult *res;

	for (struct task *t = s->list; t; t = t->next)
		if (!t->gone && !is_final(t))
			buf_array_add(&ids, t->id);
	res = lease_renew(db, &LEASE_TASKS, s->worker, buf_array_end(&ids), s->cfg->lease_time_ms);
	buf_free(&ids);
	if (!res)
		return -1;
	for (struct task *t = s->list; t; t = t->next) {
		if (is_final(t))
			continue;
		if (lease_row(res, t->id) < 0) {
			log_warn("task lost id=%s reason=\"no longer leased to this worker\"", t->id);
			t->gone = 1;
		}
	}
	PQclear(res);
	return 0;
}

void taskq_reconnected(struct taskq *s)
{
	if (!s)
		return;
	s->leases_unsure = 1;
	s->write_failures = 0;		/* a new connection: write at once */
	s->write_retry_at = 0;
}

void taskq_tick(struct taskq *s, PGconn *db, int64_t now, int woken, int stopping)
{
	char msg[300];

	int renew_due;

	if (!s)
		return;
	s->stopping = stopping;
	/* after a reconnect, renew before claiming: a task held here must not look abandoned */
	if (db && s->leases_unsure && (!s->list || renew(s, db) == 0))
		s->leases_unsure = 0;
	/* timers move on without a database too, so the loop never spins on them */
	if (db && !stopping && !s->leases_unsure && (woken || now >= s->next_claim))
		claim(s, db, now);
	else if (now >= s->next_claim)
		s->next_claim = now + CLAIM_POLL_MS;
	renew_due = now >= s->next_renew;
	if (renew_due)
		s->next_renew = now + s->cfg->lease_time_ms / 3;
	for (struct task *t = s->list; t; t = t->next) {
		if (is_final(t) || t->gone)
			continue;
		if (now >= t->deadline_at) {
			release(s, t);
			snprintf(msg, sizeof(msg), "the task did not finish within task_deadline (%ds)%s%s",
				 s->cfg->task_deadline_ms / 1000, t->upstream_id[0] ? "; upstream job " : "",
				 t->upstream_id);
			set_failed(t, msg);
		} else if (!t->easy && now >= t->next_at && !stopping) {
			start_request(s, t, now);
		}
	}
	if (!db || now < s->write_retry_at)
		return;
	if (flush(s, db) < 0) {
		/* the same news goes out later: back off, one line per try */
		int64_t delay = WRITE_RETRY_MS;
		for (int i = 0; i < s->write_failures && delay < WRITE_RETRY_MAX_MS; i++)
			delay *= 2;
		delay = delay < WRITE_RETRY_MAX_MS ? delay : WRITE_RETRY_MAX_MS;
		s->write_failures++;
		s->write_retry_at = now + delay;
		log_warn("task writes failing failures=%d retry_ms=%lld", s->write_failures, (long long)delay);
		return;
	}
	if (s->write_failures) {
		log_info("task writes work again after failures=%d", s->write_failures);
		s->write_failures = 0;
	}
	if (renew_due && s->list)
		renew(s, db);
	reap(s, now);
}

int64_t taskq_next_due(const struct taskq *s)
{
	int64_t t;

	if (!s)
		return INT64_MAX;
	t = s->next_claim < s->next_renew ? s->next_claim : s->next_renew;
	for (const struct task *k = s->list; k; k = k->next) {
		/* news waiting for a write that backs off (not once that time is past: the
		 * next tick writes, or there is no connection and nothing to wait for) */
		if (s->write_failures && k->dirty && !k->gone && s->write_retry_at < t &&
		    s->write_retry_at > util_now_ms())
			t = s->write_retry_at;
		if (is_final(k) || k->gone)
			continue;
		if (k->deadline_at < t)
			t = k->deadline_at;
		if (!k->easy && !s->stopping && k->next_at < t)
			t = k->next_at;
	}
	return t;
}

void taskq_shutdown(struct taskq *s, PGconn *db)
{
	if (!s)
		return;
	for (struct task *t = s->list; t; t = t->next)
		release(s, t);
	if (!db || !s->list)
		return;
	if (flush(s, db) == 0 && lease_hand_back(db, &LEASE_TASKS, s->worker) == 0)
		log_info("mjs-worker handed back tasks=%d", s->count);
}
