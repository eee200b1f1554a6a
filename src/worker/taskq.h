/*
 * taskq: the image and video task queue of mjs-worker. One scheduler runs
 * every task this worker holds inside the worker's one loop, on the worker's
 * curl multi handle (no thread or process per task): it claims open tasks with
 * leases, submits each once, polls the upstream every task_poll_interval (with
 * backoff while the upstream fails), and writes every task with news in one
 * transaction per tick (mjs.update_tasks, which emits task.updated only for a
 * visible change). A task taken over from a dead worker is polled under its
 * stored upstream id, never submitted again.
 */
#ifndef MJS_WORKER_TASKQ_H
#define MJS_WORKER_TASKQ_H

#include <curl/curl.h>
#include <libpq-fe.h>
#include <stdint.h>

#include "common/config.h"
#include "worker/transfer.h"

struct taskq;

/* A scheduler adding its transfers to multi; worker names this worker in leases. */
struct taskq *taskq_new(const struct config *cfg, CURLM *multi, const char *worker);
void taskq_free(struct taskq *s);

/*
 * One turn of the scheduler, from the worker loop: claims (when woken by
 * mjs_work, or every second; never while stopping), fails tasks past
 * task_deadline or the upstream grace, starts due submits and polls, writes the
 * news, renews leases. db may be NULL (no connection): only timers run.
 */
void taskq_tick(struct taskq *s, PGconn *db, int64_t now, int woken, int stopping);

/*
 * The database connection was lost and is back: the leases of the tasks held
 * may have run out meanwhile, so the next tick renews them before it claims.
 */
void taskq_reconnected(struct taskq *s);

/* The monotonic time (ms) by which taskq_tick wants to run again. */
int64_t taskq_next_due(const struct taskq *s);

/* A transfer of the scheduler (TRANSFER_TASK, transfer.h) ended with result. */
void taskq_transfer_done(struct taskq *s, struct transfer *transfer, CURLcode result);

/* Shutdown: aborts transfers, writes what is known, hands the tasks back at once. */
void taskq_shutdown(struct taskq *s, PGconn *db);

#endif
