/*
 * delivery: what a stream is sent, live and by catch-up (delivery.h).
 */
#include "api/delivery.h"
#include "api/sse.h"
#include "common/log.h"

#include <stdio.h>

void delivery_missing(struct streams *ss, struct stream_user *u)
{
	for (struct stream *s = u->streams; s; s = s->next) {
		s->catching_up = 1;
		stream_mark_dirty(ss, s);
	}
}

void delivery_catch_up_all(struct streams *ss)
{
	for (struct stream *s = ss->all; s; s = s->all_next) {
		s->catching_up = 1;
		stream_mark_dirty(ss, s);
	}
}

void delivery_event(struct streams *ss, struct stream_user *u, int64_t seq, const char *type, size_t type_len,
		    const char *data, size_t data_len)
{
	buf_reset(&ss->text);
	sse_format_event(&ss->text, seq, type, type_len, data, data_len);
	for (struct stream *s = u->streams, *next; s; s = next) {
		next = s->next;
		if (s->catching_up || seq <= s->last_seq)
			continue;
		if (seq == s->last_seq + 1 && stream_queue_text(ss, s) == 0) {
			s->last_seq = seq;
		} else if (!s->dead) {
			/* a gap, or no room now: read what is missing from the table */
			s->catching_up = 1;
			stream_mark_dirty(ss, s);
		}
	}
}

static size_t low_water(const struct streams *ss)
{
	return ss->queue_max / 2;
}

size_t delivery_page_room(const struct streams *ss, const struct stream *s)
{
	size_t pending = stream_pending(s);

	return low_water(ss) > pending ? low_water(ss) - pending : 0;
}

/* Sends "reset" (the asked-for events are gone) and continues from head. 0, or 1: no room yet. */
static int reset(struct streams *ss, struct stream *s, int64_t head)
{
	char data[64];
	int n = snprintf(data, sizeof(data), "{\"seq\":%lld}", (long long)head);

	log_info("stream reset user=%s from_seq=%lld head=%lld reason=\"events no longer stored\"", s->user_id,
		 (long long)s->last_seq, (long long)head);
	buf_reset(&ss->text);
	sse_format_event(&ss->text, head, "reset", 5, data, (size_t)n);
	if (stream_queue_text(ss, s) != 0)
		return 1;
	s->last_seq = head;
	return 0;
}

int delivery_page(struct streams *ss, struct stream *s, const struct replay_page *p)
{
	int i;

	if (!p->user_found) {
		stream_kill(ss, s, "user no longer exists");
		return 0;
	}
	if (s->last_seq < 0) {
		/* a stream without Last-Event-ID starts at the head */
		buf_reset(&ss->text);
		sse_format_id(&ss->text, p->head);
		if (stream_queue_text(ss, s) != 0)
			return 1;
		s->last_seq = p->head;
		s->catching_up = 0;
		return 0;
	}
	if (p->n == 0) {
		if (p->head == s->last_seq) {
			s->catching_up = 0;
			return 0;
		}
		return reset(ss, s, p->head);	/* pruned, or an id from elsewhere */
	}
	if (p->rows[0].seq != s->last_seq + 1)
		return reset(ss, s, p->head);
	/* event by event while below the low-water mark; the rest on the next page */
	for (i = 0; i < p->n && !s->dead && stream_pending(s) < low_water(ss); i++) {
		const struct replay_row *r = &p->rows[i];
		buf_reset(&ss->text);
		sse_format_event(&ss->text, r->seq, r->type, r->type_len, r->data, r->data_len);
		if (stream_queue_text(ss, s) != 0)
			return 1;
		s->last_seq = r->seq;
	}
	if (i < p->n)
		return 1;
	if (p->n < p->limit && p->n == p->total)
		s->catching_up = 0;	/* the page held every event left, and all went out */
	return 0;
}
