/*
 * jobs: the worker's side of the generations table: claim (with leases), the
 * per-tick flush of every running generation in one transaction (sent without
 * waiting, so the loop keeps reading the upstreams while it commits), lease renewal,
 * and handing jobs back on shutdown.
 */
#ifndef MJS_JOBS_H
#define MJS_JOBS_H

#include <libpq-fe.h>

#include "common/config.h"
#include "worker/gen.h"

#define JOBS_WORK_CHANNEL "mjs_work"
#define JOBS_STOP_CHANNEL "mjs_stop"

/*
 * Claims up to limit jobs. New gens are prepended to *list; a recovered or
 * stopped job comes back with its final status already set (per the recovery
 * rule) and no request to start. A job of held (the gens this worker runs) is
 * never taken twice: its row is the worker's again, and it goes on as it was.
 * Returns the number claimed, or -1. Renew the leases of held first
 * (jobs_renew), or a job whose lease ran out here would come back as abandoned.
 */
int jobs_claim(PGconn *db, const struct config *cfg, const char *worker, int limit, struct gen *held,
	       struct gen **list);

/*
 * Messages whose final status is written and whose chunks are still to be
 * deleted. The worker deletes them on a second connection, outside the flush,
 * in batches of at most JOBS_DROP_ROWS chunks (at least one message): one
 * reply's chunks lie one per page across the table, so deleting them is page
 * writes the flush should not wait for (sql/functions/drop_chunks.sql), and replies that end
 * together must not turn into one big delete while the rest still stream.
 */
#define JOBS_DROP_ROWS 5000
struct jobs_drop {
	char id[37];
	int rows;		/* its chunks, as the worker counted its flushes */
};
struct jobs_drops {
	struct jobs_drop *items;
	size_t len, cap;
	size_t sending;		/* the first sending items are in the delete in flight */
};

void jobs_drops_free(struct jobs_drops *d);

/* Sends the delete of the first items of d (up to JOBS_DROP_ROWS chunks) on aux without waiting. Returns 1 when sent, 0 when d is empty, -1. */
int jobs_drops_send(PGconn *aux, struct jobs_drops *d);

/*
 * Takes the answer of the delete in flight (after PQconsumeInput, or blocking
 * with wait): 0 while it has not arrived, 1 done (those items leave d), -1 failed
 * (they stay for the next try).
 */
int jobs_drops_finish(PGconn *aux, struct jobs_drops *d, int wait);

/*
 * A final status costs the flush its whole text (stored, and sent to every
 * tab in its event): past this many in one flush the others wait for the next
 * one (their text still goes now), so replies that end together never hold up
 * the tokens of the rest.
 */
#define JOBS_FINALS_MAX 4

/*
 * Sends the flush of every dirty gen of list (mjs.flush_generations, one
 * transaction) and returns without waiting for the answer: text keeps arriving
 * into the gens meanwhile. Each gen remembers what the flush carries
 * (in_flush). Returns 1 when a flush is in flight, 0 when nothing was dirty,
 * -1 on failure (nothing in flight; the same text goes out with the next
 * flush). While a flush is in flight the connection runs nothing else.
 * With only, the flush carries that gen alone; with skip_suspects, every dirty
 * gen but the suspects (finding the one whose news is refused, see main.c).
 */
int jobs_flush_start(PGconn *db, struct gen *list, const struct gen *only, int skip_suspects);

/*
 * Takes the answer of the flush in flight (call after PQconsumeInput). Returns 0
 * while it has not arrived (never with wait, which blocks for it); 1 when it was
 * written: what it carried leaves the gens, gens whose message is gone get
 * g->final and g->stop set so the caller drops them, gens that reached a final
 * status join drops; -1 when it failed: the gens keep their text for the next
 * flush; -2 the same when the database refused the data itself
 * (db_data_refused: one gen's news cannot be stored, see main.c).
 */
int jobs_flush_finish(PGconn *db, struct gen *list, struct jobs_drops *drops, int wait);

/* Forgets the flush in flight (connection lost): its text is sent again. */
void jobs_flush_forget(struct gen *list);

/* jobs_flush_start + jobs_flush_finish(wait). Returns 0 (also when nothing was dirty) or -1. */
int jobs_flush(PGconn *db, struct gen *list, struct jobs_drops *drops);

/* Deletes chunks of finished messages that a stopped worker left; returns 0 or -1. */
int jobs_sweep_chunks(PGconn *db);

/*
 * Renews the leases of list; marks gens whose job was stopped (stop) or taken
 * away / deleted (final, nothing to write). Returns 0 or -1.
 */
int jobs_renew(PGconn *db, const struct config *cfg, const char *worker, struct gen *list);

/* Gives this worker's running jobs back at once (lease expired now). */
int jobs_hand_back(PGconn *db, const char *worker);

#endif
