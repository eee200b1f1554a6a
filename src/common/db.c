/*
 * db: connections, parameterized statements and the REST connection pool.
 * The pool hands out connections under one mutex; a connection found broken
 * when it comes back is dropped and a fresh one is made when next needed, so a
 * database restart heals without restarting the responders.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* program_invocation_short_name */
#endif

#include "common/db.h"
#include "common/log.h"

#include <errno.h>
#include <poll.h>
#include <libpq-events.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Server notices (e.g. "already exists, skipping") are not errors: debug lines. */
static void notice_to_log(void *arg, const char *message)
{
	size_t n = strlen(message);

	(void)arg;
	while (n > 0 && message[n - 1] == '\n')
		n--;
	log_debug("db notice: %.*s", (int)n, message);
}

/*
 * What every connection gets unless the configured conninfo says otherwise
 * (its fields come after these, and libpq keeps the last value of a key), or
 * names a service (pg_service.conf's settings would lose to these; so would
 * PGCONNECT_TIMEOUT's, which then sets connect_timeout):
 * a dead database host is noticed in seconds, not the kernel's two hours,
 * so a pooled connection, a LISTEN or a worker's flush moves on to the new
 * primary of a multi-host conninfo (mjs.conf(5), "database") quickly.
 * - connect_timeout: per host tried, so an unreachable first host of the
 *   list does not hold the connection for the kernel's SYN timeout;
 * - keepalives: an idle connection (a LISTEN, a pooled one) is probed after
 *   5 s of silence, every 2 s, and dropped after 3 unanswered probes;
 * - tcp_user_timeout: a connection whose sent data stays unacknowledged for
 *   10 s (a query to a host that died mid-request) is dropped.
 * fallback_application_name names the program (or the connection's role,
 * db_connect_as) in pg_stat_activity.
 */
PGconn *db_connect(const char *conninfo)
{
	return db_connect_as(conninfo, program_invocation_short_name);
}

/* Does conninfo name a service? Its settings come from pg_service.conf, which defaults here would override. */
static int names_service(const char *conninfo)
{
	const char *env = getenv("PGSERVICE");
	PQconninfoOption *opts;
	int found = env && *env;

	if (found || !(opts = PQconninfoParse(conninfo, NULL)))
		return found;	/* a bare database name is no conninfo: no service */
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (!strcmp(o->keyword, "service") && o->val && *o->val)
			found = 1;
	PQconninfoFree(opts);
	return found;
}

PGconn *db_connect_as(const char *conninfo, const char *name)
{
	const char *keys[10], *values[10];
	PGconn *conn;
	int k = 0;

	if (!names_service(conninfo)) {
		if (!getenv("PGCONNECT_TIMEOUT")) {
			keys[k] = "connect_timeout";
			values[k++] = "5";
		}
		keys[k] = "keepalives", values[k++] = "1";
		keys[k] = "keepalives_idle", values[k++] = "5";
		keys[k] = "keepalives_interval", values[k++] = "2";
		keys[k] = "keepalives_count", values[k++] = "3";
		keys[k] = "tcp_user_timeout", values[k++] = "10000";
	}
	keys[k] = "fallback_application_name", values[k++] = name;
	keys[k] = "dbname", values[k++] = conninfo;	/* last: its own settings win */
	keys[k] = NULL, values[k] = NULL;
	conn = PQconnectdbParams(keys, values, 1);
	if (PQstatus(conn) != CONNECTION_OK) {
		/* one line per happening: libpq says one line per host tried, and hints */
		char line[1024];
		size_t n;

		snprintf(line, sizeof(line), "%s", PQerrorMessage(conn));
		n = strlen(line);
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
			n--;
		for (size_t i = 0; i < n; i++)
			if (line[i] == '\n' || line[i] == '\t')
				line[i] = ' ';
		log_error("db connect failed: %.*s", (int)n, line);
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, notice_to_log, NULL);
	return conn;
}

/* The first line of a statement, for log lines that say which query failed. */
static int sql_head_len(const char *sql)
{
	int n = 0;

	while (sql[n] && sql[n] != '\n' && n < 60)
		n++;
	return n;
}

/* Logs a failed result of sql (res may be NULL: the connection's message) and sets sqlstate. */
static void log_failure(PGconn *conn, const char *sql, const PGresult *res, char *sqlstate)
{
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (!msg)
		msg = PQerrorMessage(conn);
	log_error("db query failed: sqlstate=%s query=\"%.*s\" error=\"%s\"", state ? state : "-",
		  sql_head_len(sql), sql, msg);
	if (sqlstate && state)
		snprintf(sqlstate, 6, "%.5s", state);
}

static int result_ok(const PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);

	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/*
 * The statements prepared on a pooled connection, as libpq instance data: a
 * reset (the server forgot them) empties it, closing the connection frees it.
 * A statement is named after a hash of its text and prepared the first time the
 * connection runs it; every later run skips parsing and planning.
 */
#define PREPARED_MAX 64

struct prepared {
	int n;
	struct {
		uint64_t hash;
		char *sql;
	} s[PREPARED_MAX];
};

static void prepared_clear(struct prepared *p)
{
	for (int i = 0; i < p->n; i++)
		free(p->s[i].sql);
	p->n = 0;
}

static int prepared_events(PGEventId id, void *info, void *passthrough)
{
	(void)passthrough;
	if (id == PGEVT_CONNRESET) {
		PGEventConnReset *e = info;
		struct prepared *p = PQinstanceData(e->conn, prepared_events);
		if (p)
			prepared_clear(p);
	} else if (id == PGEVT_CONNDESTROY) {
		PGEventConnDestroy *e = info;
		struct prepared *p = PQinstanceData(e->conn, prepared_events);
		if (p) {
			prepared_clear(p);
			free(p);
		}
	}
	return 1;
}

/* Lets conn keep prepared statements. Returns 0, or -1 (it runs them unnamed). */
static int prepared_enable(PGconn *conn)
{
	struct prepared *p = calloc(1, sizeof(*p));

	if (!p || !PQregisterEventProc(conn, prepared_events, "mjs prepared statements", NULL) ||
	    !PQsetInstanceData(conn, prepared_events, p)) {
		free(p);
		return -1;
	}
	return 0;
}

static uint64_t sql_hash(const char *sql)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */

	for (const unsigned char *c = (const unsigned char *)sql; *c; c++)
		h = (h ^ *c) * 1099511628211ULL;
	return h;
}

/*
 * The name sql is prepared under on conn (name: 24 bytes), preparing it first
 * when it is new there. NULL: run it unnamed (a connection outside the pool, a
 * full list, a failed prepare: the unnamed run meets and logs the same error).
 */
static const char *prepared_name(PGconn *conn, const char *sql, char *name)
{
	struct prepared *p = PQinstanceData(conn, prepared_events);
	uint64_t h;
	PGresult *res;
	char *copy;

	if (!p)
		return NULL;
	h = sql_hash(sql);
	snprintf(name, 24, "mjs_%016llx", (unsigned long long)h);
	for (int i = 0; i < p->n; i++)
		if (p->s[i].hash == h && !strcmp(p->s[i].sql, sql))
			return name;
	if (p->n == PREPARED_MAX || !(copy = strdup(sql)))
		return NULL;
	res = PQprepare(conn, name, sql, 0, NULL);
	if (!result_ok(res)) {
		PQclear(res);
		free(copy);
		return NULL;
	}
	PQclear(res);
	p->s[p->n].hash = h;
	p->s[p->n].sql = copy;
	p->n++;
	return name;
}

/*
 * A prepared statement whose plan the server refuses to use again ("cached plan
 * must not change result type": a migration changed what it reads) is dropped;
 * the caller runs it once more, prepared anew. Returns whether it was dropped.
 */
static int prepared_stale(PGconn *conn, const char *sql, const PGresult *res)
{
	struct prepared *p = PQinstanceData(conn, prepared_events);
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	uint64_t h;

	if (!p || !state || strcmp(state, "0A000") != 0 || PQtransactionStatus(conn) != PQTRANS_IDLE)
		return 0;
	h = sql_hash(sql);
	for (int i = 0; i < p->n; i++) {
		if (p->s[i].hash == h && !strcmp(p->s[i].sql, sql)) {
			char name[24], dealloc[48];
			snprintf(name, sizeof(name), "mjs_%016llx", (unsigned long long)h);
			snprintf(dealloc, sizeof(dealloc), "DEALLOCATE %s", name);	/* a name of ours, never a value */
			PQclear(PQexec(conn, dealloc));
			free(p->s[i].sql);
			p->s[i] = p->s[--p->n];
			log_info("db prepared statement dropped after a schema change: query=\"%.*s\"", sql_head_len(sql),
				 sql);
			return 1;
		}
	}
	return 0;
}

static PGresult *exec_once(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	char buf[24];
	const char *name = prepared_name(conn, sql, buf);

	if (name)
		return PQexecPrepared(conn, name, nparams, params, NULL, NULL, 0);
	return PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
}

PGresult *db_exec_state(PGconn *conn, const char *sql, int nparams, const char *const *params, char *sqlstate)
{
	PGresult *res = exec_once(conn, sql, nparams, params);

	if (sqlstate)
		sqlstate[0] = '\0';
	if (!result_ok(res) && prepared_stale(conn, sql, res)) {
		PQclear(res);
		res = exec_once(conn, sql, nparams, params);
	}
	if (result_ok(res))
		return res;
	log_failure(conn, sql, res, sqlstate);
	PQclear(res);
	return NULL;
}

int db_send(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	if (PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0))
		return 0;
	log_failure(conn, sql, NULL, NULL);
	return -1;
}

int db_collect(PGconn *conn, const char *sql, int wait, PGresult **out, char *sqlstate)
{
	PGresult *res, *answer = NULL;
	int failed = 0;

	if (out)
		*out = NULL;
	if (sqlstate)
		sqlstate[0] = '\0';
	if (!wait && PQisBusy(conn))
		return 0;
	/* every result up to the end: the connection is free for the next statement after */
	while ((res = PQgetResult(conn)) != NULL) {
		if (!result_ok(res)) {
			if (!failed)
				log_failure(conn, sql, res, sqlstate);
			failed = 1;
		} else if (!answer && !failed) {
			answer = res;
			continue;
		}
		PQclear(res);
	}
	if (failed || !answer) {
		if (!failed)
			log_failure(conn, sql, NULL, sqlstate);	/* no answer at all: the connection failed */
		PQclear(answer);
		return -1;
	}
	if (out)
		*out = answer;
	else
		PQclear(answer);
	return 1;
}

static int send_one(PGconn *conn, const char *name, const char *sql, int n, const char *const *params)
{
	if (name)
		return PQsendQueryPrepared(conn, name, n, params, NULL, NULL, 0);
	return PQsendQueryParams(conn, sql, n, NULL, params, NULL, NULL, 0);
}

static int exec_guarded(PGconn *conn, const char *guard, int gn, const char *const *gparams, const char *sql, int n,
			const char *const *params, PGresult **guard_res, PGresult **res, char *guard_state,
			char *sqlstate, int again)
{
	PGresult *got[2] = { NULL, NULL };
	int idx = 0, nq = sql ? 2 : 1, synced = 0, rc;
	char gbuf[24], sbuf[24];
	/* prepared (when new) before the pipeline: a statement of a pipeline cannot wait for another's answer */
	const char *gname = prepared_name(conn, guard, gbuf), *sname = sql ? prepared_name(conn, sql, sbuf) : NULL;

	*guard_res = *res = NULL;
	guard_state[0] = '\0';
	if (sqlstate)
		sqlstate[0] = '\0';
	if (!PQenterPipelineMode(conn)) {
		log_failure(conn, guard, NULL, sqlstate);
		return -2;
	}
	if (!send_one(conn, gname, guard, gn, gparams) || (sql && !send_one(conn, sname, sql, n, params)) ||
	    !PQpipelineSync(conn)) {
		log_failure(conn, sql ? sql : guard, NULL, sqlstate);
		idx = nq + 1;	/* nothing to wait for (a failed send broke the connection) */
	}
	/* each statement's result then a NULL, the second aborted when the first failed; then the sync */
	while (!synced && idx <= nq) {
		PGresult *r = PQgetResult(conn);
		if (!r) {
			if (PQstatus(conn) != CONNECTION_OK || ++idx > nq)
				break;
			continue;
		}
		if (PQresultStatus(r) == PGRES_PIPELINE_SYNC)
			synced = 1;
		else if (idx < nq && !got[idx]) {
			got[idx] = r;
			continue;
		}
		PQclear(r);
	}
	if (!PQexitPipelineMode(conn) && PQstatus(conn) == CONNECTION_OK) {
		/* results left over: a connection in a state nobody can use; start it afresh */
		log_error("db pipeline left unfinished; reconnecting: %s", PQerrorMessage(conn));
		PQreset(conn);
		synced = 0;
	}
	if (synced && got[0] && result_ok(got[0]) && (!sql || (got[1] && result_ok(got[1])))) {
		*guard_res = got[0];
		*res = got[1];
		return 0;
	}
	if (synced && !again && (prepared_stale(conn, guard, got[0]) | (sql && prepared_stale(conn, sql, got[1])))) {
		/* nothing of it stayed (one transaction): run it again, prepared anew */
		PQclear(got[0]);
		PQclear(got[1]);
		return exec_guarded(conn, guard, gn, gparams, sql, n, params, guard_res, res, guard_state, sqlstate, 1);
	}
	if (synced && got[0] && PQresultStatus(got[0]) == PGRES_FATAL_ERROR) {
		const char *state = PQresultErrorField(got[0], PG_DIAG_SQLSTATE);
		snprintf(guard_state, 6, "%.5s", state ? state : "");
		rc = -1;
	} else {
		PGresult *bad = got[1] && !result_ok(got[1]) ? got[1] : got[0] && !result_ok(got[0]) ? got[0] : NULL;
		log_failure(conn, (bad && bad == got[0]) || !sql ? guard : sql, bad, sqlstate);
		rc = -2;
	}
	PQclear(got[0]);
	PQclear(got[1]);
	return rc;
}

int db_exec_guarded(PGconn *conn, const char *guard, int gn, const char *const *gparams, const char *sql, int n,
		    const char *const *params, PGresult **guard_res, PGresult **res, char *guard_state, char *sqlstate)
{
	return exec_guarded(conn, guard, gn, gparams, sql, n, params, guard_res, res, guard_state, sqlstate, 0);
}

PGresult *db_exec(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	return db_exec_state(conn, sql, nparams, params, NULL);
}

int db_data_refused(const char *sqlstate)
{
	return sqlstate && (!strncmp(sqlstate, "22", 2) || !strncmp(sqlstate, "23", 2));
}

int db_command(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult *res = db_exec(conn, sql, nparams, params);

	if (!res)
		return -1;
	PQclear(res);
	return 0;
}

struct db_pool {
	pthread_mutex_t lock;
	pthread_cond_t returned;
	char *conninfo;
	int size;
	int created;		/* connections that exist, idle or lent */
	int nidle;
	PGconn **idle;
};

struct db_pool *db_pool_new(const char *conninfo, int size)
{
	struct db_pool *pool = calloc(1, sizeof(*pool));

	if (!pool)
		return NULL;
	pool->idle = calloc((size_t)size, sizeof(PGconn *));
	pool->conninfo = strdup(conninfo);
	if (!pool->idle || !pool->conninfo) {
		free(pool->idle);
		free(pool->conninfo);
		free(pool);
		return NULL;
	}
	pool->size = size;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->returned, NULL);
	return pool;
}

void db_pool_free(struct db_pool *pool)
{
	if (!pool)
		return;
	for (int i = 0; i < pool->nidle; i++)
		PQfinish(pool->idle[i]);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->returned);
	free(pool->idle);
	free(pool->conninfo);
	free(pool);
}

/*
 * Whether an idle connection was closed by the server (a restart, a failover,
 * pg_terminate_backend): a healthy idle connection has nothing to read, a closed
 * one has its farewell or the end of the stream. No round trip: one poll().
 */
static int idle_conn_closed(PGconn *conn)
{
	struct pollfd p = { .fd = PQsocket(conn), .events = POLLIN };

	if (p.fd < 0)
		return 1;
	/* the farewell (a FATAL error, which libpq passes to the notice processor) and the end of
	 * the stream may take two reads: libpq sees the end only on a read that returns nothing */
	for (int i = 0; i < 4; i++) {
		if (poll(&p, 1, 0) <= 0)
			break;
		if (!PQconsumeInput(conn))
			return 1;
	}
	return PQstatus(conn) != CONNECTION_OK;
}

PGconn *db_pool_get(struct db_pool *pool, int timeout_ms)
{
	struct timespec deadline;
	PGconn *conn = NULL;
	int make = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&pool->lock);
	for (;;) {
		if (pool->nidle > 0) {
			conn = pool->idle[--pool->nidle];
			break;
		}
		if (pool->created < pool->size) {
			pool->created++;
			make = 1;
			break;
		}
		if (pthread_cond_timedwait(&pool->returned, &pool->lock, &deadline) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&pool->lock);
	if (!conn && !make) {
		log_warn("db pool exhausted: waited_ms=%d size=%d", timeout_ms, pool->size);
		return NULL;
	}
	if (conn && idle_conn_closed(conn)) {
		/* made anew before it is lent: a write on it would fail without knowing whether it ran */
		log_info("db pool: a connection the server closed while idle is made anew");
		PQreset(conn);
		if (PQstatus(conn) != CONNECTION_OK) {
			const char *msg = PQerrorMessage(conn);
			log_warn("db pool: reconnecting failed: %.*s", (int)strcspn(msg, "\n"), msg);
			PQfinish(conn);
			conn = NULL;
			pthread_mutex_lock(&pool->lock);
			pool->created--;
			pthread_cond_signal(&pool->returned);
			pthread_mutex_unlock(&pool->lock);
			return NULL;
		}
	}
	if (make) {
		conn = db_connect(pool->conninfo);
		if (conn && prepared_enable(conn) < 0)
			log_warn("db pool: this connection runs its statements unprepared (no memory)");
		if (!conn) {
			pthread_mutex_lock(&pool->lock);
			pool->created--;
			pthread_cond_signal(&pool->returned);
			pthread_mutex_unlock(&pool->lock);
		}
	}
	return conn;
}

void db_pool_put(struct db_pool *pool, PGconn *conn)
{
	if (!conn)
		return;
	if (PQstatus(conn) != CONNECTION_OK || PQtransactionStatus(conn) != PQTRANS_IDLE) {
		PQfinish(conn);
		conn = NULL;
	}
	pthread_mutex_lock(&pool->lock);
	if (conn)
		pool->idle[pool->nidle++] = conn;
	else
		pool->created--;
	pthread_cond_signal(&pool->returned);
	pthread_mutex_unlock(&pool->lock);
}
