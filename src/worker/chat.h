/*
 * chat: a reply's transfer on the worker's curl multi handle: the request to
 * the upstream serving the reply's model (mjs.conf upstreams, in its protocol:
 * proto.h), its stream through upstream_sse, and the end of the transfer
 * turned into a status a user can act on. One easy handle per generation.
 */
#ifndef MJS_WORKER_CHAT_H
#define MJS_WORKER_CHAT_H

#include <curl/curl.h>
#include <libpq-fe.h>

#include "common/config.h"
#include "worker/gen.h"

/*
 * Reads the keys of the upstreams (key_file) once, at start. Returns 0, or -1
 * with why in err.
 */
int chat_init(const struct config *cfg, char *err, size_t errlen);

/*
 * Builds the requests of the gens of list that are not final (new claims)
 * from their conversations so far, read with one query; a gen whose model no
 * upstream serves is failed saying so. Returns 0, or -1 when the query failed
 * (no request set).
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
