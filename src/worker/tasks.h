/*
 * tasks: the image and video task scheduler of mjs-worker. One scheduler runs
 * every task this worker holds inside the worker's one loop, on the worker's
 * curl multi handle (no thread or process per task): it claims open tasks with
 * leases, submits each once, polls the upstream every task_poll_interval (with
 * backoff while the upstream fails), and writes every task with news in one
 * transaction per tick (mjs.update_tasks, which emits task.updated only for a
 * visible change). A task taken over from a dead worker is polled under its
 * stored upstream id, never submitted again.
 */
#ifndef MJS_TASKS_H
#define MJS_TASKS_H

#include <curl/curl.h>
#include <libpq-fe.h>
#include <stdint.h>

#include "common/config.h"

struct task_sched;

/* A scheduler adding its transfers to multi; worker names this worker in leases. */
struct task_sched *tasks_sched_new(const struct config *cfg, CURLM *multi, const char *worker);
void tasks_sched_free(struct task_sched *s);

/*
 * One turn of the scheduler, from the worker loop: claims (when woken by
 * mjs_work, or every second; never while stopping), fails tasks past
 * task_deadline or the upstream grace, starts due submits and polls, writes the
 * news, renews leases. db may be NULL (no connection): only timers run.
 */
void tasks_tick(struct task_sched *s, PGconn *db, int64_t now, int woken, int stopping);

/*
 * The database connection was lost and is back: the leases of the tasks held
 * may have run out meanwhile, so the next tick renews them before it claims.
 */
void tasks_reconnected(struct task_sched *s);

/* The monotonic time (ms) by which tasks_tick wants to run again. */
int64_t tasks_next_due(const struct task_sched *s);

/*
 * A transfer of multi ended: returns 1 when it was one of the scheduler's (and
 * handles it), 0 when it belongs to someone else.
 */
int tasks_transfer_done(struct task_sched *s, CURL *easy, CURLcode result);

/* Shutdown: aborts transfers, writes what is known, hands the tasks back at once. */
void tasks_shutdown(struct task_sched *s, PGconn *db);

#endif
