/*
 * chat: request building, the curl write callback, and turning the end of a
 * transfer into completed or failed with an error a user can act on.
 */
#include "config.h"
#include "worker/chat.h"
#include "worker/proto.h"
#include "common/db.h"
#include "common/json.h"
#include "common/log.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERROR_BODY_MAX 16384

void chat_take_text(struct gen *g)
{
	int64_t now = util_now_ms();

	gen_take_reasoning(g, g->parser.reasoning.data, g->parser.reasoning.len, now);
	buf_reset(&g->parser.reasoning);
	gen_take_text(g, g->parser.content.data, g->parser.content.len, now);
	buf_reset(&g->parser.content);
	g->chunks = g->parser.chunks;
	if (g->parser.has_usage) {
		g->has_usage = 1;
		g->input_tokens = g->parser.input_tokens;
		g->output_tokens = g->parser.output_tokens;
	}
	if (g->parser.finish_reason[0])
		snprintf(g->finish_reason, sizeof(g->finish_reason), "%s", g->parser.finish_reason);
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct gen *g = arg;
	size_t n = size * nmemb;

	g->last_data_ms = util_now_ms();
	if (!g->http_status)
		curl_easy_getinfo(g->easy, CURLINFO_RESPONSE_CODE, &g->http_status);
	if (g->http_status >= 400) {
		if (g->error_body.len < ERROR_BODY_MAX)
			buf_append(&g->error_body, ptr, n);
		return n;
	}
	upstream_sse_feed(&g->parser, ptr, n);
	chat_take_text(g);
	/* a malformed stream or [DONE]: nothing more to read */
	return g->parser.failed ? 0 : n;
}

/*
 * The conversations of a batch of new generations in one query (a burst of
 * claims would otherwise hold the loop for one round trip per reply): for the
 * k-th message, the last messages before it, oldest first, at most
 * context_messages of them and, counted from the newest, no more than
 * context_max_bytes of text (the newest is always sent, whatever its size).
 * mjs.message_text() adds the chunks of one still streaming. Each row also
 * carries the conversation's system prompt.
 */
static const char SQL_HISTORY[] =
	"SELECT k.n, h.role, h.content, (SELECT cv.system_prompt FROM mjs.conversations cv WHERE cv.id = k.conv) "
	"FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS k(id, conv, n) "
	"CROSS JOIN LATERAL (SELECT * FROM ("
	"  SELECT x.*, sum(octet_length(x.content)) OVER w AS upto, row_number() OVER w AS rn FROM ("
	"    SELECT m.role, mjs.message_text(m) AS content, m.created_at, m.id FROM mjs.messages m"
	"    WHERE m.conversation_id = k.conv AND m.id <> k.id AND mjs.message_text(m) <> ''"
	"      AND m.created_at < (SELECT created_at FROM mjs.messages WHERE id = k.id)"
	"    ORDER BY m.created_at DESC, m.id DESC LIMIT $3) x"
	"  WINDOW w AS (ORDER BY x.created_at DESC, x.id DESC)) y"
	"  WHERE y.upto <= $4 OR y.rn = 1) h "
	"ORDER BY k.n, h.created_at, h.id";

/* Generations whose history is read by one query: bounds what one query holds. */
#define HISTORY_BATCH 32

/* The keys of cfg's upstreams (key, or key_file read at start), by position. */
static char upstream_keys[CONFIG_UPSTREAMS_MAX + 1][1024];

int chat_init(const struct config *cfg, char *err, size_t errlen)
{
	for (int i = 0; i < cfg->nupstreams; i++)
		if (config_upstream_key(&cfg->upstreams[i], upstream_keys[i], sizeof(upstream_keys[i]), err, errlen) < 0)
			return -1;
	return 0;
}

/* g's request to the upstream serving its model, with the conversation so far. */
static void build_request(struct gen *g, const struct config *cfg, const char *system, const struct chat_turn *turns,
			  int nturns)
{
	const struct config_upstream *u;
	struct chat_request r;
	char msg[300];

	if (!strcmp(g->model, "default") && cfg->chat_model[0])
		snprintf(g->model, sizeof(g->model), "%s", cfg->chat_model);
	u = config_model_upstream(cfg, g->model);
	if (!u) {
		snprintf(msg, sizeof(msg), "the model \"%.200s\" is not offered here any more (no upstream serves it)",
			 g->model);
		gen_set_status(g, "failed", msg);
		return;
	}
	r = (struct chat_request){ u->url, upstream_keys[u - cfg->upstreams], g->model, system, turns, nturns,
				   cfg->reply_max_tokens, u->reasoning };
	proto_request_free(&g->request);
	if (proto_request_build(u->protocol, &r, &g->request) < 0) {
		gen_set_status(g, "failed", "out of memory");
		return;
	}
	g->protocol = u->protocol;
	g->upstream = u->name;
}

/* The request bodies of up to HISTORY_BATCH gens from *from on; *from moves past them. */
static int prepare_batch(PGconn *db, const struct config *cfg, struct gen **from)
{
	struct buf ids = { 0 }, convs = { 0 };
	char limit[16], bytes[24];
	const char *params[4];
	struct gen *first = *from, *g;
	struct chat_turn *turns;
	PGresult *res;
	int row = 0, rows, k = 0, n = 0;

	for (g = first; g && n < HISTORY_BATCH; g = g->next) {
		if (g->final)
			continue;
		buf_array_add(&ids, g->id);
		buf_array_add(&convs, g->conversation_id);
		n++;
	}
	*from = g;
	if (n == 0)
		return 0;
	snprintf(limit, sizeof(limit), "%d", cfg->context_messages);
	snprintf(bytes, sizeof(bytes), "%zu", cfg->context_max_bytes);
	params[0] = buf_array_end(&ids);
	params[1] = buf_array_end(&convs);
	params[2] = limit;
	params[3] = bytes;
	res = db_exec(db, SQL_HISTORY, 4, params);
	buf_free(&ids);
	buf_free(&convs);
	if (!res)
		return -1;
	rows = PQntuples(res);
	turns = calloc((size_t)(rows ? rows : 1), sizeof(*turns));
	if (!turns) {
		PQclear(res);
		return -1;
	}
	for (g = first; g != *from; g = g->next) {
		int nturns = 0;
		const char *system = "";
		if (g->final)
			continue;
		/* rows come in list order: the k-th gen's rows have n = k */
		k++;
		while (row < rows && atoi(PQgetvalue(res, row, 0)) == k) {
			system = PQgetvalue(res, row, 3);
			turns[nturns].role = PQgetvalue(res, row, 1);
			turns[nturns].content = PQgetvalue(res, row, 2);
			turns[nturns++].len = (size_t)PQgetlength(res, row, 2);
			row++;
		}
		build_request(g, cfg, system, turns, nturns);
	}
	free(turns);
	PQclear(res);
	return 0;
}

int chat_prepare(PGconn *db, const struct config *cfg, struct gen *list)
{
	struct gen *from = list;

	while (from)
		if (prepare_batch(db, cfg, &from) < 0)
			return -1;
	return 0;
}

int chat_start(CURLM *multi, const struct config *cfg, struct gen *g)
{
	if (cfg->nupstreams == 0) {
		gen_set_status(g, "failed", "no chat upstream configured (upstream.NAME.* or chat_url)");
		return -1;
	}
	if (!g->request.url) {
		gen_set_status(g, "failed", "could not read the conversation");
		return -1;
	}
	g->max_chars = cfg->reply_max_chars;
	upstream_sse_init(&g->parser);
	g->parser.proto = g->protocol;
	g->easy = curl_easy_init();
	if (!g->easy) {
		gen_set_status(g, "failed", "out of memory");
		return -1;
	}
	for (int i = 0; i < g->request.nheaders; i++)
		g->headers = curl_slist_append(g->headers, g->request.headers[i]);
	curl_easy_setopt(g->easy, CURLOPT_URL, g->request.url);
	curl_easy_setopt(g->easy, CURLOPT_HTTPHEADER, g->headers);
	curl_easy_setopt(g->easy, CURLOPT_POSTFIELDS, g->request.body);
	curl_easy_setopt(g->easy, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(g->easy, CURLOPT_WRITEDATA, g);
	curl_easy_setopt(g->easy, CURLOPT_PRIVATE, &g->transfer);
	curl_easy_setopt(g->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(g->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms);
	curl_easy_setopt(g->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(g->easy, CURLOPT_USERAGENT, "mjs-worker/" PACKAGE_VERSION);
	if (curl_multi_add_handle(multi, g->easy) != CURLM_OK) {
		gen_set_status(g, "failed", "could not start the upstream request");
		return -1;
	}
	g->start_ms = g->last_data_ms = util_now_ms();
	gen_set_status(g, "pending", NULL);
	return 0;
}

static void release(CURLM *multi, struct gen *g)
{
	if (!g->easy)
		return;
	curl_multi_remove_handle(multi, g->easy);
	curl_easy_cleanup(g->easy);
	g->easy = NULL;
	curl_slist_free_all(g->headers);
	g->headers = NULL;
}

void chat_abort(CURLM *multi, struct gen *g)
{
	release(multi, g);
}

void chat_set_cut(struct gen *g)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "cut: the reply reached reply_max_chars (%ld characters)", g->max_chars);
	snprintf(g->finish_reason, sizeof(g->finish_reason), "length");
	gen_set_status(g, "completed", msg);
}

void chat_done(CURLM *multi, struct gen *g, CURLcode result)
{
	char msg[300];

	if (!g->http_status)
		curl_easy_getinfo(g->easy, CURLINFO_RESPONSE_CODE, &g->http_status);
	release(multi, g);
	if (result == CURLE_OK && g->http_status < 400)
		upstream_sse_finish(&g->parser);
	chat_take_text(g);
	if (g->cut) {
		chat_set_cut(g);
	} else if (g->http_status >= 400) {
		char detail[200];
		upstream_error_message(g->error_body.data ? g->error_body.data : "", g->error_body.len, detail,
				       sizeof(detail));
		snprintf(msg, sizeof(msg), "upstream HTTP %ld: %s", g->http_status, detail);
		gen_set_status(g, "failed", msg);
	} else if (g->parser.failed) {
		gen_set_status(g, "failed", g->parser.error);
	} else if (g->parser.done || g->parser.finish_reason[0]) {
		gen_set_status(g, "completed", !strcmp(g->parser.finish_reason, "length")
			       ? "cut: the upstream stopped at its length limit (max_tokens)" : NULL);
	} else if (result == CURLE_OPERATION_TIMEDOUT) {
		gen_set_status(g, "failed", "could not connect to the upstream in time (connect_timeout)");
	} else if (result == CURLE_PARTIAL_FILE || result == CURLE_RECV_ERROR || result == CURLE_GOT_NOTHING) {
		/* curl's own words ("Transferred a partial file") mean nothing to a user */
		snprintf(msg, sizeof(msg), "the upstream connection broke before the reply finished (%s)%s",
			 curl_easy_strerror(result), g->content_chars || g->pending.len ? "; the text so far is kept" : "");
		gen_set_status(g, "failed", msg);
	} else if (result != CURLE_OK) {
		snprintf(msg, sizeof(msg), "upstream connection failed: %s", curl_easy_strerror(result));
		gen_set_status(g, "failed", msg);
	} else {
		gen_set_status(g, "failed", "upstream closed the stream before it finished");
	}
}
