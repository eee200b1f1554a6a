/*
 * tasks: mjsctl task list [--all] [--user USER] [--limit N] and task retry ID.
 *
 * task retry goes through one SQL function (mjs.retry_task) so that the reset,
 * the task.updated event every stream of the user sees and the wake-up of the
 * workers commit together. Only a failed task is retried, and as a new submit:
 * its upstream job is final, polling it again could only fail again.
 */
#include "ctl/ctl.h"
#include "common/db.h"

#include <stdio.h>
#include <string.h>

/*
 * lease: unclaimed (no worker yet), held, expired (its worker died or handed
 * it back; the next claim takes it over), NULL once final.
 */
static const char SQL_TASK_LIST[] =
	"SELECT t.id, u.username, t.kind, t.status, t.progress, t.upstream_id, t.worker, "
	"  CASE WHEN t.status IN ('succeeded', 'failed') THEN NULL "
	"       WHEN t.worker IS NULL THEN 'unclaimed' "
	"       WHEN t.lease_until < now() THEN 'expired' ELSE 'held' END AS lease, "
	"  CASE WHEN t.status IN ('submitting', 'processing') "
	"       THEN round(extract(epoch FROM t.lease_until - now())::numeric, 1) END AS lease_left_s, "
	"  t.attempts, round(extract(epoch FROM now() - t.created_at)::numeric, 1) AS age_s, t.error "
	"FROM mjs.tasks t JOIN mjs.users u ON u.id = t.user_id "
	"WHERE ($1::boolean OR t.status IN ('submitting', 'processing')) "
	"  AND ($2::text IS NULL OR lower(u.username) = lower($2)) "
	"ORDER BY t.created_at DESC, t.id DESC LIMIT $3::bigint";

int ctl_task_list(struct ctl *c)
{
	char limit[24];
	const char *params[3] = { (c->opts & OPT_ALL) ? "true" : "false", c->user, limit };
	PGresult *res;

	snprintf(limit, sizeof(limit), "%lld", (c->opts & OPT_LIMIT) ? c->limit : 100LL);
	if (c->user && !ctl_username_ok(c->user))
		return EXIT_USAGE;
	if (!ctl_db(c))
		return EXIT_NODB;
	if (c->user && ctl_user_exists(c, c->user) <= 0)
		return EXIT_FAIL;
	if (!(res = db_exec(c->db, SQL_TASK_LIST, 3, params)))
		return EXIT_FAIL;
	ctl_print_rows(c, res);
	PQclear(res);
	return EXIT_OK;
}

static const char SQL_TASK_RETRY[] =
	"SELECT outcome, (task ->> 'status') AS status FROM mjs.retry_task($1::uuid)";

int ctl_task_retry(struct ctl *c)
{
	const char *id = c->args[0], *params[1] = { id };
	const char *outcome, *status;
	PGresult *res;
	int rc = EXIT_OK;

	if (!ctl_is_uuid(id)) {
		ctl_err("bad task id \"%.64s\": an id is a task UUID (see task list)", id);
		return EXIT_USAGE;
	}
	if (!ctl_db(c))
		return EXIT_NODB;
	if (!(res = db_exec(c->db, SQL_TASK_RETRY, 1, params)))
		return EXIT_FAIL;
	outcome = PQntuples(res) ? PQgetvalue(res, 0, 0) : "not_found";
	status = PQntuples(res) ? PQgetvalue(res, 0, 1) : "";
	if (!strcmp(outcome, "not_found")) {
		ctl_err("no such task: %s", id);
		rc = EXIT_FAIL;
	} else if (strcmp(outcome, "retried")) {
		ctl_err("task %s has status %s: only a failed task can be retried", id, status);
		rc = EXIT_FAIL;
	} else if (c->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_string(id));
		json_object_object_add(o, "outcome", json_object_new_string(outcome));
		json_object_object_add(o, "status", json_object_new_string(status));
		ctl_print_json(o);
	} else {
		printf("retried %s: submitting again, a worker submits a new upstream job\n", id);
	}
	PQclear(res);
	return rc;
}
