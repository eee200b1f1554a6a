/*
 * lease: how a worker holds a job, the same for replies (mjs.generations) and
 * image and video tasks (mjs.tasks). A claim leases jobs for lease_time; the
 * worker renews the leases of the jobs it holds every lease_time / 3, and only
 * those (one it dropped must lapse for another worker to take); at shutdown it
 * hands them back (lease expired now) so another worker resumes them at once.
 * A job whose lease ran out is claimed again as recovered.
 */
#ifndef MJS_WORKER_LEASE_H
#define MJS_WORKER_LEASE_H

#include <libpq-fe.h>

/* One kind of job: its SQL. Every statement takes $1 the worker's name. */
struct lease_kind {
	const char *what;	/* "generation", "task": for log lines */
	const char *claim;	/* $2 limit, $3 lease seconds: the claim function's rows */
	const char *renew;	/* $2 lease seconds, $3 the ids held: one row per lease renewed, id first */
	const char *hand_back;
};

extern const struct lease_kind LEASE_REPLIES, LEASE_TASKS;

/* Claims up to limit jobs for lease_ms. The rows (caller PQclear()s), or NULL (logged). */
PGresult *lease_claim(PGconn *db, const struct lease_kind *k, const char *worker, int limit, int lease_ms);

/*
 * Renews the leases of ids (a PostgreSQL array literal, buf_array_end) for
 * lease_ms. The rows of the leases renewed (caller PQclear()s), or NULL (logged).
 */
PGresult *lease_renew(PGconn *db, const struct lease_kind *k, const char *worker, const char *ids, int lease_ms);

/* The row of res whose first column is id, or -1: a job not renewed is no longer ours. */
int lease_row(const PGresult *res, const char *id);

/* Hands every job of this worker back now. Returns 0 or -1 (logged). */
int lease_hand_back(PGconn *db, const struct lease_kind *k, const char *worker);

#endif
