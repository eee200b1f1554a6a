/*
 * janitor: the worker's cleanup, on a database connection of its own so that
 * no flush waits for it (PgBouncer's janitor.c keeps its pool the same way):
 *   - the chunks of finished replies (mjs.drop_chunks), in batches of at most
 *     JANITOR_DROP_ROWS chunks, at most every JANITOR_DROPS_EVERY_MS: one
 *     reply's chunks lie one per page across the table, so deleting them is
 *     page writes the flush must not wait for, and replies that end together
 *     must not turn into one big delete while the rest still stream. The chunks
 *     are invisible meanwhile (mjs.message_text ignores them);
 *   - after each connect, the chunks a stopped worker left (mjs.sweep_chunks);
 *   - every minute, expired sessions (a batch of 1,000; again after a second
 *     while batches come back full) and failed logins a day old.
 * One statement in flight at a time, sent without waiting; its answer is
 * taken when the socket turns readable. A lost connection is opened again a
 * second later; a failed batch is tried again.
 */
#ifndef MJS_WORKER_JANITOR_H
#define MJS_WORKER_JANITOR_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

#define JANITOR_DROP_ROWS 5000
#define JANITOR_DROPS_EVERY_MS 250

struct janitor_drop {
	char id[37];
	int rows;		/* its chunks, as the worker counted its flushes */
};

enum janitor_job { JANITOR_IDLE, JANITOR_SWEEP, JANITOR_DROPS, JANITOR_SESSIONS, JANITOR_LOGINS };

struct janitor {
	const struct config *cfg;
	PGconn *db;
	enum janitor_job sending;	/* the statement in flight */
	int swept;			/* the sweep ran on this connection */
	struct janitor_drop *drops;	/* finished replies whose chunks are still to delete */
	size_t len, cap;
	size_t drops_sending;		/* the first ones are in the delete in flight */
	int64_t retry_at, drops_due, housekeeping_due;
};

void janitor_init(struct janitor *j, const struct config *cfg, int64_t now);

/* A reply's final status is stored: its chunk_rows chunks can go. */
void janitor_finished(struct janitor *j, const char *message_id, int chunk_rows);

/* One turn from the worker loop: takes an answer that has come, sends what is due. */
void janitor_tick(struct janitor *j, int64_t now);

/* The socket to wait on while a statement is in flight, else -1. */
int janitor_fd(const struct janitor *j);

/* When janitor_tick wants to run again (monotonic ms). */
int64_t janitor_next_due(const struct janitor *j);

/*
 * Shutdown: takes the answer in flight and deletes the chunks still listed,
 * on its connection, or on db when it has none; then closes and frees.
 */
void janitor_close(struct janitor *j, PGconn *db);

#endif
