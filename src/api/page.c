/*
 * page: the ?limit=&cursor= of list endpoints and their {"items","next"} answer.
 */
#include "api/page.h"
#include "api/handlers.h"
#include "common/util.h"

#include <stdio.h>
#include <string.h>

int page_parse_cursor(const char *cursor, char *usec, size_t usec_len, char *id)
{
	const char *us = strchr(cursor, '_');
	size_t n;

	if (!us)
		return -1;
	n = (size_t)(us - cursor);
	if (n == 0 || n >= usec_len || n > 18)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (cursor[i] < '0' || cursor[i] > '9')
			return -1;
	if (!util_is_uuid(us + 1, strlen(us + 1)))
		return -1;
	memcpy(usec, cursor, n);
	usec[n] = '\0';
	memcpy(id, us + 1, 36);
	id[36] = '\0';
	return 0;
}

int page_parse(struct call *c, struct page *p)
{
	char value[128];

	memset(p, 0, sizeof(*p));
	p->limit = LIST_LIMIT_DEFAULT;
	if (http_query_param(c->req->query, "limit", value, sizeof(value)) >= 0 &&
	    (util_parse_i64(value, &p->limit) < 0 || p->limit < 1 || p->limit > LIST_LIMIT_MAX)) {
		call_invalid(c, "limit must be an integer from 1 to 200");
		return -1;
	}
	if (http_query_param(c->req->query, "cursor", value, sizeof(value)) >= 0 && value[0]) {
		if (page_parse_cursor(value, p->usec, sizeof(p->usec), p->id) < 0) {
			call_invalid(c, "cursor is not one this server gave out");
			return -1;
		}
		p->after_usec = p->usec;
		p->after_id = p->id;
	}
	snprintf(p->limit_s, sizeof(p->limit_s), "%lld", (long long)p->limit + 1);
	return 0;
}

void page_respond(struct call *c, PGresult *res, const struct page *p)
{
	struct buf *b = &c->resp->body;
	int n = PQntuples(res);

	if (n == 0) {
		/* no user row: deleted since the session was checked */
		http_error(c->resp, 401, "unauthorized", "the session's user no longer exists");
		PQclear(res);
		return;
	}
	if (n == 1 && PQgetisnull(res, 0, 1))
		n = 0;		/* the user's row alone: an empty page */
	buf_reset(b);
	buf_puts(b, "{\"items\":[");
	for (int i = 0; i < n && i < p->limit; i++) {
		if (i)
			buf_puts(b, ",");
		buf_append(b, PQgetvalue(res, i, 1), (size_t)PQgetlength(res, i, 1));
	}
	buf_puts(b, "],\"next\":");
	if (n > p->limit)
		buf_printf(b, "\"%s\"}", PQgetvalue(res, (int)p->limit - 1, 2));
	else
		buf_puts(b, "null}");
	c->resp->status = 200;
	http_event_seq(c->resp, PQgetvalue(res, 0, 0));
	PQclear(res);
}
