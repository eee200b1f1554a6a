/*
 * db: connections, parameterized statements and the REST connection pool.
 * The pool hands out connections under one mutex; a connection found broken
 * when it comes back is dropped and a fresh one is made when next needed, so a
 * database restart heals without restarting the responders.
 */
#include "common/db.h"
#include "common/log.h"

#include <errno.h>
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

PGconn *db_connect(const char *conninfo)
{
	PGconn *conn = PQconnectdb(conninfo);

	if (PQstatus(conn) != CONNECTION_OK) {
		char *msg = PQerrorMessage(conn);
		size_t n = strlen(msg);
		while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
			n--;
		log_error("db connect failed: %.*s", (int)n, msg);
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

PGresult *db_exec_state(PGconn *conn, const char *sql, int nparams, const char *const *params, char *sqlstate)
{
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);

	if (sqlstate)
		sqlstate[0] = '\0';
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
	if (make) {
		conn = db_connect(pool->conninfo);
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
