/*
 * conversations: handlers for /api/conversations. Object JSON comes from
 * mjs.conversation_json() so REST bodies and event data are the same bytes.
 */
#include "api/conversations.h"
#include "api/handlers.h"
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

/* Reads the title field; returns 1 absent, 0 ok (*title set), -1 after a 422. */
static int read_title(struct call *c, char **title)
{
	char err[160];
	enum json_field_rc rc = json_field_string_dup(c->body, "title", 1, CONVERSATION_TITLE_MAX,
						      JSON_FIELD_TRIM | JSON_FIELD_SINGLE_LINE, title, err,
						      sizeof(err));

	if (rc == JSON_FIELD_INVALID) {
		call_invalid(c, err);
		return -1;
	}
	return rc == JSON_FIELD_ABSENT ? 1 : 0;
}

static const char SQL_CREATE[] =
	"WITH u AS (SELECT mjs.lock_user($1) AS id), "
	"c AS (INSERT INTO mjs.conversations (user_id, title) SELECT u.id, $2 FROM u RETURNING *), "
	"j AS (SELECT mjs.conversation_json(c) AS obj FROM c) "
	"SELECT obj::text, mjs.emit($1, 'conversation.created', obj) FROM j";

void conversations_create(struct call *c)
{
	char *title = NULL;
	int rc = read_title(c, &title);
	const char *params[2] = { c->user_id, NULL };
	PGresult *res;

	if (rc < 0)
		return;
	params[1] = rc == 0 ? title : CONVERSATION_DEFAULT_TITLE;
	res = call_exec(c, SQL_CREATE, 2, params);
	if (res) {
		http_json(c->resp, 201, PQgetvalue(res, 0, 0));
		http_event_seq(c->resp, PQgetvalue(res, 0, 1));
		PQclear(res);
	}
	free(title);
}

static const char SQL_RENAME[] =
	"WITH u AS (SELECT mjs.lock_user($1) AS id), "
	"c AS (UPDATE mjs.conversations SET title = $3, updated_at = now() "
	"  WHERE id = $2 AND user_id = (SELECT id FROM u) RETURNING *), "
	"j AS (SELECT mjs.conversation_json(c) AS obj FROM c) "
	"SELECT obj::text, mjs.emit($1, 'conversation.updated', obj) FROM j";

void conversations_update(struct call *c)
{
	char *title = NULL;
	int rc = read_title(c, &title);
	const char *params[3] = { c->user_id, c->params[0], title };
	PGresult *res;

	if (rc < 0)
		return;
	if (rc == 1) {
		call_invalid(c, "title is required");
		return;
	}
	res = call_exec(c, SQL_RENAME, 3, params);
	if (res) {
		if (PQntuples(res) == 1) {
			http_json(c->resp, 200, PQgetvalue(res, 0, 0));
			http_event_seq(c->resp, PQgetvalue(res, 0, 1));
		} else {
			http_error(c->resp, 404, "not_found", "no such conversation");
		}
		PQclear(res);
	}
	free(title);
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
