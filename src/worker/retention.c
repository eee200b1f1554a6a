/*
 * retention: see retention.h. Failures are logged and retried at the next
 * period; a lost connection is opened again then.
 */
#include "worker/retention.h"
#include "common/db.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETENTION_EVERY_MS 10000
#define RETENTION_BUSY_MS 1000		/* again this soon after a full batch */
#define RETENTION_GENERAL_MS 300000
#define RETENTION_BATCH "2000"		/* rows deleted per step; 4x that scanned for deltas */

static const char SQL_RETAIN[] =
	"SELECT locked, deltas, events, gens, more FROM mjs.retain("
	"$1::bigint * interval '1 millisecond', $2::bigint * interval '1 millisecond', $3::integer, "
	"$4::integer, $5::boolean)";

void retention_init(struct retention *r, const struct config *cfg, int64_t now)
{
	memset(r, 0, sizeof(*r));
	r->cfg = cfg;
	r->due = now + RETENTION_BUSY_MS;	/* soon after start, not in its first turn */
	r->general_due = r->due;
}

static void lost(struct retention *r, int64_t now)
{
	PQfinish(r->db);
	r->db = NULL;
	r->sending = 0;
	r->due = now + RETENTION_EVERY_MS;
}

static void send_run(struct retention *r, int64_t now)
{
	char delta[24], event[24], keep[16];
	const char *params[5] = { delta, event, keep, RETENTION_BATCH, NULL };

	if (!r->db && !(r->db = db_connect(r->cfg->database))) {
		r->due = now + RETENTION_EVERY_MS;
		return;
	}
	r->general = now >= r->general_due;
	params[4] = r->general ? "true" : "false";
	snprintf(delta, sizeof(delta), "%lld", (long long)r->cfg->delta_retention_ms);
	snprintf(event, sizeof(event), "%lld", (long long)r->cfg->event_retention_s * 1000);
	snprintf(keep, sizeof(keep), "%d", r->cfg->event_keep);
	if (db_send(r->db, SQL_RETAIN, 5, params) < 0) {
		lost(r, now);
		return;
	}
	r->sending = 1;
}

/* Takes the answer of the run in flight, if it has come. */
static void take_answer(struct retention *r, int64_t now, int wait)
{
	PGresult *res;
	int rc, more = 0;

	if (!wait && !PQconsumeInput(r->db)) {
		log_warn("retention lost its database connection: %s", PQerrorMessage(r->db));
		lost(r, now);
		return;
	}
	rc = db_collect(r->db, SQL_RETAIN, wait, &res, NULL);
	if (rc == 0)
		return;
	r->sending = 0;
	if (rc < 0) {
		if (PQstatus(r->db) != CONNECTION_OK)
			lost(r, now);
		else
			r->due = now + RETENTION_EVERY_MS;
		return;
	}
	if (PQntuples(res) == 1 && !strcmp(PQgetvalue(res, 0, 0), "t")) {
		long long deltas = atoll(PQgetvalue(res, 0, 1)), events = atoll(PQgetvalue(res, 0, 2));
		long long gens = atoll(PQgetvalue(res, 0, 3));
		more = !strcmp(PQgetvalue(res, 0, 4), "t");
		if (deltas + events + gens > 0)
			log_info("retention deleted deltas=%lld events=%lld generations=%lld%s", deltas, events, gens,
				 more ? " more=1" : "");
		if (r->general && !more)
			r->general_due = now + RETENTION_GENERAL_MS;
	}
	PQclear(res);
	r->due = now + (more ? RETENTION_BUSY_MS : RETENTION_EVERY_MS);
}

void retention_tick(struct retention *r, int64_t now)
{
	if (r->sending) {
		take_answer(r, now, 0);
		return;
	}
	if (now >= r->due)
		send_run(r, now);
}

void retention_close(struct retention *r)
{
	if (r->sending && r->db)
		take_answer(r, 0, 1);
	PQfinish(r->db);
	r->db = NULL;
	r->sending = 0;
}
