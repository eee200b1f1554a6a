/*
 * retention: the worker keeps mjs.events (and the finished job rows) bounded
 * by itself, on a connection of its own so that no flush ever waits for it.
 * The rule lives in SQL (sql/functions/retain.sql); this module runs it: one
 * bounded run every RETENTION_EVERY_MS, every second while runs come back
 * full, the general part (old events, old jobs) every RETENTION_GENERAL_MS.
 * Workers take turns through an advisory lock; a run is sent and its answer
 * collected without blocking the worker's loop.
 */
#ifndef MJS_WORKER_RETENTION_H
#define MJS_WORKER_RETENTION_H

#include <libpq-fe.h>
#include <stdint.h>

#include "common/config.h"

struct retention {
	const struct config *cfg;
	PGconn *db;
	int sending;		/* a run is in flight */
	int general;		/* ... and it includes the general part */
	int64_t due;		/* monotonic ms of the next run */
	int64_t general_due;
};

void retention_init(struct retention *r, const struct config *cfg, int64_t now);

/* Sends the next run when due, or takes the answer of the one in flight. */
void retention_tick(struct retention *r, int64_t now);

/* Waits for a run in flight (bounded by the statement) and closes the connection. */
void retention_close(struct retention *r);

#endif
