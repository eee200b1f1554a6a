/*
 * gen: one generation (assistant reply) running in this worker, shared by the
 * upstream client (chat.c), the database side (jobs.c) and the loop (main.c).
 *
 * Life: claimed (jobs) -> request started (chat) -> text arrives into pending ->
 * every tick the dirty gens are flushed in one transaction (jobs_flush_start,
 * answered later by jobs_flush_finish; text keeps arriving meanwhile) -> a
 * final status is flushed -> the gen is freed.
 */
#ifndef MJS_GEN_H
#define MJS_GEN_H

#include <curl/curl.h>
#include <stdint.h>

#include "common/util.h"
#include "worker/upstream_sse.h"

/* A longer reply is folded from its chunks by the database instead (sql/functions/flush_generations.sql). */
#define GEN_TEXT_MAX (4 << 20)

struct gen {
	char id[37];
	char user_id[37];
	char conversation_id[37];
	char model[201];
	int attempt;
	long content_chars;		/* characters of content in the database */
	int chunk_rows;			/* flushes that stored text for it: its rows in mjs.message_chunks */
	CURL *easy;			/* NULL once the transfer is over */
	struct curl_slist *headers;
	char *request_body;
	long http_status;
	struct buf error_body;		/* body of an HTTP error answer */
	struct upstream_sse parser;
	struct buf pending;		/* text not yet flushed */
	long pending_chars;		/* its length in characters */
	/* whole: the message had no text when claimed, so text (every flushed byte)
	 * is all of it and goes with the final status; cleared past GEN_TEXT_MAX */
	int whole;
	struct buf text;
	const char *status;		/* status to write at the next flush, or NULL */
	unsigned status_version;	/* bumped by every gen_set_status() */
	const char *db_status;		/* status as last written */
	char error[300];
	int final;			/* status is completed, stopped or failed */
	int dirty;			/* something to flush */
	int stop;			/* a stop was requested */
	/* what the flush in flight carries: the first flush_len bytes of pending, and
	 * the status of version flush_version (flush_status, NULL for none) */
	int in_flush;
	size_t flush_len;
	const char *flush_status;
	unsigned flush_version;
	int64_t start_ms, first_token_ms, last_data_ms;
	long chunks;
	long max_chars;			/* reply_max_chars: text past it is dropped and the reply cut */
	int cut;			/* reached max_chars: ends completed, marked as cut */
	int suspect;			/* in a flush the database refused; not yet written alone */
	int write_failures;		/* flushes of it alone that the database refused */
	struct gen *next;
};

/* Sets the status to flush next; a final status also ends the gen after the flush. */
void gen_set_status(struct gen *g, const char *status, const char *error);

/* The gen of message id in list, or NULL. */
struct gen *gen_find(struct gen *list, const char *id);

#endif
