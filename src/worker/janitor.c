/*
 * janitor: the worker's cleanup on its own connection (janitor.h).
 */
#include "worker/janitor.h"
#include "common/db.h"
#include "common/log.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JANITOR_RETRY_MS 1000
#define HOUSEKEEPING_MS 60000
#define SESSIONS_PER_SWEEP 1000

static const char SQL_SWEEP[] = "SELECT mjs.sweep_chunks()";
static const char SQL_DROP_CHUNKS[] = "SELECT mjs.drop_chunks($1::uuid[])";
/* Deletes expired sessions at most SESSIONS_PER_SWEEP at a time (the index on expires_at). */
static const char SQL_EXPIRED_SESSIONS[] =
	"DELETE FROM mjs.sessions WHERE token_hash IN (SELECT token_hash FROM mjs.sessions "
	"WHERE expires_at < now() ORDER BY expires_at LIMIT $1)";
/* Failed logins a day old count no more (sql/functions/login_failed.sql). */
static const char SQL_OLD_LOGIN_FAILURES[] =
	"DELETE FROM mjs.login_failures WHERE last_failed_at < now() - interval '1 day'";

static const char *sql_of(enum janitor_job job)
{
	switch (job) {
	case JANITOR_SWEEP: return SQL_SWEEP;
	case JANITOR_DROPS: return SQL_DROP_CHUNKS;
	case JANITOR_SESSIONS: return SQL_EXPIRED_SESSIONS;
	case JANITOR_LOGINS: return SQL_OLD_LOGIN_FAILURES;
	default: return "";
	}
}

void janitor_init(struct janitor *j, const struct config *cfg, int64_t now)
{
	memset(j, 0, sizeof(*j));
	j->cfg = cfg;
	j->housekeeping_due = now;
}

void janitor_finished(struct janitor *j, const char *message_id, int chunk_rows)
{
	if (j->len == j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 64;
		struct janitor_drop *items = realloc(j->drops, cap * sizeof(*items));
		if (!items)
			return;		/* mjs.sweep_chunks() gets these chunks later */
		j->drops = items;
		j->cap = cap;
	}
	snprintf(j->drops[j->len].id, sizeof(j->drops[0].id), "%s", message_id);
	j->drops[j->len++].rows = chunk_rows;
}

static void lost(struct janitor *j, int64_t now)
{
	log_warn("worker lost its second database connection (cleanup); reconnecting");
	PQfinish(j->db);
	j->db = NULL;
	j->sending = JANITOR_IDLE;
	j->drops_sending = 0;
	j->swept = 0;
	j->retry_at = now + JANITOR_RETRY_MS;
}

/* Sends the first drops (up to JANITOR_DROP_ROWS chunks, at least one message). */
static int send_drops(struct janitor *j, PGconn *db)
{
	struct buf ids = { 0 };
	const char *params[1];
	size_t n = 0;
	long rows = 0;
	int rc;

	do {
		rows += j->drops[n].rows;
		buf_array_add(&ids, j->drops[n++].id);
	} while (n < j->len && rows + j->drops[n].rows <= JANITOR_DROP_ROWS);
	params[0] = buf_array_end(&ids);
	rc = db_send(db, SQL_DROP_CHUNKS, 1, params);
	buf_free(&ids);
	if (rc == 0)
		j->drops_sending = n;
	return rc;
}

static int send_job(struct janitor *j, enum janitor_job job)
{
	char limit[16];
	const char *params[1] = { limit };
	int rc;

	if (job == JANITOR_DROPS) {
		rc = send_drops(j, j->db);
	} else if (job == JANITOR_SESSIONS) {
		snprintf(limit, sizeof(limit), "%d", SESSIONS_PER_SWEEP);
		rc = db_send(j->db, SQL_EXPIRED_SESSIONS, 1, params);
	} else {
		rc = db_send(j->db, sql_of(job), 0, NULL);
	}
	if (rc == 0)
		j->sending = job;
	return rc;
}

/* What the statement in flight did, once answered. */
static void answered(struct janitor *j, enum janitor_job job, PGresult *res, int64_t now)
{
	long n;

	switch (job) {
	case JANITOR_SWEEP:
		j->swept = 1;
		if (strcmp(PQgetvalue(res, 0, 0), "0") != 0)
			log_info("worker deleted %s chunks of finished messages", PQgetvalue(res, 0, 0));
		break;
	case JANITOR_DROPS:
		memmove(j->drops, j->drops + j->drops_sending, (j->len - j->drops_sending) * sizeof(j->drops[0]));
		j->len -= j->drops_sending;
		break;
	case JANITOR_SESSIONS:
		n = atol(PQcmdTuples(res));
		j->housekeeping_due = now + (n >= SESSIONS_PER_SWEEP ? 1000 : HOUSEKEEPING_MS);
		if (n > 0)
			log_info("expired sessions deleted count=%ld", n);
		break;
	default:
		break;
	}
}

/* Takes the answer in flight: 0 while it has not come, else 1 (the connection is free). */
static int collect(struct janitor *j, int wait, int64_t now)
{
	enum janitor_job job = j->sending;
	PGresult *res;
	int rc;

	if (!wait && !PQconsumeInput(j->db)) {
		lost(j, now);
		return 1;
	}
	rc = db_collect(j->db, sql_of(job), wait, &res, NULL);
	if (rc == 0)
		return 0;
	j->sending = JANITOR_IDLE;
	if (job == JANITOR_DROPS && rc < 0)
		j->drops_sending = 0;	/* they stay for the next try */
	if (rc > 0) {
		answered(j, job, res, now);
		PQclear(res);
		if (job == JANITOR_DROPS)
			j->drops_sending = 0;
	} else {
		if (job == JANITOR_SESSIONS)
			j->housekeeping_due = now + HOUSEKEEPING_MS;
		if (PQstatus(j->db) != CONNECTION_OK)
			lost(j, now);
	}
	return 1;
}

/* The next statement due now, or JANITOR_IDLE. */
static enum janitor_job due(const struct janitor *j, int64_t now)
{
	if (!j->swept)
		return JANITOR_SWEEP;
	if (j->len > 0 && now >= j->drops_due)
		return JANITOR_DROPS;
	if (now >= j->housekeeping_due)
		return JANITOR_SESSIONS;
	return JANITOR_IDLE;
}

void janitor_tick(struct janitor *j, int64_t now)
{
	enum janitor_job job;

	if (j->sending != JANITOR_IDLE) {
		enum janitor_job was = j->sending;
		if (!collect(j, 0, now))
			return;
		/* the logins follow the sessions on the same turn */
		if (was == JANITOR_SESSIONS && j->db && send_job(j, JANITOR_LOGINS) < 0 &&
		    PQstatus(j->db) != CONNECTION_OK)
			lost(j, now);
		return;
	}
	if ((job = due(j, now)) == JANITOR_IDLE)
		return;
	if (!j->db) {
		if (now < j->retry_at)
			return;
		if (!(j->db = db_connect(j->cfg->database))) {
			j->retry_at = now + JANITOR_RETRY_MS;
			return;
		}
		job = due(j, now);
	}
	if (send_job(j, job) < 0) {
		if (PQstatus(j->db) != CONNECTION_OK)
			lost(j, now);
		else if (job == JANITOR_SESSIONS)
			j->housekeeping_due = now + HOUSEKEEPING_MS;
		return;
	}
	if (job == JANITOR_DROPS)
		j->drops_due = now + JANITOR_DROPS_EVERY_MS;
}

int janitor_fd(const struct janitor *j)
{
	return j->db && j->sending != JANITOR_IDLE ? PQsocket(j->db) : -1;
}

int64_t janitor_next_due(const struct janitor *j)
{
	int64_t t;

	if (j->sending != JANITOR_IDLE)
		return INT64_MAX;	/* its socket wakes the loop */
	if (!j->swept)
		return j->db ? 0 : j->retry_at;
	t = j->housekeeping_due;
	if (j->len > 0 && j->drops_due < t)
		t = j->drops_due;
	if (!j->db && j->retry_at > t)
		t = j->retry_at;
	return t;
}

void janitor_close(struct janitor *j, PGconn *db)
{
	if (j->sending != JANITOR_IDLE && j->db)
		collect(j, 1, util_now_ms());
	/* the chunks of finished replies (else the next worker's sweep deletes them) */
	if (j->db)
		db = j->db;
	while (j->len > 0 && db && send_drops(j, db) == 0) {
		PGresult *res;
		if (db_collect(db, SQL_DROP_CHUNKS, 1, &res, NULL) <= 0)
			break;
		PQclear(res);
		memmove(j->drops, j->drops + j->drops_sending, (j->len - j->drops_sending) * sizeof(j->drops[0]));
		j->len -= j->drops_sending;
		j->drops_sending = 0;
	}
	PQfinish(j->db);
	j->db = NULL;
	free(j->drops);
	j->drops = NULL;
	j->len = j->cap = 0;
}
