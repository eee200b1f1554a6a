/*
 * hub: the event-loop thread of one mjs-api process. It owns the LISTEN
 * connection and every open SSE stream: REST threads hand authenticated
 * GET /api/events connections to it with hub_adopt() and never touch them again.
 * A notification for user U is written to U's streams only.
 */
#ifndef MJS_API_HUB_H
#define MJS_API_HUB_H

#include <stddef.h>
#include <stdint.h>

#include "api/sse.h"
#include "common/config.h"

struct hub;

/*
 * Stream descriptors are HUB_STREAM_FD_FLOOR or above, so the REST connections,
 * which libfcgi watches with select(), keep the low ones (below FD_SETSIZE).
 */
#define HUB_STREAM_FD_FLOOR 1024

/* Creates the hub and starts its thread. Returns NULL (logged) on failure. */
struct hub *hub_start(const struct config *cfg);

/* Ends every stream (the browsers reconnect elsewhere), stops the thread, frees. */
void hub_stop(struct hub *hub);

/*
 * Per-user streams in this process (max_streams_per_user). A stream takes its
 * user's seat before hub_adopt(): 0, -1 when the user holds the cap, -2 out of
 * memory. From hub_adopt() on the hub gives the seat back when the stream
 * ends (also when hub_adopt fails); a caller that does not reach hub_adopt
 * gives it back itself.
 */
int hub_seat_take(struct hub *hub, const char *user_id);
void hub_seat_give(struct hub *hub, const char *user_id);

/*
 * Writes the users holding max_streams_per_user streams here as a PostgreSQL
 * uuid[] literal ("{...}"), at most max of them; returns how many.
 */
int hub_capped_users(struct hub *hub, char *out, size_t len, int max);

/*
 * Hands over a FastCGI connection whose request is GET /api/events for user_id
 * logged in with session_id (the stream ends when that session is deleted, or
 * when it expires session_left_ms from now).
 * last->seq < 0 means "from now"; last->epoch 0 means the current epoch.
 * fd must be HUB_STREAM_FD_FLOOR or above.
 * The hub owns fd and the user's seat from here on, even on failure.
 * Returns 0, or -1 when the process holds max_streams already (fd is closed).
 */
int hub_adopt(struct hub *hub, int fd, uint16_t request_id, const char *user_id, int64_t session_id,
	      int64_t session_left_ms, const struct sse_id *last);

/* Streams open in this process right now. */
int hub_stream_count(struct hub *hub);

#endif
