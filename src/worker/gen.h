/*
 * gen: one generation (assistant reply) running in this worker: its lifecycle
 * and the bookkeeping of what the database has of it. Pure (no libpq, no
 * curl calls): the upstream client (chat.c) feeds it text and statuses, the
 * database side (jobs.c) sends the flush gen builds and reports how it went,
 * the loop (main.c) decides when. Unit-tested in tests/unit/check_gen.c.
 *
 * Life: claimed (jobs) -> request started (chat) -> text arrives into pending
 * (gen_take_text) -> every tick the dirty gens go into one flush
 * (gen_flush_batch; text keeps arriving meanwhile) -> the flush is written
 * (gen_flush_written: what it carried leaves pending, what arrived since
 * stays), or not (gen_flush_forget: the same goes out again, at the same
 * offset, so a retried flush never doubles text) -> a final status is
 * written -> the gen is freed.
 */
#ifndef MJS_WORKER_GEN_H
#define MJS_WORKER_GEN_H

#include <curl/curl.h>
#include <json-c/json.h>
#include <stdint.h>

#include "common/util.h"
#include "worker/proto.h"
#include "worker/transfer.h"
#include "worker/upstream_sse.h"

/* A longer reply is folded from its chunks by the database instead (sql/functions/flush_generations.sql). */
#define GEN_TEXT_MAX (4 << 20)

/*
 * A final status costs the flush its whole text (stored, and sent to every
 * tab in its event): past this many in one flush the others wait for the next
 * one (their text still goes now), so replies that end together never hold up
 * the tokens of the rest.
 */
#define GEN_FINALS_PER_FLUSH 4

struct gen {
	struct transfer transfer;	/* CURLOPT_PRIVATE of easy points here */
	char id[37];
	char user_id[37];
	char conversation_id[37];
	char model[201];
	int attempt;
	long content_chars;		/* characters of content in the database */
	int chunk_rows;			/* flushes that stored text for it: its rows in mjs.message_chunks */
	CURL *easy;			/* NULL once the transfer is over */
	struct curl_slist *headers;	/* request.headers for curl */
	struct proto_request request;	/* what goes to the upstream (chat_prepare) */
	enum upstream_protocol protocol;	/* the upstream's, for its stream's parser */
	const char *upstream;		/* the upstream's name (the config's), for log lines */
	long http_status;
	struct buf error_body;		/* body of an HTTP error answer */
	struct upstream_sse parser;
	struct buf pending;		/* text not yet flushed */
	long pending_chars;		/* its length in characters */
	long reasoning_chars;		/* characters of reasoning in the database */
	struct buf pending_reasoning;	/* reasoning not yet flushed (its own offsets) */
	long pending_rchars;
	size_t flush_rlen;		/* bytes of pending_reasoning the flush in flight carries */
	/* how the upstream ended it, sent with the final status */
	char finish_reason[32];
	int has_usage;
	long input_tokens, output_tokens;
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

/* A new gen (zeroed, tagged as a reply's transfer), or NULL. */
struct gen *gen_new(void);
void gen_free(struct gen *g);

/* The gen of message id in list, or NULL. */
struct gen *gen_find(struct gen *list, const char *id);

/* Sets the status to flush next; a final status also ends the gen after the flush. */
void gen_set_status(struct gen *g, const char *status, const char *error);

/*
 * Text that arrived (valid UTF-8, whole characters): appended to pending;
 * past max_chars (when set) the rest is dropped and g->cut set. Records the
 * first token's time (now_ms).
 */
void gen_take_text(struct gen *g, const char *text, size_t len, int64_t now_ms);

/* Reasoning that arrived: appended to pending_reasoning, within max_chars as the answer is. */
void gen_take_reasoning(struct gen *g, const char *text, size_t len, int64_t now_ms);

/*
 * The flush of every dirty gen of list, as the JSON array mjs.flush_generations
 * takes (mjs.flush_in); NULL when nothing is dirty. Each gen carried remembers
 * what (in_flush). With only, that gen alone; with skip_suspects, every dirty
 * gen but the suspects. At most GEN_FINALS_PER_FLUSH final statuses.
 */
struct json_object *gen_flush_batch(struct gen *list, const struct gen *only, int skip_suspects);

/*
 * The flush was committed: what it carried leaves each gen, what arrived since
 * stays. finished is called for each gen whose final status it wrote (its
 * chunks can go).
 */
void gen_flush_written(struct gen *list, void (*finished)(void *ctx, const struct gen *g), void *ctx);

/* The flush found message id deleted: its gen ends with nothing more to write. */
void gen_flush_gone(struct gen *list, const char *id);

/* The flush was not written (or not known to be): everything goes out again. */
void gen_flush_forget(struct gen *list);

/*
 * After a reconnect: the database holds chars characters of g's answer and
 * rchars of its reasoning.
 * - Fewer than g wrote: commits it was told were done are gone (a failover
 *   to a standby that had not received them). The lost answer text goes out
 *   again from g's copy when it has one (whole), else g goes on from what is
 *   stored.
 * - More: the flush in flight when the connection broke was committed (its
 *   answer was lost). What it stored leaves pending, as gen_flush_written
 *   would have done; sending it again would be refused by the offset rule,
 *   and the text that arrived since with it.
 * Returns the characters lost for good (0 when everything can be sent again).
 */
long gen_rewind(struct gen *g, long chars, long rchars);

#endif
