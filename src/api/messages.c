/*
 * messages: handlers for /api/conversations/{id}/messages and /api/messages/{id}.
 * Object JSON comes from mjs.message_json(), as in the events.
 */
#include "api/handlers.h"
#include "api/messages.h"
#include "api/page.h"
#include "common/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One page and the user's event seq it reflects, in one snapshot (sql/functions/message_page.sql, page.h). */
static const char SQL_LIST[] = "SELECT * FROM mjs.message_page($1, $2, $3, $4, $5)";

void messages_list(struct call *c)
{
	struct page p;
	const char *params[5] = { c->user_id, c->params[0], NULL, NULL, p.limit_s };
	PGresult *res;

	if (page_parse(c, &p) < 0)
		return;
	params[2] = p.after_usec;
	params[3] = p.after_id;
	res = call_exec(c, SQL_LIST, 5, params);
	if (!res)
		return;
	if (PQntuples(res) > 0 && PQgetisnull(res, 0, 0)) {
		http_error(c->resp, 404, "not_found", "no such conversation");
		PQclear(res);
		return;
	}
	page_respond(c, res, &p);
}

/* mjs.send_message: refused (open_replies set, nothing changed) at max_replies_per_user */
static const char SQL_SEND[] =
	"SELECT body::text, event_seq, open_replies FROM mjs.send_message($1, $2, $3, $4, $5, $6)";

void messages_send(struct call *c)
{
	char *content = NULL, *model = NULL, err[160];
	char cap[16];
	const char *params[6] = { c->user_id, c->params[0], NULL, NULL, NULL, cap };
	enum json_field_rc rc;
	PGresult *res;

	rc = json_field_string_dup(c->body, "content", 1, MESSAGE_CONTENT_MAX, 0, &content, err, sizeof(err));
	if (rc == JSON_FIELD_ABSENT)
		snprintf(err, sizeof(err), "content is required");
	if (rc != JSON_FIELD_OK)
		goto invalid;
	if (!content[strspn(content, " \t\r\n")]) {
		snprintf(err, sizeof(err), "content must not be blank");
		goto invalid;
	}
	rc = json_field_string_dup(c->body, "model", 1, MODEL_NAME_MAX, JSON_FIELD_TRIM | JSON_FIELD_SINGLE_LINE,
				   &model, err, sizeof(err));
	if (rc == JSON_FIELD_INVALID)
		goto invalid;
	params[2] = content;
	params[3] = model;	/* NULL: the conversation's model, else the default */
	params[4] = models_default(c->app->cfg);
	if (model ? !config_model_upstream(c->app->cfg, model) : !params[4]) {
		if (model)
			snprintf(err, sizeof(err), "the model \"%.60s\" is not offered here; GET /api/models lists "
				 "the models", model);
		else
			snprintf(err, sizeof(err), "no chat model is configured on this server");
		http_error(c->resp, 422, "unknown_model", err);
		goto out;
	}
	snprintf(cap, sizeof(cap), "%d", c->app->cfg->max_replies_per_user);
	res = call_exec(c, SQL_SEND, 6, params);
	if (res) {
		if (!PQgetisnull(res, 0, 2)) {
			call_over_cap(c, "too_many_replies", LIMIT_RETRY_REPLY_S,
				      "you have %d replies queued or generating (the limit is %d); "
				      "wait for one to finish or stop one", atoi(PQgetvalue(res, 0, 2)),
				      c->app->cfg->max_replies_per_user);
		} else if (PQgetisnull(res, 0, 0)) {
			http_error(c->resp, 404, "not_found", "no such conversation");
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
	free(content);
	free(model);
}

static const char SQL_MESSAGE_STATUS[] =
	"SELECT status FROM mjs.messages WHERE id = $2 AND user_id = $1";

/* After a write matched nothing: 404 when the message is not the user's, else 409. */
static void not_found_or_busy(struct call *c)
{
	const char *params[2] = { c->user_id, c->params[0] };
	PGresult *res = call_exec(c, SQL_MESSAGE_STATUS, 2, params);

	if (!res)
		return;
	if (PQntuples(res) == 0)
		http_error(c->resp, 404, "not_found", "no such message");
	else
		http_error(c->resp, 409, "conflict", "the message is still generating; stop it first");
	PQclear(res);
}

static const char SQL_EDIT[] =
	"WITH u AS (SELECT mjs.lock_user($1) AS id), "
	"m AS (UPDATE mjs.messages SET content = $3, updated_at = now() "
	"  WHERE id = $2 AND user_id = (SELECT id FROM u) "
	"  AND status NOT IN ('created', 'pending', 'streaming') RETURNING *), "
	"j AS (SELECT mjs.message_json(m) AS obj FROM m) "
	"SELECT obj::text, mjs.emit($1, 'message.updated', obj) FROM j";

void messages_update(struct call *c)
{
	char *content = NULL, err[160];
	const char *params[3] = { c->user_id, c->params[0], NULL };
	enum json_field_rc rc;
	PGresult *res;

	rc = json_field_string_dup(c->body, "content", 1, MESSAGE_CONTENT_MAX, 0, &content, err, sizeof(err));
	if (rc == JSON_FIELD_ABSENT)
		snprintf(err, sizeof(err), "content is required");
	if (rc != JSON_FIELD_OK) {
		call_invalid(c, err);
		return;
	}
	params[2] = content;
	res = call_exec(c, SQL_EDIT, 3, params);
	if (res) {
		if (PQntuples(res) == 1) {
			http_json(c->resp, 200, PQgetvalue(res, 0, 0));
			http_event_seq(c->resp, PQgetvalue(res, 0, 1));
		} else {
			not_found_or_busy(c);
		}
		PQclear(res);
	}
	free(content);
}

static const char SQL_DELETE[] =
	"WITH u AS (SELECT mjs.lock_user($1) AS id), "
	"m AS (DELETE FROM mjs.messages WHERE id = $2 AND user_id = (SELECT id FROM u) "
	"  AND status NOT IN ('created', 'pending', 'streaming') RETURNING id, conversation_id) "
	"SELECT mjs.emit($1, 'message.deleted', "
	"  (SELECT row_to_json(r) FROM (SELECT m.id, m.conversation_id) r)) FROM m";

void messages_delete(struct call *c)
{
	const char *params[2] = { c->user_id, c->params[0] };
	PGresult *res = call_exec(c, SQL_DELETE, 2, params);

	if (!res)
		return;
	if (PQntuples(res) == 1) {
		c->resp->status = 204;
		http_event_seq(c->resp, PQgetvalue(res, 0, 0));
	} else {
		not_found_or_busy(c);
	}
	PQclear(res);
}

static const char SQL_STOP[] = "SELECT outcome, message::text, event_seq FROM mjs.stop_message($1, $2)";

void messages_stop(struct call *c)
{
	const char *params[2] = { c->user_id, c->params[0] };
	PGresult *res = call_exec(c, SQL_STOP, 2, params);
	const char *outcome;

	if (!res)
		return;
	outcome = PQgetvalue(res, 0, 0);
	if (!strcmp(outcome, "not_found"))
		http_error(c->resp, 404, "not_found", "no such message");
	else if (!strcmp(outcome, "finished"))
		http_error(c->resp, 409, "conflict", "the message is not generating");
	else {
		http_json(c->resp, !strcmp(outcome, "stopped") ? 200 : 202, PQgetvalue(res, 0, 1));
		http_event_seq(c->resp, PQgetvalue(res, 0, 2));
	}
	PQclear(res);
}
