/*
 * events_get: GET /api/events, the REST half of a stream. The request is
 * authenticated like any route; then its FastCGI connection is detached from
 * libfcgi and handed to the hub (hub.h), which answers from there on.
 */
#ifndef MJS_API_EVENTS_GET_H
#define MJS_API_EVENTS_GET_H

#include <stdint.h>

#include "api/sse.h"

/*
 * Reads the replay point: the Last-Event-ID header, else ?last_event_id=.
 * Returns 0 with out->seq = -1 when neither is given, 0 with the id, or -1
 * when the value is not an id ("SEQ" or "EPOCH.SEQ", sse_parse_id()).
 */
int events_last_event_id(const char *header, const char *query, struct sse_id *out);

#endif
