/*
 * tasks: handlers for /api/tasks. Object JSON comes from mjs.task_json(), the
 * same bytes as the events. Validation happens before any write, so a rejected
 * request changes nothing. Deleting is soft: a task in the trash keeps running
 * upstream and keeps its result, and a restore brings it back as it is then.
 */
#include "api/handlers.h"
#include "api/page.h"
#include "api/tasks.h"
#include "common/json.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One snapshot: the page and the user's event seq it reflects (sql/functions/task_page.sql, page.h). */
static const char SQL_LIST[] = "SELECT * FROM mjs.task_page($1, $5, $2, $3, $4)";

void tasks_list(struct call *c)
{
	char value[16];
	struct page p;
	const char *params[5] = { c->user_id, NULL, NULL, p.limit_s, "false" };
	PGresult *res;

	if (http_query_param(c->req->query, "deleted", value, sizeof(value)) >= 0) {
		if (!strcmp(value, "1") || !strcmp(value, "true"))
			params[4] = "true";
		else if (strcmp(value, "0") != 0 && strcmp(value, "false") != 0) {
			call_invalid(c, "deleted must be 1 (the trash) or 0");
			return;
		}
	}
	if (page_parse(c, &p) < 0)
		return;
	params[1] = p.after_usec;
	params[2] = p.after_id;
	res = call_exec(c, SQL_LIST, 5, params);
	if (res)
		page_respond(c, res, &p);
}

static const char SQL_GET[] =
	"SELECT mjs.task_json(t)::text, u.event_seq FROM mjs.users u "
	"JOIN mjs.tasks t ON t.id = $2 AND t.user_id = u.id WHERE u.id = $1";

void tasks_get(struct call *c)
{
	const char *params[2] = { c->user_id, c->params[0] };
	PGresult *res = call_exec(c, SQL_GET, 2, params);

	if (!res)
		return;
	if (PQntuples(res) == 1) {
		http_json(c->resp, 200, PQgetvalue(res, 0, 0));
		http_event_seq(c->resp, PQgetvalue(res, 0, 1));
	} else {
		http_error(c->resp, 404, "not_found", "no such task");
	}
	PQclear(res);
}

/* Is s "<width>x<height>", each 2 to 5 digits? */
static int size_valid(const char *s)
{
	size_t w = strspn(s, "0123456789"), h;

	if (w < 2 || w > 5 || s[w] != 'x')
		return 0;
	h = strspn(s + w + 1, "0123456789");
	return h >= 2 && h <= 5 && s[w + 1 + h] == '\0';
}

/*
 * Reads the optional video fields into opts (a JSON object the caller owns).
 * Returns 0, or -1 with err set for a 422.
 */
static int read_options(struct json_object *body, int video, struct json_object *opts, char *err, size_t errlen)
{
	static const char *const video_only[] = { "model", "seconds", "size" };
	struct json_object *v;
	char *s = NULL;
	enum json_field_rc rc;

	if (!video) {
		for (size_t i = 0; i < sizeof(video_only) / sizeof(video_only[0]); i++) {
			if (json_object_object_get_ex(body, video_only[i], &v) && !json_object_is_type(v, json_type_null)) {
				snprintf(err, errlen, "%s applies to video tasks only", video_only[i]);
				return -1;
			}
		}
		return 0;
	}
	rc = json_field_string_dup(body, "model", 1, TASK_MODEL_MAX, JSON_FIELD_TRIM | JSON_FIELD_SINGLE_LINE, &s,
				   err, errlen);
	if (rc == JSON_FIELD_INVALID)
		return -1;
	if (rc == JSON_FIELD_OK)
		json_object_object_add(opts, "model", json_object_new_string(s));
	free(s);
	s = NULL;
	if (json_object_object_get_ex(body, "seconds", &v) && !json_object_is_type(v, json_type_null)) {
		int64_t n = json_object_get_int64(v);
		if (!json_object_is_type(v, json_type_int) || n < 1 || n > TASK_SECONDS_MAX) {
			snprintf(err, errlen, "seconds must be an integer from 1 to %d", TASK_SECONDS_MAX);
			return -1;
		}
		json_object_object_add(opts, "seconds", json_object_new_int64(n));
	}
	rc = json_field_string_dup(body, "size", 1, TASK_SIZE_MAX, JSON_FIELD_TRIM | JSON_FIELD_SINGLE_LINE, &s, err,
				   errlen);
	if (rc == JSON_FIELD_INVALID)
		return -1;
	if (rc == JSON_FIELD_OK) {
		if (!size_valid(s)) {
			snprintf(err, errlen, "size must look like 1280x720");
			free(s);
			return -1;
		}
		json_object_object_add(opts, "size", json_object_new_string(s));
	}
	free(s);
	return 0;
}

/* mjs.create_task: refused (running_tasks set, nothing changed) at max_tasks_per_user */
static const char SQL_CREATE[] =
	"SELECT body::text, event_seq, running_tasks FROM mjs.create_task($1, $2, $3, $4::jsonb, $5)";

void tasks_create(struct call *c)
{
	char *kind = NULL, *prompt = NULL, err[160];
	struct json_object *opts = json_object_new_object();
	char cap[16];
	const char *params[5] = { c->user_id, NULL, NULL, NULL, cap };
	enum json_field_rc rc;
	PGresult *res;

	rc = json_field_string_dup(c->body, "kind", 1, 16, 0, &kind, err, sizeof(err));
	if (rc == JSON_FIELD_ABSENT)
		snprintf(err, sizeof(err), "kind is required (\"image\" or \"video\")");
	if (rc != JSON_FIELD_OK)
		goto invalid;
	if (strcmp(kind, "image") != 0 && strcmp(kind, "video") != 0) {
		snprintf(err, sizeof(err), "kind must be \"image\" or \"video\"");
		goto invalid;
	}
	rc = json_field_string_dup(c->body, "prompt", 1, TASK_PROMPT_MAX, 0, &prompt, err, sizeof(err));
	if (rc == JSON_FIELD_ABSENT)
		snprintf(err, sizeof(err), "prompt is required");
	if (rc != JSON_FIELD_OK)
		goto invalid;
	if (!prompt[strspn(prompt, " \t\r\n")]) {
		snprintf(err, sizeof(err), "prompt must not be blank");
		goto invalid;
	}
	if (read_options(c->body, !strcmp(kind, "video"), opts, err, sizeof(err)) < 0)
		goto invalid;
	params[1] = kind;
	params[2] = prompt;
	params[3] = json_object_to_json_string_ext(opts, JSON_C_TO_STRING_PLAIN);
	snprintf(cap, sizeof(cap), "%d", c->app->cfg->max_tasks_per_user);
	res = call_exec(c, SQL_CREATE, 5, params);
	if (res) {
		if (!PQgetisnull(res, 0, 2)) {
			call_over_cap(c, "too_many_tasks", LIMIT_RETRY_TASK_S,
				      "you have %d tasks in progress (the limit is %d); wait for one to finish",
				      atoi(PQgetvalue(res, 0, 2)), c->app->cfg->max_tasks_per_user);
		} else if (PQgetisnull(res, 0, 0)) {
			http_error(c->resp, 401, "unauthorized", "the session's user no longer exists");
		} else {
			http_json(c->resp, 201, PQgetvalue(res, 0, 0));
			http_event_seq(c->resp, PQgetvalue(res, 0, 1));
		}
		PQclear(res);
	}
	goto out;
invalid:
	call_invalid(c, err);
out:
	json_object_put(opts);
	free(kind);
	free(prompt);
}

static const char SQL_CHANGE[] = "SELECT outcome, task::text, event_seq FROM mjs.change_task($1, $2, $3, $4)";

/* Runs one change; answers 404, 409 (restore of a task not in the trash), or ok_status. */
static void change(struct call *c, const char *action, const char *blurred, int ok_status)
{
	const char *params[4] = { c->user_id, c->params[0], action, blurred };
	PGresult *res = call_exec(c, SQL_CHANGE, 4, params);
	const char *outcome;

	if (!res)
		return;
	outcome = PQgetvalue(res, 0, 0);
	if (!strcmp(outcome, "not_found"))
		http_error(c->resp, 404, "not_found", "no such task");
	else if (!strcmp(outcome, "not_deleted"))
		http_error(c->resp, 409, "conflict", "the task is not in the trash");
	else {
		if (ok_status == 204)
			c->resp->status = 204;
		else
			http_json(c->resp, ok_status, PQgetvalue(res, 0, 1));
		http_event_seq(c->resp, PQgetvalue(res, 0, 2));
	}
	PQclear(res);
}

void tasks_update(struct call *c)
{
	char err[160];
	int blurred = 0;
	enum json_field_rc rc = json_field_bool(c->body, "blurred", &blurred, err, sizeof(err));

	if (rc == JSON_FIELD_ABSENT)
		snprintf(err, sizeof(err), "blurred is required");
	if (rc != JSON_FIELD_OK) {
		call_invalid(c, err);
		return;
	}
	change(c, "blur", blurred ? "true" : "false", 200);
}

void tasks_delete(struct call *c)
{
	change(c, "delete", NULL, 204);
}

void tasks_restore(struct call *c)
{
	change(c, "restore", NULL, 200);
}
