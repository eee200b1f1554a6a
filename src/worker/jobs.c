/*
 * jobs: SQL of the worker. Every statement is a constant with $n parameters; the
 * flush passes its batch as one JSON parameter.
 */
#include "worker/jobs.h"
#include "common/db.h"
#include "common/json.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SQL_CLAIM[] =
	"SELECT message_id, user_id, conversation_id, model, attempts, status, content_chars, "
	"stop_requested, recovered FROM mjs.claim_generations($1, $2, make_interval(secs => $3::double precision))";

int jobs_claim(PGconn *db, const struct config *cfg, const char *worker, int limit, struct gen *held,
	       struct gen **list)
{
	char lim[16], lease[32];
	const char *params[3] = { worker, lim, lease };
	PGresult *res;
	int n;

	snprintf(lim, sizeof(lim), "%d", limit);
	snprintf(lease, sizeof(lease), "%.3f", cfg->lease_time_ms / 1000.0);
	res = db_exec(db, SQL_CLAIM, 3, params);
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
		g = calloc(1, sizeof(*g));
		if (!g)
			break;
		snprintf(g->id, sizeof(g->id), "%s", PQgetvalue(res, i, 0));
		snprintf(g->user_id, sizeof(g->user_id), "%s", PQgetvalue(res, i, 1));
		snprintf(g->conversation_id, sizeof(g->conversation_id), "%s", PQgetvalue(res, i, 2));
		snprintf(g->model, sizeof(g->model), "%s", PQgetvalue(res, i, 3));
		g->attempt = atoi(PQgetvalue(res, i, 4));
		g->content_chars = atol(PQgetvalue(res, i, 6));
		g->whole = g->content_chars == 0;
		g->db_status = !strcmp(status, "streaming") ? "streaming" : !strcmp(status, "pending") ? "pending"
												  : "created";
		g->stop = PQgetvalue(res, i, 7)[0] == 't';
		if (g->stop)
			gen_set_status(g, "stopped", NULL);
		else if (recovered && g->content_chars > 0)
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

static const char SQL_FLUSH[] = "SELECT id FROM mjs.flush_generations($1::json) AS id";

void jobs_drops_free(struct jobs_drops *d)
{
	free(d->items);
	memset(d, 0, sizeof(*d));
}

static void drops_add(struct jobs_drops *d, const struct gen *g)
{
	if (d->len == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct jobs_drop *items = realloc(d->items, cap * sizeof(*items));
		if (!items)
			return;		/* mjs.sweep_chunks() gets these chunks later */
		d->items = items;
		d->cap = cap;
	}
	snprintf(d->items[d->len].id, sizeof(d->items[0].id), "%s", g->id);
	d->items[d->len++].rows = g->chunk_rows;
}

/* One job of the flush: what is new since the last one. */
static struct json_object *flush_job(struct gen *g, int with_status)
{
	struct json_object *o = json_object_new_object();
	const char *pending = g->pending.data ? g->pending.data : "";
	const char *status = with_status ? g->status : NULL;
	int final = status && g->final;

	json_object_object_add(o, "id", json_object_new_string(g->id));
	json_object_object_add(o, "user_id", json_object_new_string(g->user_id));
	json_object_object_add(o, "offset", json_object_new_int64(g->content_chars));
	json_object_object_add(o, "text", json_object_new_string_len(pending, (int)g->pending.len));
	json_object_object_add(o, "status", status ? json_object_new_string(status) : NULL);
	json_object_object_add(o, "error", status && g->error[0] ? json_object_new_string(g->error) : NULL);
	json_object_object_add(o, "tokens", json_object_new_int64(g->chunks));
	if (final && g->whole) {
		/* the whole text: the database stores it instead of folding the chunks */
		struct buf all = { 0 };
		if (buf_append(&all, g->text.data ? g->text.data : "", g->text.len) == 0 &&
		    buf_append(&all, pending, g->pending.len) == 0)
			json_object_object_add(o, "content", json_object_new_string_len(all.data ? all.data : "",
											   (int)all.len));
		buf_free(&all);
	}
	return o;
}

int jobs_flush_start(PGconn *db, struct gen *list, const struct gen *only, int skip_suspects)
{
	struct json_object *batch = json_object_new_array();
	const char *params[1];
	int count = 0, finals = 0, sent;

	for (struct gen *g = list; g; g = g->next) {
		int hold;
		if (!g->dirty || (only && g != only) || (skip_suspects && g->suspect))
			continue;
		/* past JOBS_FINALS_MAX final statuses, one waits for a later flush; its text goes now */
		hold = g->status && g->final && finals >= JOBS_FINALS_MAX;
		if (hold && g->pending.len == 0)
			continue;
		if (g->status && g->final && !hold)
			finals++;
		json_object_array_add(batch, flush_job(g, !hold));
		g->in_flush = 1;
		g->flush_len = g->pending.len;
		g->flush_status = hold ? NULL : g->status;
		g->flush_version = g->status_version;
		count++;
	}
	if (count == 0) {
		json_object_put(batch);
		return 0;
	}
	params[0] = json_object_to_json_string_ext(batch, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	/* the connection stays blocking: the batch is sent whole here, only the answer is awaited */
	sent = PQsendQueryParams(db, SQL_FLUSH, 1, NULL, params, NULL, NULL, 0);
	json_object_put(batch);
	if (!sent) {
		log_error("db query failed: query=\"SELECT id FROM mjs.flush_generations\" error=\"%s\"",
			  PQerrorMessage(db));
		jobs_flush_forget(list);
		return -1;
	}
	return 1;
}

void jobs_flush_forget(struct gen *list)
{
	for (struct gen *g = list; g; g = g->next)
		g->in_flush = 0;
}

/* The flush was committed: drop what it carried, keep what arrived since. */
static void flush_written(struct gen *list, struct jobs_drops *drops, PGresult *res)
{
	for (struct gen *g = list; g; g = g->next) {
		if (!g->in_flush)
			continue;
		g->in_flush = 0;
		{
			long flushed = (long)json_utf8_chars(g->pending.data ? g->pending.data : "", g->flush_len);
			g->content_chars += flushed;
			g->pending_chars -= flushed;
		}
		if (g->flush_len > 0)
			g->chunk_rows++;
		/* past GEN_TEXT_MAX (or out of memory) the database folds the chunks instead */
		if (g->whole && (g->text.len + g->flush_len > GEN_TEXT_MAX ||
				 (g->flush_len > 0 && buf_append(&g->text, g->pending.data, g->flush_len) < 0))) {
			g->whole = 0;
			buf_free(&g->text);
		}
		buf_consume(&g->pending, g->flush_len);
		if (g->flush_status)
			g->db_status = g->flush_status;
		if (g->flush_status && g->status_version == g->flush_version)
			g->status = NULL;
		g->dirty = g->pending.len > 0 || g->status != NULL;
		if (g->final && g->flush_status && g->flush_version == g->status_version)
			drops_add(drops, g);	/* its final status is stored: the chunks can go */
	}
	for (int i = 0; i < PQntuples(res); i++) {
		for (struct gen *g = list; g; g = g->next) {
			if (!strcmp(g->id, PQgetvalue(res, i, 0))) {
				log_info("generation dropped id=%s reason=\"message deleted\"", g->id);
				g->stop = 1;
				g->final = 1;
				g->dirty = 0;
			}
		}
	}
}

int jobs_flush_finish(PGconn *db, struct gen *list, struct jobs_drops *drops, int wait)
{
	PGresult *res, *answer = NULL;
	int failed = 0, refused = 0;

	if (!wait && PQisBusy(db))
		return 0;
	/* the answer and ReadyForQuery come in one packet: the loop does not wait */
	while ((res = PQgetResult(db)) != NULL) {
		if (PQresultStatus(res) == PGRES_TUPLES_OK && !answer && !failed) {
			answer = res;
			continue;
		}
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
			const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			log_error("db query failed: sqlstate=%s query=\"SELECT id FROM mjs.flush_generations\" error=\"%s\"",
				  state ? state : "-", msg ? msg : PQerrorMessage(db));
			failed = 1;
			refused = db_data_refused(state);
		}
		PQclear(res);
	}
	if (answer && !failed) {
		flush_written(list, drops, answer);
	} else {
		jobs_flush_forget(list);
		failed = 1;
	}
	PQclear(answer);
	return failed ? (refused ? -2 : -1) : 1;
}

int jobs_flush(PGconn *db, struct gen *list, struct jobs_drops *drops)
{
	int rc = jobs_flush_start(db, list, NULL, 0);

	if (rc <= 0)
		return rc;
	return jobs_flush_finish(db, list, drops, 1) < 0 ? -1 : 0;
}

static const char SQL_DROP_CHUNKS[] = "SELECT mjs.drop_chunks($1::uuid[])";

int jobs_drops_send(PGconn *aux, struct jobs_drops *d)
{
	struct buf ids = { 0 };
	const char *params[1];
	size_t n = 0;
	long rows = 0;
	int sent;

	if (d->len == 0)
		return 0;
	/* the first item always goes, then more while they stay within JOBS_DROP_ROWS */
	do {
		rows += d->items[n].rows;
		buf_array_add(&ids, d->items[n++].id);
	} while (n < d->len && rows + d->items[n].rows <= JOBS_DROP_ROWS);
	d->sending = n;
	params[0] = buf_array_end(&ids);
	sent = PQsendQueryParams(aux, SQL_DROP_CHUNKS, 1, NULL, params, NULL, NULL, 0);
	buf_free(&ids);
	if (!sent) {
		log_error("db query failed: query=\"SELECT mjs.drop_chunks\" error=\"%s\"", PQerrorMessage(aux));
		d->sending = 0;
		return -1;
	}
	return 1;
}

int jobs_drops_finish(PGconn *aux, struct jobs_drops *d, int wait)
{
	PGresult *res;
	int failed = 0;

	if (!wait && PQisBusy(aux))
		return 0;
	while ((res = PQgetResult(aux)) != NULL) {
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
			log_error("db query failed: query=\"SELECT mjs.drop_chunks\" error=\"%s\"",
				  msg ? msg : PQerrorMessage(aux));
			failed = 1;
		}
		PQclear(res);
	}
	if (!failed) {
		memmove(d->items, d->items + d->sending, (d->len - d->sending) * sizeof(d->items[0]));
		d->len -= d->sending;
	}
	d->sending = 0;
	return failed ? -1 : 1;
}

int jobs_sweep_chunks(PGconn *db)
{
	PGresult *res = db_exec(db, "SELECT mjs.sweep_chunks()", 0, NULL);

	if (!res)
		return -1;
	if (strcmp(PQgetvalue(res, 0, 0), "0") != 0)
		log_info("worker deleted %s chunks of finished messages", PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

/* Only the jobs held here: one dropped here must lapse for another worker to take. */
static const char SQL_RENEW[] =
	"UPDATE mjs.generations SET lease_until = now() + make_interval(secs => $2::double precision) "
	"WHERE worker = $1 AND state = 'running' AND message_id = ANY($3::uuid[]) "
	"RETURNING message_id, stop_requested";

int jobs_renew(PGconn *db, const struct config *cfg, const char *worker, struct gen *list)
{
	char lease[32];
	const char *params[3] = { worker, lease, NULL };
	struct buf ids = { 0 };
	PGresult *res;

	snprintf(lease, sizeof(lease), "%.3f", cfg->lease_time_ms / 1000.0);
	for (struct gen *g = list; g; g = g->next)
		if (!g->final)
			buf_array_add(&ids, g->id);
	params[2] = buf_array_end(&ids);
	res = db_exec(db, SQL_RENEW, 3, params);
	buf_free(&ids);
	if (!res)
		return -1;
	for (struct gen *g = list; g; g = g->next) {
		int found = 0;
		if (g->final)
			continue;
		for (int i = 0; i < PQntuples(res) && !found; i++) {
			if (strcmp(g->id, PQgetvalue(res, i, 0)) != 0)
				continue;
			found = 1;
			if (PQgetvalue(res, i, 1)[0] == 't')
				g->stop = 1;
		}
		if (!found) {
			log_warn("generation lost id=%s reason=\"job no longer leased to this worker\"", g->id);
			g->final = 1;
			g->stop = 1;
			g->dirty = 0;
		}
	}
	PQclear(res);
	return 0;
}

int jobs_hand_back(PGconn *db, const char *worker)
{
	const char *params[1] = { worker };

	return db_command(db, "UPDATE mjs.generations SET lease_until = now() - interval '1 second' "
			      "WHERE worker = $1 AND state = 'running'", 1, params);
}
