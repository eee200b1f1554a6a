/*
 * conversations: handlers for /api/conversations. Object JSON comes from
 * mjs.conversation_json() so REST bodies and event data are the same bytes.
 */
#include "api/conversations.h"
#include "api/handlers.h"
#include "api/messages.h"
#include "api/page.h"
#include "common/json.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One snapshot: the page and the user's event seq it reflects (sql/functions/conversation_page.sql, page.h). */
static const char SQL_LIST[] = "SELECT * FROM mjs.conversation_page($1, $2, $3, $4)";

void conversations_list(struct call *c)
{
	struct page p;
	const char *params[4] = { c->user_id, NULL, NULL, p.limit_s };
	PGresult *res;

	if (page_parse(c, &p) < 0)
		return;
	params[1] = p.after_usec;
	params[2] = p.after_id;
	res = call_exec(c, SQL_LIST, 4, params);
	if (res)
		page_respond(c, res, &p);
}

/* What a POST or PATCH may set; NULL / 0: not given. */
struct settings {
	char *title;
	char *system_prompt;
	int model_given;	/* "model" is in the body: a name, or null to clear it */
	char *model;
};

static void settings_free(struct settings *st)
{
	free(st->title);
	free(st->system_prompt);
	free(st->model);
}

/* Reads title, system_prompt and model; 0, or -1 after a 422. */
static int read_settings(struct call *c, struct settings *st)
{
	struct json_object *v;
	char err[200];
	enum json_field_rc rc;

	memset(st, 0, sizeof(*st));
	rc = json_field_string_dup(c->body, "title", 1, CONVERSATION_TITLE_MAX, JSON_FIELD_TRIM | JSON_FIELD_SINGLE_LINE,
				   &st->title, err, sizeof(err));
	if (rc == JSON_FIELD_INVALID)
		goto invalid;
	rc = json_field_string_dup(c->body, "system_prompt", 0, SYSTEM_PROMPT_MAX, 0, &st->system_prompt, err,
				   sizeof(err));
	if (rc == JSON_FIELD_INVALID)
		goto invalid;
	st->model_given = json_object_object_get_ex(c->body, "model", &v);
	if (st->model_given && v) {
		rc = json_field_string_dup(c->body, "model", 1, MODEL_NAME_MAX, JSON_FIELD_TRIM | JSON_FIELD_SINGLE_LINE,
					   &st->model, err, sizeof(err));
		if (rc == JSON_FIELD_INVALID)
			goto invalid;
		if (!config_model_upstream(c->app->cfg, st->model)) {
			snprintf(err, sizeof(err), "the model \"%.60s\" is not offered here; GET /api/models lists the "
				 "models", st->model);
			http_error(c->resp, 422, "unknown_model", err);
			settings_free(st);
			return -1;
		}
	}
	return 0;
invalid:
	call_invalid(c, err);
	settings_free(st);
	return -1;
}

static const char SQL_CREATE[] =
	"WITH u AS (SELECT mjs.lock_user($1) AS id), "
	"c AS (INSERT INTO mjs.conversations (user_id, title, system_prompt, model) "
	"  SELECT u.id, $2, coalesce($3, ''), $4 FROM u RETURNING *), "
	"j AS (SELECT mjs.conversation_json(c) AS obj FROM c) "
	"SELECT obj::text, mjs.emit($1, 'conversation.created', obj) FROM j";

void conversations_create(struct call *c)
{
	struct settings st;
	const char *params[4];
	PGresult *res;

	if (read_settings(c, &st) < 0)
		return;
	params[0] = c->user_id;
	params[1] = st.title ? st.title : CONVERSATION_DEFAULT_TITLE;
	params[2] = st.system_prompt;
	params[3] = st.model;
	res = call_exec(c, SQL_CREATE, 4, params);
	if (res) {
		http_json(c->resp, 201, PQgetvalue(res, 0, 0));
		http_event_seq(c->resp, PQgetvalue(res, 0, 1));
		PQclear(res);
	}
	settings_free(&st);
}

/* Each field given is set ($6: whether model is, since NULL clears it); the others stay. */
static const char SQL_UPDATE[] =
	"WITH u AS (SELECT mjs.lock_user($1) AS id), "
	"c AS (UPDATE mjs.conversations SET title = coalesce($3, title), "
	"  system_prompt = coalesce($4, system_prompt), "
	"  model = CASE WHEN $6::boolean THEN $5 ELSE model END, updated_at = now() "
	"  WHERE id = $2 AND user_id = (SELECT id FROM u) RETURNING *), "
	"j AS (SELECT mjs.conversation_json(c) AS obj FROM c) "
	"SELECT obj::text, mjs.emit($1, 'conversation.updated', obj) FROM j";

void conversations_update(struct call *c)
{
	struct settings st;
	const char *params[6];
	PGresult *res;

	if (read_settings(c, &st) < 0)
		return;
	if (!st.title && !st.system_prompt && !st.model_given) {
		call_invalid(c, "give title, system_prompt or model");
		settings_free(&st);
		return;
	}
	params[0] = c->user_id;
	params[1] = c->params[0];
	params[2] = st.title;
	params[3] = st.system_prompt;
	params[4] = st.model;
	params[5] = st.model_given ? "true" : "false";
	res = call_exec(c, SQL_UPDATE, 6, params);
	if (res) {
		if (PQntuples(res) == 1) {
			http_json(c->resp, 200, PQgetvalue(res, 0, 0));
			http_event_seq(c->resp, PQgetvalue(res, 0, 1));
		} else {
			http_error(c->resp, 404, "not_found", "no such conversation");
		}
		PQclear(res);
	}
	settings_free(&st);
}

static const char SQL_DELETE[] =
	"WITH u AS (SELECT mjs.lock_user($1) AS id), "
	"c AS (DELETE FROM mjs.conversations WHERE id = $2 AND user_id = (SELECT id FROM u) RETURNING id) "
	"SELECT mjs.emit($1, 'conversation.deleted', (SELECT row_to_json(r) FROM (SELECT c.id) r)) FROM c";

void conversations_delete(struct call *c)
{
	const char *params[2] = { c->user_id, c->params[0] };
	PGresult *res = call_exec(c, SQL_DELETE, 2, params);

	if (!res)
		return;
	if (PQntuples(res) == 1) {
		c->resp->status = 204;
		http_event_seq(c->resp, PQgetvalue(res, 0, 0));
	} else {
		http_error(c->resp, 404, "not_found", "no such conversation");
	}
	PQclear(res);
}
