/*
 * stream: the open SSE streams of one mjs-api process and what waits to be
 * written to each, owned by the hub thread (hub.c).
 *
 * A stream is a FastCGI connection whose request is GET /api/events, handed
 * over by a REST thread (events_get.c). What it is sent waits in its queue
 * (out, FastCGI STDOUT records) until the socket takes it. The registry finds
 * a user's streams (a notification fans out to them), walks all streams
 * (keepalives, sessions), and keeps two lists the loop works through: dirty
 * (something to write, or to read by catch-up) and dead (closed, freed at the
 * end of the loop turn).
 *
 * Invariants:
 * - A stream's queued bytes never exceed queue_max, except for one text larger
 *   than that on an otherwise empty queue (so every stored event can be
 *   delivered): stream_queue() refuses a text that does not fit, and the
 *   caller leaves the event to catch-up (delivery.h).
 * - A closed stream is off every list but dirty and dead, and is freed only
 *   from the dead list, after the loop turn in which it was closed.
 *
 * No libpq and no threads: the Check tests drive it over a socketpair.
 */
#ifndef MJS_API_STREAM_H
#define MJS_API_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "api/sse.h"
#include "common/util.h"

#define STREAM_BUCKETS 4096

struct stream_user;

struct stream {
	int fd;
	uint16_t request_id;
	int64_t session_id;
	int64_t session_expires_ms;	/* monotonic; the stream ends with its session */
	int64_t last_seq;	/* last seq queued; -1: not known yet (start from head) */
	int32_t last_epoch;	/* its epoch; 0: not known (a bare Last-Event-ID: the current one) */
	int bare_ids;		/* it sent a bare seq (a client from before epochs): its ids go out bare too */
	int catching_up;	/* reads mjs.events page by page (delivery.h) */
	int want_out;		/* EPOLLOUT is registered */
	int dirty;		/* on the dirty list */
	int dead;
	int64_t last_write_ms;
	int64_t waiting_since;	/* monotonic ms since data waits without progress; 0: not */
	struct buf out;
	size_t out_off;		/* bytes of out already written */
	struct stream_user *user;
	char user_id[37];
	struct stream *prev, *next;		/* the user's streams */
	struct stream *all_prev, *all_next;	/* every stream */
	struct stream *link;			/* pending, dirty or dead list */
};

/* The streams of one user in this process. */
struct stream_user {
	char id[37];
	struct stream *streams;
	struct stream_user *hnext;
};

struct streams {
	int epfd;		/* streams are registered here with data.ptr = the stream */
	size_t queue_max;	/* stream_queue_max */
	struct stream_user *buckets[STREAM_BUCKETS];
	struct stream *all;
	struct stream *dirty;
	struct stream *dead;
	struct buf text;	/* scratch: the SSE text being queued */
	struct buf text_bare;	/* scratch: the same event with a bare id, for bare_ids streams */
	/* called once per stream when it closes (the hub counts and gives the seat back) */
	void (*on_close)(void *ctx, const char *user_id);
	void *on_close_ctx;
};

void streams_init(struct streams *ss, int epfd, size_t queue_max, void (*on_close)(void *, const char *),
		  void *ctx);
/* Frees what is left: every stream must be closed (dead lists freed) already. */
void streams_fini(struct streams *ss);

/*
 * A new stream of user_id on fd (non-blocking), not yet registered. last is
 * the id the client has (seq -1: none). Returns NULL when out of memory.
 */
struct stream *stream_new(int fd, uint16_t request_id, const char *user_id, int64_t session_id,
			  int64_t session_expires_ms, const struct sse_id *last);
/*
 * Registers s (epoll, its user, every stream), queues the stream's opening
 * (headers and retry:, sse.h) and puts it in catch-up. Returns 0, or -1 (the
 * caller closes fd and frees s; on_close is not called).
 */
int streams_add(struct streams *ss, struct stream *s, int retry_ms, int64_t now_ms);

/* The user's streams here, or NULL when there are none. */
struct stream_user *streams_user(struct streams *ss, const char *user_id);

size_t stream_pending(const struct stream *s);
void stream_mark_dirty(struct streams *ss, struct stream *s);

/*
 * Queues SSE text for s, wrapped in FastCGI records. Returns 0; 1 when it does
 * not fit now (the queue holds other data and would exceed queue_max); -1 when
 * the stream was closed (out of memory). An empty queue takes any one text.
 */
int stream_queue(struct streams *ss, struct stream *s, const char *text, size_t len);
/* stream_queue of ss->text. */
int stream_queue_text(struct streams *ss, struct stream *s);

/* Writes what the socket takes now; waits for EPOLLOUT for the rest. */
void stream_flush(struct streams *ss, struct stream *s, int64_t now_ms);
/* Reads and ignores what the client sends; closes the stream on EOF or error. */
void stream_readable(struct streams *ss, struct stream *s);

/* Closes s now (logged with reason); it is freed from the dead list. */
void stream_kill(struct streams *ss, struct stream *s, const char *reason);
/* Ends s cleanly (END_REQUEST, best effort: what the socket takes now), then closes it. */
void stream_end(struct streams *ss, struct stream *s, const char *reason);

/* Frees the streams closed during this loop turn. */
void streams_free_dead(struct streams *ss);

#endif
