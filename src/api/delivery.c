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

/* The epoch to write in s's ids: 0 (bare) for a client that sent a bare seq. */
static int32_t id_epoch(const struct stream *s, int32_t epoch)
{
	return s->bare_ids ? 0 : epoch;
}

void delivery_event(struct streams *ss, struct stream_user *u, int32_t epoch, int64_t seq, const char *type,
		    size_t type_len, const char *data, size_t data_len)
{
	int bare_made = 0;

	buf_reset(&ss->text);
	sse_format_event(&ss->text, epoch, seq, type, type_len, data, data_len);
	for (struct stream *s = u->streams, *next; s; s = next) {
		const struct buf *text = &ss->text;
		next = s->next;
		if (s->catching_up || seq <= s->last_seq)
			continue;
		if (s->bare_ids) {
			if (!bare_made) {
				buf_reset(&ss->text_bare);
				sse_format_event(&ss->text_bare, 0, seq, type, type_len, data, data_len);
				bare_made = 1;
			}
			text = &ss->text_bare;
		}
		if (seq == s->last_seq + 1 && stream_queue(ss, s, text->data, text->len) == 0) {
			s->last_seq = seq;
			s->last_epoch = epoch;
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

/*
 * Sends "reset" and continues from the head. why is "pruned" (the asked-for
 * events are no longer stored: the tab's state is older than the table) or
 * "history" (what the tab saw after some point was lost in a failover: seqs
 * may repeat, so the tab drops its copy). 0, or 1: no room yet.
 */
static int reset(struct streams *ss, struct stream *s, const struct replay_page *p, const char *why)
{
	char data[96];
	int n = snprintf(data, sizeof(data), "{\"seq\":%lld,\"epoch\":%d,\"reason\":\"%s\"}", (long long)p->head,
			 (int)p->head_epoch, why);

	log_info("stream reset user=%s from=%d.%lld head=%d.%lld reason=%s", s->user_id, (int)s->last_epoch,
		 (long long)s->last_seq, (int)p->head_epoch, (long long)p->head, why);
	buf_reset(&ss->text);
	sse_format_event(&ss->text, id_epoch(s, p->head_epoch), p->head, "reset", 5, data, (size_t)n);
	if (stream_queue_text(ss, s) != 0)
		return 1;
	s->last_seq = p->head;
	s->last_epoch = p->head_epoch;
	return 0;
}

/*
 * Is the stream's last event (last_epoch.last_seq) still part of the stored
 * history? A seq past the head is not (it was lost with its history). Else
 * its row carries its epoch; when the row is gone (pruned), the next one
 * tells, being written after it in the same epoch. When neither is stored,
 * the events were pruned, which the prune rule answers.
 */
static int same_history(const struct stream *s, const struct replay_page *p)
{
	if (s->last_seq == 0)
		return 1;	/* the tab saw no event: nothing to contradict */
	if (s->last_seq > p->head)
		return 0;
	if (p->after_epoch != 0)
		return p->after_epoch == s->last_epoch;
	if (p->n > 0 && p->rows[0].seq == s->last_seq + 1)
		return p->rows[0].epoch == s->last_epoch;
	return 1;
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
		sse_format_id(&ss->text, id_epoch(s, p->head_epoch), p->head);
		if (stream_queue_text(ss, s) != 0)
			return 1;
		s->last_seq = p->head;
		s->last_epoch = p->head_epoch;
		s->catching_up = 0;
		return 0;
	}
	if (s->last_epoch == 0)
		s->last_epoch = p->epoch;	/* a bare seq: the current epoch */
	if (!same_history(s, p))
		return reset(ss, s, p, "history");
	if (p->n == 0) {
		if (p->head == s->last_seq) {
			s->catching_up = 0;
			return 0;
		}
		return reset(ss, s, p, "pruned");
	}
	if (p->rows[0].seq != s->last_seq + 1)
		return reset(ss, s, p, "pruned");
	/* event by event while below the low-water mark; the rest on the next page */
	for (i = 0; i < p->n && !s->dead && stream_pending(s) < low_water(ss); i++) {
		const struct replay_row *r = &p->rows[i];
		buf_reset(&ss->text);
		sse_format_event(&ss->text, id_epoch(s, r->epoch), r->seq, r->type, r->type_len, r->data, r->data_len);
		if (stream_queue_text(ss, s) != 0)
			return 1;
		s->last_seq = r->seq;
		s->last_epoch = r->epoch;
	}
	if (i < p->n)
		return 1;
	if (p->n < p->limit && p->n == p->total)
		s->catching_up = 0;	/* the page held every event left, and all went out */
	return 0;
}
