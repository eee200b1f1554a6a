/*
 * events_get: GET /api/events (events_get.h). Everything after the hand-off
 * lives in the hub (hub.c and the modules it runs).
 */
#include "api/events_get.h"
#include "api/handlers.h"
#include "api/hub.h"
#include "common/log.h"

#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int events_last_event_id(const char *header, const char *query, struct sse_id *out)
{
	char value[48];

	out->epoch = 0;
	out->seq = -1;
	if (header && *header)
		return sse_parse_id(header, out);
	if (http_query_param(query, "last_event_id", value, sizeof(value)) >= 0)
		return sse_parse_id(value, out);
	/* given but unreadable (too long for any id, bad escapes): an error, never "from the head" */
	return http_query_has(query, "last_event_id") ? -1 : 0;
}

void events_get(struct call *c)
{
	FCGX_Request *fr = c->fcgi;
	struct sse_id last;
	int fd, seat;

	if (call_session(c) < 0)	/* the hub takes the session's id and expiry */
		return;
	if (events_last_event_id(c->req->last_event_id, c->req->query, &last) < 0) {
		http_error(c->resp, 400, "bad_request", "Last-Event-ID must be an event id: SEQ or EPOCH.SEQ, in digits");
		return;
	}
	if (hub_stream_count(c->app->hub) >= c->app->cfg->max_streams) {
		http_error(c->resp, 503, "unavailable", "too many open streams on this server; retry later");
		return;
	}
	seat = hub_seat_take(c->app->hub, c->user_id);
	if (seat == -2) {
		http_error(c->resp, 503, "unavailable", "the server cannot open more streams now; retry later");
		return;
	}
	if (seat < 0) {
		call_over_cap(c, "too_many_streams", LIMIT_RETRY_STREAM_S,
			      "this account has %d live connections to this server (the limit is %d); "
			      "close some tabs", c->app->cfg->max_streams_per_user,
			      c->app->cfg->max_streams_per_user);
		return;
	}
	/* a stream's fd must leave the low ones to libfcgi's select() (hub.h) */
	fd = fcntl(fr->ipcFd, F_DUPFD_CLOEXEC, HUB_STREAM_FD_FLOOR);
	if (fd < 0) {
		hub_seat_give(c->app->hub, c->user_id);
		log_warn("stream refused user=%s reason=\"no descriptor at %d or above: %s\"", c->user_id,
			 HUB_STREAM_FD_FLOOR, strerror(errno));
		http_error(c->resp, 503, "unavailable", "the server cannot open more streams now; retry later");
		return;
	}
	/*
	 * Detach: free libfcgi's streams without writing END_REQUEST or closing, and
	 * forget the fd so FCGX_Accept_r accepts a new connection next time.
	 */
	uint16_t request_id = (uint16_t)fr->requestId;
	int low = fr->ipcFd;
	FCGX_Free(fr, 0);
	fr->ipcFd = -1;
	close(low);
	hub_adopt(c->app->hub, fd, request_id, c->user_id, c->session_id, c->session_left_ms, &last);
	c->resp->status = 0;	/* the hub answers from here on */
}
