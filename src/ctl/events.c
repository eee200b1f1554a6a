/*
 * events: mjsctl events prune --older-than DURATION [--keep N].
 *
 * Retention rule: an event is deleted only when it is older than DURATION
 * (at least a minute) AND is not among its user's last N (default 100) events.
 * So a notification's event is always still there when a responder reads it
 * (notifications without data, catch-up after a gap), and a tab that was away
 * briefly replays instead of reloading. A tab whose Last-Event-ID is older than
 * what is kept gets `event: reset` and reloads over REST (see src/api/delivery.h):
 * pruning never breaks a stream, it only makes far-behind tabs reload.
 *
 * Deletes in batches, each its own short transaction, so a large prune never
 * holds many locks nor one long transaction.
 */
#include "ctl/ctl.h"
#include "common/db.h"

#include <stdio.h>
#include <stdlib.h>

#define PRUNE_BATCH "10000"
#define PRUNE_MIN_AGE_S 60
#define PRUNE_DEFAULT_KEEP 100

static const char SQL_PRUNE_BATCH[] =
	"WITH d AS (DELETE FROM mjs.events WHERE ctid = ANY (ARRAY("
	"    SELECT e.ctid FROM mjs.events e JOIN mjs.users u ON u.id = e.user_id "
	"    WHERE e.created_at < now() - $1::bigint * interval '1 second' "
	"      AND e.seq <= u.event_seq - $2::bigint "
	"    LIMIT $3::bigint)) RETURNING 1) "
	"SELECT count(*) FROM d";

int ctl_events_prune(struct ctl *c)
{
	char age[24], keep[24];
	const char *params[3] = { age, keep, PRUNE_BATCH };
	long long age_s, deleted = 0, n;
	long long keep_n = (c->opts & OPT_KEEP) ? c->keep : PRUNE_DEFAULT_KEEP;

	if (!(c->opts & OPT_OLDER_THAN)) {
		ctl_err("events prune needs --older-than DURATION (e.g. 7d)");
		return EXIT_USAGE;
	}
	if (ctl_parse_duration_s(c->older_than, &age_s) < 0) {
		ctl_err("bad --older-than \"%.64s\": expected a duration like 30m, 12h or 7d", c->older_than);
		return EXIT_USAGE;
	}
	if (age_s < PRUNE_MIN_AGE_S) {
		ctl_err("--older-than must be at least 1m: newer events may still be on their way to open streams");
		return EXIT_USAGE;
	}
	snprintf(age, sizeof(age), "%lld", age_s);
	snprintf(keep, sizeof(keep), "%lld", keep_n);
	if (!ctl_db(c))
		return EXIT_NODB;
	do {
		PGresult *res = db_exec(c->db, SQL_PRUNE_BATCH, 3, params);
		if (!res) {
			ctl_err("pruning stopped after %lld events", deleted);
			return EXIT_FAIL;
		}
		n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		deleted += n;
	} while (n >= atoll(PRUNE_BATCH));
	if (c->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "deleted", json_object_new_int64(deleted));
		json_object_object_add(o, "older_than_s", json_object_new_int64(age_s));
		json_object_object_add(o, "keep", json_object_new_int64(keep_n));
		ctl_print_json(o);
	} else {
		printf("deleted %lld event%s older than %s, keeping each user's last %lld\n", deleted,
		       deleted == 1 ? "" : "s", c->older_than, keep_n);
	}
	return EXIT_OK;
}
