/*
 * gens: mjsctl gen list [--all] [--limit N] and gen stop ID.
 *
 * gen stop does what POST /api/messages/{id}/stop does, through the same SQL
 * function (mjs.stop_message): a queued reply is stopped at once, a running one
 * is flagged and its worker, told on mjs_stop, ends it with the text it has.
 *
 * chars is the reply's length once it is final only: while a reply streams,
 * how its text is stored is the worker's business (tokens says how far it got).
 */
#include "ctl/ctl.h"
#include "common/db.h"

#include <stdio.h>
#include <string.h>

static const char SQL_GEN_LIST[] =
	"SELECT g.message_id AS id, u.username, g.state, m.status, g.model, g.worker, g.attempts, "
	"  g.tokens, CASE WHEN m.status IN ('completed', 'stopped', 'failed') "
	"               THEN char_length(m.content) END AS chars, "
	"  round(extract(epoch FROM now() - g.created_at)::numeric, 1) AS age_s, "
	"  round(extract(epoch FROM now() - g.last_flush_at)::numeric, 1) AS since_flush_s, "
	"  m.error "
	"FROM mjs.generations g JOIN mjs.users u ON u.id = g.user_id "
	"JOIN mjs.messages m ON m.id = g.message_id "
	"WHERE $1::boolean OR g.state <> 'done' OR g.finished_at > now() - interval '1 hour' "
	"ORDER BY g.created_at DESC LIMIT $2::bigint";

int ctl_gen_list(struct ctl *c)
{
	char limit[24];
	const char *params[2] = { (c->opts & OPT_ALL) ? "true" : "false", limit };
	PGresult *res;

	snprintf(limit, sizeof(limit), "%lld", (c->opts & OPT_LIMIT) ? c->limit : 100LL);
	if (!ctl_db(c))
		return EXIT_NODB;
	if (!(res = db_exec(c->db, SQL_GEN_LIST, 2, params)))
		return EXIT_FAIL;
	ctl_print_rows(c, res);
	PQclear(res);
	return EXIT_OK;
}

static const char SQL_GEN_STOP[] =
	"SELECT r.outcome, (r.message ->> 'status') AS status "
	"FROM mjs.generations g, LATERAL mjs.stop_message(g.user_id, g.message_id) r "
	"WHERE g.message_id = $1::uuid";

int ctl_gen_stop(struct ctl *c)
{
	const char *id = c->args[0], *params[1] = { id };
	const char *outcome, *status;
	PGresult *res;
	int rc = EXIT_OK;

	if (!ctl_is_uuid(id)) {
		ctl_err("bad generation id \"%.64s\": an id is a message UUID (see gen list)", id);
		return EXIT_USAGE;
	}
	if (!ctl_db(c))
		return EXIT_NODB;
	if (!(res = db_exec(c->db, SQL_GEN_STOP, 1, params)))
		return EXIT_FAIL;
	if (PQntuples(res) == 0 || !strcmp(PQgetvalue(res, 0, 0), "not_found")) {
		ctl_err("no such generation: %s", id);
		PQclear(res);
		return EXIT_FAIL;
	}
	outcome = PQgetvalue(res, 0, 0);
	status = PQgetvalue(res, 0, 1);
	if (!strcmp(outcome, "finished")) {
		ctl_err("generation %s has already finished (status %s)", id, status);
		rc = EXIT_FAIL;
	} else if (c->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_string(id));
		json_object_object_add(o, "outcome", json_object_new_string(outcome));
		json_object_object_add(o, "status", json_object_new_string(status));
		ctl_print_json(o);
	} else if (!strcmp(outcome, "stopped")) {
		printf("stopped %s (it was queued)\n", id);
	} else {
		printf("stopping %s: its worker ends it with the text it has\n", id);
	}
	PQclear(res);
	return rc;
}
