/*
 * limits: mjsctl limits [--all], who is at a per-user cap (mjs.conf(5),
 * "Per-user limits"): replies queued or running against max_replies_per_user,
 * tasks in progress against max_tasks_per_user, and the responders on which the
 * user holds max_streams_per_user streams (from their heartbeats in
 * mjs.responders, written every 5 s; a responder not heard of for 30 s is
 * left out). The caps compared against are the ones in
 * mjsctl's configuration file, which is the servers' in a normal installation.
 * --all lists every user with a reply or task open as well.
 */
#include "ctl/ctl.h"
#include "common/db.h"

#include <stdio.h>

static const char SQL_LIMITS[] =
	"WITH s AS (SELECT x.user_id, string_agg(r.name, ',' ORDER BY r.name) AS on_responders "
	"           FROM mjs.responders r, unnest(r.capped_users) AS x(user_id) "
	"           WHERE r.heartbeat_at > now() - interval '30 seconds' GROUP BY x.user_id), "
	"g AS (SELECT user_id, count(*) AS n FROM mjs.generations WHERE state <> 'done' GROUP BY user_id), "
	"t AS (SELECT user_id, count(*) AS n FROM mjs.tasks "
	"      WHERE status IN ('submitting', 'processing') GROUP BY user_id), "
	"a AS (SELECT user_id FROM s UNION SELECT user_id FROM g UNION SELECT user_id FROM t) "
	"SELECT u.username, coalesce(g.n, 0) AS replies, $1::integer AS max_replies, "
	"  coalesce(t.n, 0) AS tasks, $2::integer AS max_tasks, "
	"  s.on_responders AS streams_capped_on, "
	"  concat_ws(',', CASE WHEN g.n >= $1::integer THEN 'replies' END, "
	"            CASE WHEN t.n >= $2::integer THEN 'tasks' END, "
	"            CASE WHEN s.user_id IS NOT NULL THEN 'streams' END) AS at_cap "
	"FROM a JOIN mjs.users u ON u.id = a.user_id "
	"LEFT JOIN s ON s.user_id = a.user_id LEFT JOIN g ON g.user_id = a.user_id "
	"LEFT JOIN t ON t.user_id = a.user_id "
	"WHERE $3::boolean OR g.n >= $1::integer OR t.n >= $2::integer OR s.user_id IS NOT NULL "
	"ORDER BY u.username";

int ctl_limits(struct ctl *c)
{
	char replies[16], tasks[16];
	const char *params[3] = { replies, tasks, (c->opts & OPT_ALL) ? "true" : "false" };
	PGresult *res;

	snprintf(replies, sizeof(replies), "%d", c->cfg->max_replies_per_user);
	snprintf(tasks, sizeof(tasks), "%d", c->cfg->max_tasks_per_user);
	if (!ctl_db(c))
		return EXIT_NODB;
	if (!(res = db_exec(c->db, SQL_LIMITS, 3, params)))
		return EXIT_FAIL;
	ctl_print_rows(c, res);
	PQclear(res);
	return EXIT_OK;
}
