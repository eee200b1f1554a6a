/*
 * listen: the hub's database connection. It LISTENs on mjs_events and
 * mjs_sessions; each notification goes to the streams of its user in this
 * process (delivery.h), and a deleted session ends its streams. The same
 * connection runs the hub's catch-up queries (replay.h). When it is lost the
 * streams stay open; after the reconnect every stream catches up from the
 * table and every stream's session is looked up again, since notifications
 * sent meanwhile reached nobody.
 */
#ifndef MJS_API_LISTEN_H
#define MJS_API_LISTEN_H

#include <libpq-fe.h>
#include <stdint.h>

#include "api/stream.h"

struct listener {
	const char *conninfo;
	PGconn *db;		/* NULL while disconnected */
	int fd;			/* PQsocket(db), registered with the hub's epoll */
	int64_t retry_at;	/* monotonic ms of the next connection attempt */
	int retry_ms;		/* backoff: 1 s doubling to 10 s */
	int32_t epoch;		/* of every event notified here: the server's (mjs.epoch()), read at connect */
};

void listen_init(struct listener *l, const char *conninfo);

/*
 * Connects and LISTENs, registers the socket in epfd with data.ptr = tag, ends
 * the streams whose session ended meanwhile and puts every stream in
 * catch-up. Returns 0, or -1 (the next attempt is due at retry_at).
 */
int listen_connect(struct listener *l, struct streams *ss, void *tag, int64_t now_ms);

/* Drops the connection (logged with why); the next attempt is due at retry_at. */
void listen_lost(struct listener *l, struct streams *ss, const char *why, int64_t now_ms);

/* Delivers every notification received so far. */
void listen_drain(struct listener *l, struct streams *ss, int64_t now_ms);

/* Closes the connection (at stop). */
void listen_close(struct listener *l);

#endif
