/*
 * jobs: SQL of the worker's replies. Every statement is a constant with $n
 * parameters; the flush passes its batch as one JSON parameter.
 */
#include "worker/jobs.h"
#include "common/db.h"
#include "common/log.h"
#include "worker/lease.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int jobs_claim(PGconn *db, const struct config *cfg, const char *worker, int limit, struct gen *held,
	       struct gen **list)
{
	PGresult *res = lease_claim(db, &LEASE_REPLIES, worker, limit, cfg->lease_time_ms);
	int n;

	if (!res)
		return -1;
	n = PQntuples(res);
	for (int i = 0; i < n; i++) {
		struct gen *g;
		int recovered = PQgetvalue(res, i, 8)[0] == 't';
		const char *status = PQgetvalue(res, i, 5);

		if (gen_find(held, PQgetvalue(res, i, 0))) {
			log_warn("generation already held id=%s reason=\"claimed back after its lease ran out here\"",
				 PQgetvalue(res, i, 0));
			continue;
		}
		g = gen_new();
		if (!g)
			break;
		snprintf(g->id, sizeof(g->id), "%s", PQgetvalue(res, i, 0));
		snprintf(g->user_id, sizeof(g->user_id), "%s", PQgetvalue(res, i, 1));
		snprintf(g->conversation_id, sizeof(g->conversation_id), "%s", PQgetvalue(res, i, 2));
		snprintf(g->model, sizeof(g->model), "%s", PQgetvalue(res, i, 3));
		g->attempt = atoi(PQgetvalue(res, i, 4));
		g->content_chars = atol(PQgetvalue(res, i, 6));
		g->reasoning_chars = atol(PQgetvalue(res, i, 9));
		g->whole = g->content_chars == 0;
		g->db_status = !strcmp(status, "streaming") ? "streaming" : !strcmp(status, "pending") ? "pending"
												  : "created";
		g->stop = PQgetvalue(res, i, 7)[0] == 't';
		if (g->stop)
			gen_set_status(g, "stopped", NULL);
		else if (recovered && (g->content_chars > 0 || g->reasoning_chars > 0))
			gen_set_status(g, "failed", "interrupted: the worker running this reply stopped; "
						    "the text so far is kept");
		else if (g->attempt > cfg->max_attempts)
			gen_set_status(g, "failed", "gave up: the upstream request was started too many times");
		if (recovered)
			log_info("generation recovered id=%s attempt=%d chars=%ld outcome=%s", g->id, g->attempt,
				 g->content_chars, g->status ? g->status : "retry");
		g->next = *list;
		*list = g;
	}
	PQclear(res);
	return n;
}

static const char SQL_RESYNC[] =
	"SELECT m.id, mjs.message_chars(m), mjs.message_reasoning_chars(m) FROM mjs.messages m "
	"WHERE m.id = ANY ($1::uuid[])";

int jobs_resync(PGconn *db, struct gen *list)
{
	struct buf ids = { 0 };
	const char *params[1];
	PGresult *res;

	if (!list)
		return 0;
	for (struct gen *g = list; g; g = g->next)
		buf_array_add(&ids, g->id);
	params[0] = buf_array_end(&ids);
	res = db_exec(db, SQL_RESYNC, 1, params);
	buf_free(&ids);
	if (!res)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		struct gen *g = gen_find(list, PQgetvalue(res, i, 0));
		long chars = atol(PQgetvalue(res, i, 1)), rchars = atol(PQgetvalue(res, i, 2)), was, rwas, gone;
		if (!g)
			continue;
		was = g->content_chars;
		rwas = g->reasoning_chars;
		gone = gen_rewind(g, chars, rchars);
		if (chars < was || rchars < rwas)
			log_warn("generation rewound id=%s chars=%ld stored=%ld reasoning_chars=%ld stored=%ld lost=%ld "
				 "reason=\"written text missing after the reconnect (a failover lost commits)\"",
				 g->id, was, chars, rwas, rchars, gone);
		else if (chars > was || rchars > rwas)
			log_info("generation resynced id=%s chars=%ld stored=%ld reason=\"the flush in flight when the "
				 "connection broke was committed\"", g->id, was, chars);
	}
	PQclear(res);
	return 0;
}

static const char SQL_FLUSH[] = "SELECT id FROM mjs.flush_generations($1::json) AS id";

int jobs_flush_start(PGconn *db, struct gen *list, const struct gen *only, int skip_suspects)
{
	struct json_object *batch = gen_flush_batch(list, only, skip_suspects);
	const char *params[1];
	int rc;

	if (!batch)
		return 0;
	params[0] = json_object_to_json_string_ext(batch, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	/* the connection stays blocking: the batch is sent whole here, only the answer is awaited */
	rc = db_send(db, SQL_FLUSH, 1, params);
	json_object_put(batch);
	if (rc < 0) {
		gen_flush_forget(list);
		return -1;
	}
	return 1;
}

static void chunks_can_go(void *ctx, const struct gen *g)
{
	janitor_finished(ctx, g->id, g->chunk_rows);
}

int jobs_flush_finish(PGconn *db, struct gen *list, struct janitor *janitor, int wait)
{
	char state[6];
	PGresult *res;
	int rc = db_collect(db, SQL_FLUSH, wait, &res, state);

	if (rc == 0)
		return 0;
	if (rc < 0) {
		gen_flush_forget(list);
		return db_data_refused(state) ? -2 : -1;
	}
	gen_flush_written(list, chunks_can_go, janitor);
	for (int i = 0; i < PQntuples(res); i++) {
		log_info("generation dropped id=%s reason=\"message deleted\"", PQgetvalue(res, i, 0));
		gen_flush_gone(list, PQgetvalue(res, i, 0));
	}
	PQclear(res);
	return 1;
}

int jobs_flush(PGconn *db, struct gen *list, struct janitor *janitor)
{
	int rc = jobs_flush_start(db, list, NULL, 0);

	if (rc <= 0)
		return rc;
	return jobs_flush_finish(db, list, janitor, 1) < 0 ? -1 : 0;
}

int jobs_renew(PGconn *db, const struct config *cfg, const char *worker, struct gen *list)
{
	struct buf ids = { 0 };
	PGresult *res;

	for (struct gen *g = list; g; g = g->next)
		if (!g->final)
			buf_array_add(&ids, g->id);
	res = lease_renew(db, &LEASE_REPLIES, worker, buf_array_end(&ids), cfg->lease_time_ms);
	buf_free(&ids);
	if (!res)
		return -1;
	for (struct gen *g = list; g; g = g->next) {
		int row;
		if (g->final)
			continue;
		row = lease_row(res, g->id);
		if (row < 0) {
			log_warn("generation lost id=%s reason=\"job no longer leased to this worker\"", g->id);
			g->final = 1;
			g->stop = 1;
			g->dirty = 0;
		} else if (PQgetvalue(res, row, 1)[0] == 't') {
			g->stop = 1;
		}
	}
	PQclear(res);
	return 0;
}

int jobs_hand_back(PGconn *db, const char *worker)
{
	return lease_hand_back(db, &LEASE_REPLIES, worker);
}
