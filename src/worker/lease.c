/*
 * lease: claims, renewals and hand-backs of replies and tasks (lease.h).
 */
#include "worker/lease.h"
#include "common/db.h"

#include <stdio.h>
#include <string.h>

const struct lease_kind LEASE_REPLIES = {
	"generation",
	"SELECT message_id, user_id, conversation_id, model, attempts, status, content_chars, stop_requested, "
	"recovered, reasoning_chars FROM mjs.claim_generations($1, $2, make_interval(secs => $3::double precision))",
	"UPDATE mjs.generations SET lease_until = now() + make_interval(secs => $2::double precision) "
	"WHERE worker = $1 AND state = 'running' AND message_id = ANY($3::uuid[]) "
	"RETURNING message_id, stop_requested",
	"UPDATE mjs.generations SET lease_until = now() - interval '1 second' WHERE worker = $1 AND state = 'running'",
};

const struct lease_kind LEASE_TASKS = {
	"task",
	"SELECT id, user_id, kind, prompt, options, upstream_id, status, progress, attempts, age_ms, recovered "
	"FROM mjs.claim_tasks($1, $2, make_interval(secs => $3::double precision))",
	"UPDATE mjs.tasks SET lease_until = now() + make_interval(secs => $2::double precision) "
	"WHERE worker = $1 AND status IN ('submitting', 'processing') AND id = ANY($3::uuid[]) RETURNING id",
	"UPDATE mjs.tasks SET lease_until = now() - interval '1 second' "
	"WHERE worker = $1 AND status IN ('submitting', 'processing')",
};

static void seconds(char *out, size_t len, int ms)
{
	snprintf(out, len, "%.3f", ms / 1000.0);
}

PGresult *lease_claim(PGconn *db, const struct lease_kind *k, const char *worker, int limit, int lease_ms)
{
	char lim[16], lease[32];
	const char *params[3] = { worker, lim, lease };

	snprintf(lim, sizeof(lim), "%d", limit);
	seconds(lease, sizeof(lease), lease_ms);
	return db_exec(db, k->claim, 3, params);
}

PGresult *lease_renew(PGconn *db, const struct lease_kind *k, const char *worker, const char *ids, int lease_ms)
{
	char lease[32];
	const char *params[3] = { worker, lease, ids };

	seconds(lease, sizeof(lease), lease_ms);
	return db_exec(db, k->renew, 3, params);
}

int lease_row(const PGresult *res, const char *id)
{
	for (int i = 0; i < PQntuples(res); i++)
		if (!strcmp(PQgetvalue(res, i, 0), id))
			return i;
	return -1;
}

int lease_hand_back(PGconn *db, const struct lease_kind *k, const char *worker)
{
	const char *params[1] = { worker };

	return db_command(db, k->hand_back, 1, params);
}
