/*
 * replay: the catch-up query of a stream (delivery.h): one page of its user's
 * stored events after the stream's last_seq, read in one snapshot with the
 * user's head, and handed to delivery_page().
 */
#ifndef MJS_API_REPLAY_H
#define MJS_API_REPLAY_H

#include <libpq-fe.h>

#include "api/stream.h"

/*
 * Reads and applies one page of at most limit events for s. Returns what
 * delivery_page() returned, or -1 when the query failed (the stream stays in
 * catch-up; the caller looks at the connection).
 */
int replay_page(PGconn *db, struct streams *ss, struct stream *s, int limit);

#endif
