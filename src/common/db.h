/*
 * db: libpq helpers. Every statement goes through db_exec() with $n parameters
 * (text format); there is no way here to run SQL built from values.
 * struct db_pool is a small fixed pool of connections shared by threads.
 */
#ifndef MJS_COMMON_DB_H
#define MJS_COMMON_DB_H

#include <libpq-fe.h>

/* Connects; logs and returns NULL on failure. */
PGconn *db_connect(const char *conninfo);

/* The same, named name in pg_stat_activity unless the conninfo names it (application_name). */
PGconn *db_connect_as(const char *conninfo, const char *name);

/*
 * Runs sql with nparams text parameters (NULL entries are SQL NULL). Returns the
 * result (caller PQclear()s) when it is COMMAND_OK or TUPLES_OK; otherwise logs the
 * error with the statement's first words and returns NULL.
 */
PGresult *db_exec(PGconn *conn, const char *sql, int nparams, const char *const *params);

/*
 * db_exec, and on failure the SQLSTATE in sqlstate (6 bytes; "" when none, as
 * for a lost connection).
 */
PGresult *db_exec_state(PGconn *conn, const char *sql, int nparams, const char *const *params, char *sqlstate);

/*
 * Is sqlstate a refusal of the data itself (class 22 data exception, 23
 * integrity constraint violation), which the same statement would meet again,
 * rather than something passing (a deadlock, a timeout, a failover)?
 */
int db_data_refused(const char *sqlstate);

/*
 * Sends sql as db_exec would run it, without waiting for the answer (the
 * connection is free again once db_collect has taken it). Returns 0, or -1
 * (logged).
 */
int db_send(PGconn *conn, const char *sql, int nparams, const char *const *params);

/*
 * Takes the answer of what db_send sent (call after PQconsumeInput; with wait,
 * blocks for it). Returns 0 while it has not arrived (never with wait); 1 with
 * the result in *out when out is not NULL (caller PQclear()s); -1 when it
 * failed: logged with sql's first words, and sqlstate (6 bytes, or NULL) set
 * as db_exec_state sets it.
 */
int db_collect(PGconn *conn, const char *sql, int wait, PGresult **out, char *sqlstate);

/*
 * Runs guard, then sql, in one round trip and one transaction (libpq's pipeline
 * mode, one sync): sql runs only when guard succeeds, and nothing of either stays
 * when one fails. sql may be NULL: guard alone, its refusal told apart as below.
 * Returns 0 with both results (caller PQclear()s them); -1 when
 * guard failed, with its SQLSTATE in guard_state (6 bytes; not logged: what a
 * refusal means is the caller's); -2 when sql or the connection failed (logged,
 * sqlstate set as db_exec_state sets it).
 */
int db_exec_guarded(PGconn *conn, const char *guard, int gn, const char *const *gparams, const char *sql, int n,
		    const char *const *params, PGresult **guard_res, PGresult **res, char *guard_state, char *sqlstate);

/* Runs a statement for its effect only. Returns 0 or -1 (logged). */
int db_command(PGconn *conn, const char *sql, int nparams, const char *const *params);

struct db_pool;

/* Creates a pool of size connections (connected lazily). */
struct db_pool *db_pool_new(const char *conninfo, int size);
void db_pool_free(struct db_pool *pool);

/*
 * Takes a healthy connection, waiting up to timeout_ms for one to be returned.
 * Returns NULL (logged) when none can be had: the database is down or the pool is
 * exhausted for that long.
 */
PGconn *db_pool_get(struct db_pool *pool, int timeout_ms);
/* Returns a connection; a broken one is closed and reconnected on its next use. */
void db_pool_put(struct db_pool *pool, PGconn *conn);

#endif
