/*
 * sessions: mjsctl session list [USER] and session revoke ID | --user USER | --all.
 *
 * Revoking deletes session rows; the sessions_ended trigger notifies
 * mjs_sessions and every responder closes the streams of those sessions. The
 * browser's next request is 401 and it logs in again.
 */
#include "ctl/ctl.h"
#include "common/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SQL_SESSION_LIST[] =
	"SELECT s.id, u.username, mjs.rfc3339(s.created_at) AS created_at, "
	"  mjs.rfc3339(s.last_seen_at) AS last_seen_at, mjs.rfc3339(s.expires_at) AS expires_at, "
	"  s.remote_addr, s.user_agent "
	"FROM mjs.sessions s JOIN mjs.users u ON u.id = s.user_id "
	"WHERE s.expires_at > now() AND ($1::text IS NULL OR lower(u.username) = lower($1)) "
	"ORDER BY s.id";

int ctl_session_list(struct ctl *c)
{
	const char *params[1] = { c->nargs ? c->args[0] : NULL };
	PGresult *res;
	int ok;

	if (c->nargs && !ctl_username_ok(c->args[0]))
		return EXIT_USAGE;
	if (!ctl_db(c))
		return EXIT_NODB;
	if (c->nargs && (ok = ctl_user_exists(c, c->args[0])) <= 0)
		return EXIT_FAIL;
	if (!(res = db_exec(c->db, SQL_SESSION_LIST, 1, params)))
		return EXIT_FAIL;
	ctl_print_rows(c, res);
	PQclear(res);
	return EXIT_OK;
}

static const char SQL_REVOKE_ID[] =
	"WITH d AS (DELETE FROM mjs.sessions WHERE id = $1::bigint RETURNING 1) SELECT count(*) FROM d";
static const char SQL_REVOKE_USER[] =
	"WITH d AS (DELETE FROM mjs.sessions WHERE user_id IN "
	"  (SELECT id FROM mjs.users WHERE lower(username) = lower($1)) RETURNING 1) "
	"SELECT count(*) FROM d";
static const char SQL_REVOKE_ALL[] =
	"WITH d AS (DELETE FROM mjs.sessions RETURNING 1) SELECT count(*) FROM d";

int ctl_session_revoke(struct ctl *c)
{
	int by_id = c->nargs == 1, by_user = (c->opts & OPT_USER) != 0, all = (c->opts & OPT_ALL) != 0;
	const char *params[1] = { NULL };
	const char *sql;
	PGresult *res;
	long long n;

	if (by_id + by_user + all != 1) {
		ctl_err("session revoke takes exactly one of ID, --user USER or --all");
		return EXIT_USAGE;
	}
	if (by_id) {
		if (strspn(c->args[0], "0123456789") != strlen(c->args[0]) || strlen(c->args[0]) > 18) {
			ctl_err("bad session id \"%.64s\": a session id is a number (see session list)", c->args[0]);
			return EXIT_USAGE;
		}
		sql = SQL_REVOKE_ID;
		params[0] = c->args[0];
	} else if (by_user) {
		if (!ctl_username_ok(c->user))
			return EXIT_USAGE;
		sql = SQL_REVOKE_USER;
		params[0] = c->user;
	} else {
		sql = SQL_REVOKE_ALL;
	}
	if (!ctl_db(c))
		return EXIT_NODB;
	if (by_user && ctl_user_exists(c, c->user) <= 0)
		return EXIT_FAIL;
	if (!(res = db_exec(c->db, sql, params[0] ? 1 : 0, params)))
		return EXIT_FAIL;
	n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (by_id && n == 0) {
		ctl_err("no such session: %s", c->args[0]);
		return EXIT_FAIL;
	}
	if (c->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "revoked", json_object_new_int64(n));
		ctl_print_json(o);
	} else {
		printf("revoked %lld session%s\n", n, n == 1 ? "" : "s");
	}
	return EXIT_OK;
}
