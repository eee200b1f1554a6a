/*
 * events: what every process agrees on about the event log. Every change a user
 * sees is appended by the SQL function mjs.emit_batch() (or mjs.emit(), one
 * event) in the transaction that makes it (sql/functions/emit_batch.sql); this
 * module parses the notifications it sends (sql/functions/event_payload.sql)
 * and names the replay query.
 */
#ifndef MJS_COMMON_EVENTS_H
#define MJS_COMMON_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#define EVENTS_CHANNEL "mjs_events"
#define SESSIONS_CHANNEL "mjs_sessions"	/* payload: id of a deleted session */

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


#endif
