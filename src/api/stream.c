/*
 * stream: the SSE endpoint's REST half. Everything after the hand-off lives in hub.c.
 */
#include "api/stream.h"
#include "api/handlers.h"
#include "api/hub.h"
#include "common/log.h"

#include <fcgiapp.h>
#include <string.h>

int stream_last_event_id(const char *header, const char *query, int64_t *out)
{
	char value[32];

	*out = -1;
	if (header && *header)
		return util_parse_i64(header, out);
	if (query && http_query_param(query, "last_event_id", value, sizeof(value)) >= 0)
		return util_parse_i64(value, out);
	return 0;
}

void stream_open(struct call *c)
{
	FCGX_Request *fr = c->fcgi;
	int64_t last;
	int fd;

	if (stream_last_event_id(c->req->last_event_id, c->req->query, &last) < 0) {
		http_error(c->resp, 400, "bad_request", "Last-Event-ID must be a non-negative integer");
		return;
	}
	if (hub_stream_count(c->app->hub) >= c->app->cfg->max_streams) {
		http_error(c->resp, 503, "unavailable", "too many open streams on this server; retry later");
		return;
	}
	/*
	 * Detach: free libfcgi's streams without writing END_REQUEST or closing, and
	 * forget the fd so FCGX_Accept_r accepts a new connection next time.
	 */
	fd = fr->ipcFd;
	uint16_t request_id = (uint16_t)fr->requestId;
	FCGX_Free(fr, 0);
	fr->ipcFd = -1;
	hub_adopt(c->app->hub, fd, request_id, c->user_id, c->session_id, c->session_left_ms, last);
	c->resp->status = 0;	/* the hub answers from here on */
}
