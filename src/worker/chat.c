/*
 * chat: request building, the curl write callback, and turning the end of a
 * transfer into completed or failed with an error a user can act on.
 */
#include "config.h"
#include "worker/chat.h"
#include "common/db.h"
#include "common/log.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERROR_BODY_MAX 16384

void gen_set_status(struct gen *g, const char *status, const char *error)
{
	g->status = status;
	g->status_version++;
	if (error)
		snprintf(g->error, sizeof(g->error), "%s", error);
	g->final = !strcmp(status, "completed") || !strcmp(status, "stopped") || !strcmp(status, "failed");
	g->dirty = 1;
}

void chat_take_text(struct gen *g)
{
	if (g->parser.content.len == 0)
		return;
	if (!g->first_token_ms)
		g->first_token_ms = util_now_ms();
	buf_append(&g->pending, g->parser.content.data, g->parser.content.len);
	buf_reset(&g->parser.content);
	g->chunks = g->parser.chunks;
	g->dirty = 1;
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

/* The last messages before this one; mjs.message_text() adds the chunks of one still streaming. */
static const char SQL_HISTORY[] =
	"SELECT role, content FROM ("
	"  SELECT m.role, mjs.message_text(m) AS content, m.created_at, m.id FROM mjs.messages m"
	"  WHERE m.conversation_id = $1 AND m.id <> $2 AND mjs.message_text(m) <> ''"
	"    AND m.created_at < (SELECT created_at FROM mjs.messages WHERE id = $2)"
	"  ORDER BY m.created_at DESC, m.id DESC LIMIT $3) h "
	"ORDER BY created_at, id";

/* The request body: model, the conversation so far, stream: true. Caller frees. */
static char *request_body_new(PGconn *db, const struct config *cfg, struct gen *g)
{
	char limit[16];
	const char *params[3] = { g->conversation_id, g->id, limit };
	struct json_object *root, *msgs;
	PGresult *res;
	char *out;

	snprintf(limit, sizeof(limit), "%d", cfg->context_messages);
	res = db_exec(db, SQL_HISTORY, 3, params);
	if (!res)
		return NULL;
	root = json_object_new_object();
	msgs = json_object_new_array();
	for (int i = 0; i < PQntuples(res); i++) {
		struct json_object *m = json_object_new_object();
		json_object_object_add(m, "role", json_object_new_string(PQgetvalue(res, i, 0)));
		json_object_object_add(m, "content", json_object_new_string_len(PQgetvalue(res, i, 1),
										 PQgetlength(res, i, 1)));
		json_object_array_add(msgs, m);
	}
	PQclear(res);
	json_object_object_add(root, "model", json_object_new_string(g->model));
	json_object_object_add(root, "messages", msgs);
	json_object_object_add(root, "stream", json_object_new_boolean(1));
	out = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
	return out;
}

int chat_start(CURLM *multi, PGconn *db, const struct config *cfg, struct gen *g)
{
	char url[2048], auth[1024];
	size_t n;

	if (!cfg->chat_url[0]) {
		gen_set_status(g, "failed", "no chat upstream configured (chat_url)");
		return -1;
	}
	if (!strcmp(g->model, "default"))
		snprintf(g->model, sizeof(g->model), "%s", cfg->chat_model[0] ? cfg->chat_model : "default");
	g->request_body = request_body_new(db, cfg, g);
	if (!g->request_body) {
		gen_set_status(g, "failed", "could not read the conversation");
		return -1;
	}
	n = strlen(cfg->chat_url);
	while (n > 0 && cfg->chat_url[n - 1] == '/')
		n--;
	snprintf(url, sizeof(url), "%.*s/chat/completions", (int)n, cfg->chat_url);
	upstream_sse_init(&g->parser);
	g->easy = curl_easy_init();
	if (!g->easy) {
		gen_set_status(g, "failed", "out of memory");
		return -1;
	}
	g->headers = curl_slist_append(g->headers, "Content-Type: application/json");
	g->headers = curl_slist_append(g->headers, "Accept: text/event-stream");
	if (cfg->chat_api_key[0]) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", cfg->chat_api_key);
		g->headers = curl_slist_append(g->headers, auth);
	}
	curl_easy_setopt(g->easy, CURLOPT_URL, url);
	curl_easy_setopt(g->easy, CURLOPT_HTTPHEADER, g->headers);
	curl_easy_setopt(g->easy, CURLOPT_POSTFIELDS, g->request_body);
	curl_easy_setopt(g->easy, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(g->easy, CURLOPT_WRITEDATA, g);
	curl_easy_setopt(g->easy, CURLOPT_PRIVATE, g);
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

void chat_done(CURLM *multi, struct gen *g, CURLcode result)
{
	char msg[300];

	if (!g->http_status)
		curl_easy_getinfo(g->easy, CURLINFO_RESPONSE_CODE, &g->http_status);
	release(multi, g);
	if (result == CURLE_OK && g->http_status < 400)
		upstream_sse_finish(&g->parser);
	chat_take_text(g);
	if (g->http_status >= 400) {
		char detail[200];
		upstream_error_message(g->error_body.data ? g->error_body.data : "", g->error_body.len, detail,
				       sizeof(detail));
		snprintf(msg, sizeof(msg), "upstream HTTP %ld: %s", g->http_status, detail);
		gen_set_status(g, "failed", msg);
	} else if (g->parser.failed) {
		gen_set_status(g, "failed", g->parser.error);
	} else if (g->parser.done || g->parser.finish_reason[0]) {
		gen_set_status(g, "completed", NULL);
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
