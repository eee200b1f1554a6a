/*
 * listen: the hub's database connection. It LISTENs on mjs_events and
 * mjs_sessions; each notification goes to the streams of its user in this
 * process (delivery.h), and a deleted session ends its streams. The same
 * connection runs the hub's catch-up queries (replay.h). When it is lost the
 * streams stay open; after the reconnect every stream catches up from the
 * table and every stream's session is looked up again, since notifications
 * sent meanwhile reached nobody.
 *
 * Connecting runs on a thread of its own (the connector): a database host
 * that died silently holds a connect for connect_timeout, per host of a
 * multi-host conninfo, and the hub must go on writing to its streams and
 * adopting new ones meanwhile. The connector writes notify_fd when it is
 * done; the hub takes its connection over in its next listen_connect().
 */
#ifndef MJS_API_LISTEN_H
#define MJS_API_LISTEN_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdint.h>

#include "api/stream.h"

struct listener {
	const char *conninfo;
	PGconn *db;		/* NULL while disconnected */
	int fd;			/* PQsocket(db), registered with the hub's epoll */
	int64_t retry_at;	/* monotonic ms of the next connection attempt */
	int32_t epoch;		/* of every event notified here: the server's (mjs.epoch()), read at connect */
	int notify_fd;		/* an eventfd the connector writes when it is done (the hub's wake-up) */
	int connecting;		/* a connector thread runs (hub thread only) */
	pthread_t connector;
	pthread_mutex_t lock;	/* guards done, made, made_epoch */
	int done;		/* the connector finished: made is its connection, or NULL */
	PGconn *made;
	int32_t made_epoch;
};

void listen_init(struct listener *l, const char *conninfo, int notify_fd);

/*
 * Call on every loop turn while l->db is NULL. When an attempt is due it
 * starts the connector (which connects, LISTENs and reads the epoch); when
 * the connector is done it takes the connection over: registers its socket in
 * epfd with data.ptr = tag, ends the streams whose session ended meanwhile and
 * puts every stream in catch-up. Returns 0 once connected, else -1 (still
 * connecting, or the next attempt is due at retry_at).
 */
int listen_connect(struct listener *l, struct streams *ss, void *tag, int64_t now_ms);

/* Drops the connection (logged with why); the next attempt is due at retry_at. */
void listen_lost(struct listener *l, struct streams *ss, const char *why, int64_t now_ms);

/* Delivers every notification received so far. */
void listen_drain(struct listener *l, struct streams *ss, int64_t now_ms);

/* Closes the connection (at stop); waits for a connector still running. */
void listen_close(struct listener *l);

#endif
