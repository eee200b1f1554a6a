/*
 * events: what every process agrees on about the event log. Writers call the SQL
 * function mjs.emit() in the transaction that makes a change (see sql/001_init.sql);
 * this module parses the notifications it sends and names the replay query.
 */
#ifndef MJS_EVENTS_H
#define MJS_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#define EVENTS_CHANNEL "mjs_events"

/* A parsed notification. Pointers point into the payload; data may be empty (fetch the row). */
struct event_note {
	char user_id[37];
	int64_t seq;
	const char *type;
	size_t type_len;
	const char *data;
	size_t data_len;
};

/* Parses "<uuid> <seq> <type> <data>"; returns 0 or -1 for a malformed payload. */
int events_parse_notify(const char *payload, struct event_note *out);

/*
 * Rows after a seq for one user, oldest first, with the user's current seq in every
 * row (and alone in a row when there are no events: see the UNION).
 * $1 user id, $2 after seq, $3 limit. Columns: seq, type, data, head.
 */
#define EVENTS_SQL_AFTER \
	"SELECT e.seq, e.type, e.data::text, u.event_seq FROM mjs.events e " \
	"JOIN mjs.users u ON u.id = e.user_id " \
	"WHERE e.user_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3"

/* $1 user id. Columns: event_seq (the user's latest seq). */
#define EVENTS_SQL_HEAD "SELECT event_seq FROM mjs.users WHERE id = $1"

#endif
