/*
 * jobs: the database side of replies: claim (with leases, lease.h), the
 * per-tick flush of every running generation in one transaction (built by
 * gen.c, sent without waiting, so the loop keeps reading the upstreams while it
 * commits), lease renewal, and handing jobs back on shutdown.
 */
#ifndef MJS_WORKER_JOBS_H
#define MJS_WORKER_JOBS_H

#include <libpq-fe.h>

#include "common/config.h"
#include "worker/gen.h"
#include "worker/janitor.h"

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
 * Sends the flush of every dirty gen of list (gen_flush_batch into
 * mjs.flush_generations, one transaction) and returns without waiting for the
 * answer: text keeps arriving into the gens meanwhile. Returns 1 when a flush
 * is in flight, 0 when nothing was dirty, -1 on failure (nothing in flight; the
 * same text goes out with the next flush). While a flush is in flight the
 * connection runs nothing else. only and skip_suspects: see gen_flush_batch
 * (finding the one gen whose news is refused, see main.c).
 */
int jobs_flush_start(PGconn *db, struct gen *list, const struct gen *only, int skip_suspects);

/*
 * Takes the answer of the flush in flight (call after PQconsumeInput). Returns 0
 * while it has not arrived (never with wait, which blocks for it); 1 when it was
 * written: what it carried leaves the gens, gens whose message is gone get
 * g->final and g->stop set so the caller drops them, gens that reached a final
 * status go to the janitor (their chunks); -1 when it failed: the gens keep their
 * text for the next flush; -2 the same when the database refused the data itself
 * (db_data_refused: one gen's news cannot be stored, see main.c).
 */
int jobs_flush_finish(PGconn *db, struct gen *list, struct janitor *janitor, int wait);

/* jobs_flush_start + jobs_flush_finish(wait). Returns 0 (also when nothing was dirty) or -1. */
int jobs_flush(PGconn *db, struct gen *list, struct janitor *janitor);

/*
 * Renews the leases of list; marks gens whose job was stopped (stop) or taken
 * away / deleted (final, nothing to write). Returns 0 or -1.
 */
int jobs_renew(PGconn *db, const struct config *cfg, const char *worker, struct gen *list);

/*
 * After a reconnect, before the next flush: reads how much of each gen's text
 * the database holds and rewinds the gens that lost commits (gen_rewind: a
 * failover to a standby that had not received them). Returns 0 or -1.
 */
int jobs_resync(PGconn *db, struct gen *list);

/* Gives this worker's running jobs back at once (lease expired now). */
int jobs_hand_back(PGconn *db, const char *worker);

#endif
