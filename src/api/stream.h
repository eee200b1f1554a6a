/*
 * stream: GET /api/events. Authenticated by the REST thread like any route, then
 * the FastCGI connection is detached from libfcgi and handed to the hub.
 */
#ifndef MJS_STREAM_H
#define MJS_STREAM_H

#include <stdint.h>

/*
 * Reads the replay point: the Last-Event-ID header, else ?last_event_id=.
 * Returns 0 with *out = -1 when neither is given, 0 with the seq, or -1 when the
 * value is not a non-negative integer.
 */
int stream_last_event_id(const char *header, const char *query, int64_t *out);

#endif
