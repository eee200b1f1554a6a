/*
 * events: notification payload parsing. Payloads come from mjs.emit() only, but
 * are still checked field by field: a malformed one is dropped, never trusted.
 */
#include "common/events.h"
#include "common/util.h"

#include <string.h>

int events_parse_notify(const char *payload, struct event_note *out)
{
	const char *p = payload, *sp;
	int64_t seq = 0;

	if (strlen(p) < 38 || !util_is_uuid(p, 36) || p[36] != ' ')
		return -1;
	memcpy(out->user_id, p, 36);
	out->user_id[36] = '\0';
	p += 37;
	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (seq > (INT64_MAX - 9) / 10)
			return -1;
		seq = seq * 10 + (*p - '0');
	}
	if (*p != ' ' || seq <= 0)
		return -1;
	p++;
	sp = strchr(p, ' ');
	if (!sp || sp == p)
		return -1;
	out->seq = seq;
	out->type = p;
	out->type_len = (size_t)(sp - p);
	out->data = sp + 1;
	out->data_len = strlen(sp + 1);
	return 0;
}
