/*
 * delivery: the rules that decide what an open stream is sent, so that a tab
 * sees every event of its user exactly once and in seq order, or `reset` when
 * the events it asks for are no longer stored. No libpq: listen.c feeds it
 * notifications and replay.c the pages it reads; Check tests drive it over a
 * socketpair (tests/unit/check_delivery.c).
 *
 * - s->last_seq is the seq of the last event queued to the stream. A live
 *   event is queued only when its seq is last_seq + 1, so a stream never sees
 *   a gap or a duplicate; an older one is dropped.
 * - Anything else (a jump, a notification without data whose row was not
 *   read, an event that does not fit the queue, a stream that just opened, a
 *   lost LISTEN connection) switches the stream to catch-up: it reads
 *   mjs.events page by page, event by event while its queue is below the
 *   low-water mark (half of stream_queue_max), and goes live again once a page
 *   held every event left and all went out. So an event that does not fit
 *   waits in the table, not in memory, and no event, however large, and no
 *   backlog, however long, makes a stream drop and replay the same thing again.
 * - A stream without Last-Event-ID starts at its user's head: it is sent
 *   "id: head" and nothing older.
 * - Ids are "epoch.seq" (sse.h). A stream resumes after E.N only when event N
 *   of its user is stored with epoch E (or, when N is gone, event N+1 is, with
 *   epoch E): else the history after some event the tab saw was lost in a
 *   failover and N may now be a different event. A bare N means the current
 *   epoch, and the stream's ids go out bare too (the client predates epochs
 *   and reads ids as numbers). Checked at every catch-up page, so also after
 *   the LISTEN connection came back from a failover.
 * - When the next event a stream needs is gone (retention, a prune, an id from
 *   another database), or its history is, it is sent `reset` with the head as
 *   its id, and goes on from there: the tab reloads over REST.
 */
#ifndef MJS_API_DELIVERY_H
#define MJS_API_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include "api/stream.h"

/* One live event for the streams of user u (its type and data known), written in epoch. */
void delivery_event(struct streams *ss, struct stream_user *u, int32_t epoch, int64_t seq, const char *type,
		    size_t type_len, const char *data, size_t data_len);

/* A live event whose data is not known here: u's streams read it by catch-up. */
void delivery_missing(struct streams *ss, struct stream_user *u);

/* Every stream catches up (after the LISTEN connection came back: notifications were missed). */
void delivery_catch_up_all(struct streams *ss);

/* One stored event of a catch-up page. */
struct replay_row {
	int32_t epoch;
	int64_t seq;
	const char *type;
	size_t type_len;
	const char *data;
	size_t data_len;
};

/* What one catch-up query read for a stream, in one snapshot. */
struct replay_page {
	int user_found;		/* 0: the user no longer exists (the stream ends) */
	int64_t head;		/* the user's event_seq */
	int32_t head_epoch;	/* the epoch of the head's event (the current one when it is not stored) */
	int32_t epoch;		/* the current epoch (mjs.epoch()) */
	int32_t after_epoch;	/* the epoch of the stream's last_seq event; 0: not stored */
	const struct replay_row *rows;	/* events after last_seq, in seq order */
	int n;
	int64_t total;		/* events the page had before its byte limit (0 when n is 0) */
	int64_t limit;		/* the page's row limit (replay_batch) */
};

/* Bytes of data a page for s may carry past its first event (the room below the low-water mark). */
size_t delivery_page_room(const struct streams *ss, const struct stream *s);

/*
 * Applies one page to a stream in catch-up. Returns 0 (caught up, or more
 * pages to read), or 1 when the next event waits for room in the queue (the
 * stream goes on once the socket has taken what is queued).
 */
int delivery_page(struct streams *ss, struct stream *s, const struct replay_page *page);

#endif
