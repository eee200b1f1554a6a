/*
 * mjs-worker: runs AI replies independent of any browser. One thread, one loop:
 * curl multi pumps every upstream stream; the LISTEN connection (mjs_work,
 * mjs_stop) wakes it. The text and status changes of all running generations
 * go to PostgreSQL in one transaction, the flush, paced as a database paces
 * group commit (pace.h): one starts as soon as there is news and none is in
 * flight, at least flush_min_interval after the previous one started, so a
 * token at light load waits for no tick, and under load the flush in flight
 * batches the next, so commits per second stay bounded however many tokens
 * arrive. The flush is sent without waiting: the loop keeps reading the
 * upstreams while PostgreSQL commits, and takes the answer when the database
 * socket turns readable. While a flush is in flight the connection runs
 * nothing else (claims and renewals wait for it).
 * SIGTERM/SIGINT: stop claiming, let running replies finish for shutdown_grace,
 * then flush what arrived and hand the rest back (another worker resumes them
 * per the recovery rule). SIGHUP: re-read the config file and apply log_level
 * (other keys need a restart).
 */
#include "config.h"
#include "common/config.h"
#include "common/db.h"
#include "common/log.h"
#include "worker/chat.h"
#include "worker/janitor.h"
#include "worker/jobs.h"
#include "worker/pace.h"
#include "worker/retention.h"
#include "worker/taskq.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLAIM_POLL_MS 1000
#define DB_RETRY_MS 1000
#define FINISHED_CLAIM_MS 50	/* a claim after replies finished waits this long for more to finish */

static volatile sig_atomic_t stop_signal, hup_signal;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		hup_signal = 1;
	else
		stop_signal = sig;
}

struct worker {
	const struct config *cfg;
	char name[128];
	CURLM *multi;
	PGconn *db;
	struct gen *gens;
	struct taskq *tasks;	/* image and video tasks (taskq.c) */
	struct janitor janitor;		/* finished replies' chunks, expired sessions: a connection of its own */
	struct retention retention;	/* old events, on a connection of its own */
	int running;		/* gens in the list */
	int want_claim;		/* claim replies now (a new one was queued, or a reconnect) */
	int leases_unsure;	/* reconnected: renew the leases of the gens held before any claim */
	/* the database refused a flush's data: finding the gen (flush_refused) */
	int isolating;
	int isolate_turn;	/* alternates: a suspect alone, then the others */
	char isolating_id[37];	/* the gen the flush in flight carries alone, or "" */
	int want_tasks;		/* claim tasks now */
	int flushing;		/* a flush is in flight on db */
	struct pace pace;	/* when the next flush starts and the upstreams are read */
	int64_t next_claim, next_renew, db_retry_at, last_read;
	const char *config_path;	/* re-read on SIGHUP */
	int config_must_exist;
};

static void log_end(struct gen *g, const char *status)
{
	int64_t now = util_now_ms();

	log_info("generation end id=%s user=%s status=%s chunks=%ld chars=%ld ms=%lld first_token_ms=%lld%s%s%s",
		 g->id, g->user_id, status, g->chunks, g->content_chars,
		 (long long)(g->start_ms ? now - g->start_ms : 0),
		 (long long)(g->first_token_ms ? g->first_token_ms - g->start_ms : -1),
		 g->error[0] ? " error=\"" : "", g->error, g->error[0] ? "\"" : "");
}

static void db_lost(struct worker *w)
{
	log_warn("worker lost its database connection; reconnecting");
	if (w->flushing)
		gen_flush_forget(w->gens);	/* not known to be written: send it again */
	w->flushing = 0;
	PQfinish(w->db);
	w->db = NULL;
	w->db_retry_at = util_now_ms() + DB_RETRY_MS;
}

static int db_ensure(struct worker *w)
{
	if (w->db)
		return 0;
	if (util_now_ms() < w->db_retry_at)
		return -1;
	w->db = db_connect(w->cfg->database);
	if (!w->db || db_command(w->db, "LISTEN " JOBS_WORK_CHANNEL, 0, NULL) < 0 ||
	    db_command(w->db, "LISTEN " JOBS_STOP_CHANNEL, 0, NULL) < 0) {
		PQfinish(w->db);
		w->db = NULL;
		w->db_retry_at = util_now_ms() + DB_RETRY_MS;
		return -1;
	}
	if (jobs_resync(w->db, w->gens) < 0) {	/* commits may have been lost (a failover) */
		PQfinish(w->db);
		w->db = NULL;
		w->db_retry_at = util_now_ms() + DB_RETRY_MS;
		return -1;
	}
	w->want_claim = w->want_tasks = 1;
	w->leases_unsure = 1;		/* they may have run out while the database was away */
	w->next_renew = 0;		/* so renew first, now */
	taskq_reconnected(w->tasks);
	return 0;
}

static void claim(struct worker *w)
{
	struct gen *fresh = NULL;
	int room = w->cfg->max_generations - w->running;

	w->want_claim = 0;
	w->next_claim = util_now_ms() + CLAIM_POLL_MS;
	if (room <= 0 || stop_signal)
		return;
	if (jobs_claim(w->db, w->cfg, w->name, room, w->gens, &fresh) < 0) {
		if (PQstatus(w->db) != CONNECTION_OK)
			db_lost(w);
		return;
	}
	if (chat_prepare(w->db, w->cfg, fresh) < 0 && PQstatus(w->db) != CONNECTION_OK)
		db_lost(w);
	while (fresh) {
		struct gen *g = fresh;
		fresh = g->next;
		g->next = w->gens;
		w->gens = g;
		w->running++;
		if (g->final)
			continue;	/* recovered as stopped or failed: just flush it */
		log_info("generation start id=%s user=%s model=%s upstream=%s attempt=%d", g->id, g->user_id, g->model,
			 g->upstream ? g->upstream : "-", g->attempt);
		chat_start(w->multi, w->cfg, g);	/* no body (the query failed): fails the reply */
	}
}

static void handle_notifications(struct worker *w)
{
	PGnotify *n;

	if (!w->db)
		return;
	if (!PQconsumeInput(w->db)) {
		db_lost(w);
		return;
	}
	while ((n = PQnotifies(w->db)) != NULL) {
		if (!strcmp(n->relname, JOBS_STOP_CHANNEL)) {
			for (struct gen *g = w->gens; g; g = g->next)
				if (!strcmp(g->id, n->extra))
					g->stop = 1;
		} else if (!strcmp(n->extra, "task")) {
			w->want_tasks = 1;	/* a new or retried image/video task */
		} else {
			w->want_claim = 1;
		}
		PQfreemem(n);
	}
}

static void collect_done(struct worker *w)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(w->multi, &left)) != NULL) {
		struct transfer *t = NULL;
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
		if (!t)
			continue;
		if (t->kind == TRANSFER_TASK)
			taskq_transfer_done(w->tasks, t, msg->data.result);
		else
			chat_done(w->multi, TRANSFER_OWNER(t, struct gen, transfer), msg->data.result);
	}
}

/* Stops, first-token and idle timeouts: decided here, written at the next flush. */
static void check_gens(struct worker *w, int64_t now)
{
	for (struct gen *g = w->gens; g; g = g->next) {
		if (g->final)
			continue;
		if (g->stop) {
			chat_abort(w->multi, g);
			chat_take_text(g);
			gen_set_status(g, "stopped", NULL);
		} else if (g->cut) {
			chat_abort(w->multi, g);
			chat_set_cut(g);
		} else if (g->easy && now - g->start_ms > w->cfg->reply_max_duration_ms) {
			char msg[160];
			chat_abort(w->multi, g);
			chat_take_text(g);
			snprintf(msg, sizeof(msg), "cut: the reply ran for reply_max_duration (%d s)",
				 w->cfg->reply_max_duration_ms / 1000);
			snprintf(g->finish_reason, sizeof(g->finish_reason), "length");
			gen_set_status(g, "completed", msg);
		} else if (g->easy && !g->first_token_ms && now - g->start_ms > w->cfg->first_token_timeout_ms) {
			chat_abort(w->multi, g);
			gen_set_status(g, "failed", "the upstream sent no token in time (first_token_timeout)");
		} else if (g->easy && g->first_token_ms && now - g->last_data_ms > w->cfg->idle_timeout_ms) {
			chat_abort(w->multi, g);
			gen_set_status(g, "failed", "the upstream stalled mid-reply (idle_timeout); the text so far is kept");
		} else if (g->pending.len + g->pending_reasoning.len >= w->cfg->flush_max_bytes) {
			pace_urgent(&w->pace);	/* a big buffer goes out without waiting for the gap */
		}
	}
}

/* Finished gens leave the list once their final status is written. */
static void drop_finished(struct worker *w)
{
	struct gen **pp;

	for (pp = &w->gens; *pp;) {
		struct gen *g = *pp;
		if (g->final && !g->dirty) {
			chat_abort(w->multi, g);
			log_end(g, g->db_status ? g->db_status : "dropped");
			*pp = g->next;
			gen_free(g);
			w->running--;
			/* room for a queued reply: claim soon, once for a burst of finished ones */
			if (w->next_claim > util_now_ms() + FINISHED_CLAIM_MS)
				w->next_claim = util_now_ms() + FINISHED_CLAIM_MS;
		} else {
			pp = &g->next;
		}
	}
}

/* While isolating: the next suspect with something to write, or NULL. */
static struct gen *next_suspect(struct worker *w)
{
	for (struct gen *g = w->gens; g; g = g->next)
		if (g->dirty && g->suspect)
			return g;
	return NULL;
}

/*
 * The database refused a flush's data (db_data_refused; a passing failure is
 * just retried): one gen's news cannot be stored, and one bad reply must never
 * stop every other. Every gen with news becomes a suspect, and the flushes
 * alternate between one suspect alone and every other gen together, so no
 * reply waits longer than two flushes. A suspect written alone is cleared;
 * one refused alone loses its unwritten text and is failed with a reason of
 * ours; refused again, it is dropped (its lease lapses for another worker).
 */
static void flush_refused(struct worker *w)
{
	struct gen *g;

	if (!w->isolating_id[0]) {
		if (!w->isolating)
			log_warn("flush refused by the database; writing each reply with news alone once to find "
				 "the one that cannot be stored");
		w->isolating = 1;
		for (g = w->gens; g; g = g->next)
			if (g->dirty)
				g->suspect = 1;
		return;
	}
	g = gen_find(w->gens, w->isolating_id);
	if (!g)
		return;
	if (++g->write_failures == 1) {
		log_error("generation refused id=%s reason=\"its news cannot be stored; failing it\"", g->id);
		chat_abort(w->multi, g);
		buf_reset(&g->pending);
		g->pending_chars = 0;
		buf_reset(&g->pending_reasoning);
		g->pending_rchars = 0;
		g->whole = 0;
		buf_free(&g->text);
		g->cut = 0;
		gen_set_status(g, "failed", "the reply could not be stored; the text written before is kept");
	} else {
		log_error("generation dropped id=%s reason=\"not even its failure could be stored\"", g->id);
		chat_abort(w->multi, g);
		g->final = 1;
		g->dirty = 0;
		g->suspect = 0;
	}
}

/* When the next flush starts (pace.h): now, later, or PACE_NEVER. */
static int64_t flush_at(struct worker *w, int64_t now)
{
	int news = 0;

	if (!w->db)
		return PACE_NEVER;
	for (struct gen *g = w->gens; g && !news; g = g->next)
		news = g->dirty;
	return pace_next_flush(&w->pace, w->flushing, news, now);
}

/* Sends the flush of every gen with news; the next one waits for its answer. */
static void flush_start(struct worker *w, int64_t now)
{
	struct gen *only = NULL;
	int rc, skip = 0;

	if (w->flushing)
		return;		/* the next flush goes out when this one is answered */
	pace_started(&w->pace, now);	/* also when nothing goes out: tried again after the gap */
	w->isolating_id[0] = '\0';
	if (w->isolating) {
		if (!next_suspect(w)) {
			for (struct gen *g = w->gens; g; g = g->next)
				g->suspect = 0;
			w->isolating = 0;
			log_info("flush: every suspect reply was written alone; back to one flush for all");
		} else if ((w->isolate_turn ^= 1) != 0) {
			only = next_suspect(w);
			snprintf(w->isolating_id, sizeof(w->isolating_id), "%s", only->id);
		} else {
			skip = 1;
		}
	}
	rc = jobs_flush_start(w->db, w->gens, only, skip);
	if (rc > 0)
		w->flushing = 1;
	else if (rc == 0)
		drop_finished(w);
	else if (PQstatus(w->db) != CONNECTION_OK)
		db_lost(w);
	else
		pace_failed(&w->pace);
}

/* Takes the flush's answer once it has arrived (after PQconsumeInput). */
static void flush_collect(struct worker *w)
{
	int rc;

	if (!w->flushing)
		return;
	rc = jobs_flush_finish(w->db, w->gens, &w->janitor, 0);
	if (rc == 0)
		return;
	w->flushing = 0;
	if (rc > 0) {
		struct gen *g;
		if (w->isolating_id[0] && (g = gen_find(w->gens, w->isolating_id)) != NULL)
			g->suspect = 0;
		drop_finished(w);
	} else if (PQstatus(w->db) != CONNECTION_OK) {
		db_lost(w);
	} else if (rc == -2) {
		flush_refused(w);	/* the next flushes find the reply, at the usual pace */
	} else {
		pace_failed(&w->pace);	/* a passing failure: the same news goes again after flush_interval */
	}
}

/* Takes in what the upstreams sent (curl_multi_perform reads every transfer). */
static void read_upstream(struct worker *w)
{
	int still;

	curl_multi_perform(w->multi, &still);
	collect_done(w);
	w->last_read = util_now_ms();
}

static int next_timeout(struct worker *w, int64_t now)
{
	int64_t t = w->next_claim, due;

	if (w->next_renew < t && !w->flushing)
		t = w->next_renew;
	/* while a flush is in flight its answer on the database socket wakes the loop */
	due = flush_at(w, now);
	if (due < t)
		t = due;
	for (struct gen *g = w->gens; g; g = g->next) {
		if (!g->easy || g->final)
			continue;
		/* wake for the first-token or idle timeout itself, not up to a second later */
		due = g->first_token_ms ? g->last_data_ms + w->cfg->idle_timeout_ms + 1
					: g->start_ms + w->cfg->first_token_timeout_ms + 1;
		if (due < t)
			t = due;
	}
	due = janitor_next_due(&w->janitor);
	if (due < t)
		t = due;
	due = taskq_next_due(w->tasks);
	if (due < t)
		t = due;
	if (((w->want_claim && !w->leases_unsure) || w->want_tasks) && !w->flushing)
		t = now;
	t -= now;
	return t < 0 ? 0 : t > 1000 ? 1000 : (int)t;
}

static void run(struct worker *w)
{
	int64_t deadline = 0;

	for (;;) {
		int64_t now = util_now_ms();
		struct curl_waitfd extra[2] = { { 0 } };
		struct pollfd pfd[2];
		int nextra = 0, timeout, read = 0;
		int flush_due;
		int64_t read_at;

		if (db_ensure(w) == 0) {
			extra[nextra].fd = PQsocket(w->db);
			extra[nextra++].events = CURL_WAIT_POLLIN;
		}
		if (janitor_fd(&w->janitor) >= 0) {
			extra[nextra].fd = janitor_fd(&w->janitor);
			extra[nextra++].events = CURL_WAIT_POLLIN;
		}
		timeout = next_timeout(w, now);
		flush_due = flush_at(w, now) <= now;
		read_at = pace_next_read(&w->pace, w->flushing, w->last_read);
		if (flush_due || now >= read_at) {
			/* idle: the first packet wakes the loop, and its token goes out at once */
			curl_multi_poll(w->multi, extra, (unsigned)nextra, flush_due ? 0 : timeout, NULL);
			read_upstream(w);
			read = 1;
		} else {
			/* between reads only the database (flush answers, notifications) wakes the loop */
			int wait = (int)(read_at - now);

			for (int i = 0; i < nextra; i++)
				pfd[i] = (struct pollfd){ .fd = extra[i].fd, .events = POLLIN };
			poll(pfd, (nfds_t)nextra, timeout < wait ? timeout : wait);
		}
		handle_notifications(w);
		if (w->db)
			flush_collect(w);
		now = util_now_ms();
		check_gens(w, now);
		/* the task scheduler's writes wait while a flush holds the connection */
		taskq_tick(w->tasks, w->flushing ? NULL : w->db, now, w->want_tasks, stop_signal != 0);
		if (!w->flushing)
			w->want_tasks = 0;
		/* renew before claiming: after an outage, a job of ours must not look abandoned */
		if (w->db && !w->flushing && now >= w->next_renew) {
			w->next_renew = now + w->cfg->lease_time_ms / 3;
			if (!w->gens || jobs_renew(w->db, w->cfg, w->name, w->gens) == 0)
				w->leases_unsure = 0;
			else if (PQstatus(w->db) != CONNECTION_OK)
				db_lost(w);
			else
				w->next_renew = now + 1000;	/* a failing query: again in a second, not every turn */
		}
		if (w->db && !w->flushing && !w->leases_unsure && !stop_signal &&
		    (w->want_claim || now >= w->next_claim))
			claim(w);
		if (hup_signal) {
			hup_signal = 0;
			config_reload_log_level(w->config_path, w->config_must_exist);
		}
		if (flush_at(w, now) <= now) {
			/* woken for the flush (a gap over, an answer in): what arrived meanwhile goes too */
			if (!read)
				read_upstream(w);
			flush_start(w, now);
		} else if (!w->flushing) {
			drop_finished(w);	/* ended with nothing to write (lease lost, dropped): leave now */
		}
		janitor_tick(&w->janitor, now);
		if (!stop_signal)
			retention_tick(&w->retention, now);
		if (stop_signal) {
			if (!deadline) {
				deadline = now + w->cfg->shutdown_grace_ms;
				log_info("mjs-worker stopping running=%d grace_ms=%d", w->running,
					 w->cfg->shutdown_grace_ms);
			}
			if (!w->gens)
				break;
			if (now >= deadline)
				break;
		}
	}
	/* out of time: write what arrived, give the jobs back for another worker */
	if (w->flushing && jobs_flush_finish(w->db, w->gens, &w->janitor, 1) < 0 && PQstatus(w->db) != CONNECTION_OK)
		db_lost(w);
	w->flushing = 0;
	for (struct gen *g = w->gens; g; g = g->next) {
		chat_abort(w->multi, g);
		chat_take_text(g);
	}
	if (w->gens && w->db) {
		int n = w->running;
		if (jobs_flush(w->db, w->gens, &w->janitor) == 0 && jobs_hand_back(w->db, w->name) == 0)
			log_info("mjs-worker handed back running=%d", n);
	}
	while (w->gens) {
		struct gen *g = w->gens;
		w->gens = g->next;
		gen_free(g);
	}
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct worker w;
	const char *path = getenv("MJS_CONFIG");
	int must_exist = path != NULL, opt;
	char err[512], host[64];
	struct sigaction sa;

	config_defaults(&cfg);
	while ((opt = getopt(argc, argv, "c:Vh")) != -1) {
		switch (opt) {
		case 'c': path = optarg; must_exist = 1; break;
		case 'V': printf("mjs-worker %s\n", PACKAGE_VERSION); config_free(&cfg); return 0;
		default:
			fprintf(opt == 'h' ? stdout : stderr, "usage: mjs-worker [-c CONFIG] [-V]\n");
			config_free(&cfg);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (config_load(&cfg, path ? path : CONFIG_DEFAULT_PATH, must_exist, err, sizeof(err)) < 0) {
		fprintf(stderr, "mjs-worker: %s\n", err);
		config_free(&cfg);
		return 2;
	}
	if (log_set_level_name(cfg.log_level) < 0) {
		fprintf(stderr, "mjs-worker: log_level must be debug, info, warn or error\n");
		config_free(&cfg);
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);

	memset(&w, 0, sizeof(w));
	w.cfg = &cfg;
	w.config_path = path ? path : CONFIG_DEFAULT_PATH;
	w.config_must_exist = must_exist;
	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	if (cfg.worker_name[0])
		snprintf(w.name, sizeof(w.name), "%s", cfg.worker_name);
	else
		snprintf(w.name, sizeof(w.name), "%s:%d", host, (int)getpid());
	if (chat_init(&cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "mjs-worker: %s\n", err);
		config_free(&cfg);
		return 2;
	}
	w.multi = curl_multi_init();
	retention_init(&w.retention, &cfg, util_now_ms());
	janitor_init(&w.janitor, &cfg, util_now_ms());
	w.tasks = taskq_new(&cfg, w.multi, w.name);
	pace_init(&w.pace, cfg.flush_min_interval_ms, cfg.flush_interval_ms);
	log_info("mjs-worker started name=%s max_generations=%d flush_interval_ms=%d flush_min_interval_ms=%d "
		 "upstreams=%d", w.name, cfg.max_generations, cfg.flush_interval_ms, cfg.flush_min_interval_ms,
		 cfg.nupstreams);
	for (int i = 0; i < cfg.nupstreams; i++)
		log_info("upstream name=%s protocol=%s url=%s models=%d", cfg.upstreams[i].name,
			 config_protocol_name(cfg.upstreams[i].protocol), cfg.upstreams[i].url, cfg.upstreams[i].nmodels);
	run(&w);
	taskq_shutdown(w.tasks, w.db);
	taskq_free(w.tasks);
	janitor_close(&w.janitor, w.db);	/* the chunks of finished replies, else the next sweep's */
	retention_close(&w.retention);
	curl_multi_cleanup(w.multi);
	PQfinish(w.db);
	curl_global_cleanup();
	log_info("mjs-worker stopped");
	config_free(&cfg);
	return 0;
}
