/*
 * chat: the OpenAI-compatible chat completions client (stream: true) on a curl
 * multi handle. One easy handle per generation; bytes go through upstream_sse.
 */
#ifndef MJS_WORKER_CHAT_H
#define MJS_WORKER_CHAT_H

#include <curl/curl.h>
#include <libpq-fe.h>

#include "common/config.h"
#include "worker/gen.h"

/*
 * Builds the request bodies of the gens of list that are not final (new
 * claims) from their conversations so far, read with one query. Returns 0, or
 * -1 when the query failed (no body set).
 */
int chat_prepare(PGconn *db, const struct config *cfg, struct gen *list);

/*
 * Starts g's request (its body from chat_prepare) on multi. Returns 0, or -1
 * after setting g failed with the reason.
 */
int chat_start(CURLM *multi, const struct config *cfg, struct gen *g);

/* The transfer of g ended with result: decide the final status. */
void chat_done(CURLM *multi, struct gen *g, CURLcode result);

/* Aborts the transfer (stop, timeout, shutdown) without deciding a status. */
void chat_abort(CURLM *multi, struct gen *g);

/*
 * The reply reached reply_max_chars (g->cut): completed, its error saying it
 * was cut there. The text past the limit was never kept (chat_take_text).
 */
void chat_set_cut(struct gen *g);

/* Moves received text into g->pending; records first-token time. */
void chat_take_text(struct gen *g);

#endif
