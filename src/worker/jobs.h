/*
 * jobs: the worker's side of the generations table: claim (with leases), the
 * per-tick flush of every running generation in one transaction, lease renewal,
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
 * rule) and no request to start. Returns the number claimed, or -1.
 */
int jobs_claim(PGconn *db, const struct config *cfg, const char *worker, int limit, struct gen **list);

/*
 * Writes every dirty gen of list in one transaction (mjs.flush_generations).
 * On success clears what was written; gens whose message is gone get g->final
 * and g->stop set so the caller drops them. Returns 0, or -1 (nothing written:
 * the same text goes out with the next flush).
 */
int jobs_flush(PGconn *db, struct gen *list);

/*
 * Renews the leases of list; marks gens whose job was stopped (stop) or taken
 * away / deleted (final, nothing to write). Returns 0 or -1.
 */
int jobs_renew(PGconn *db, const struct config *cfg, const char *worker, struct gen *list);

/* Gives this worker's running jobs back at once (lease expired now). */
int jobs_hand_back(PGconn *db, const char *worker);

#endif
