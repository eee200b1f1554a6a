/*
 * stream: the registry of open streams and their queues (stream.h).
 */
#include "api/stream.h"
#include "api/sse.h"
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static unsigned hash_id(const char *id)
{
	return util_hash(id) % STREAM_BUCKETS;
}

void streams_init(struct streams *ss, int epfd, size_t queue_max, void (*on_close)(void *, const char *),
		  void *ctx)
{
	memset(ss, 0, sizeof(*ss));
	ss->epfd = epfd;
	ss->queue_max = queue_max;
	ss->on_close = on_close;
	ss->on_close_ctx = ctx;
}

void streams_fini(struct streams *ss)
{
	for (int i = 0; i < STREAM_BUCKETS; i++) {
		while (ss->buckets[i]) {
			struct stream_user *u = ss->buckets[i];
			ss->buckets[i] = u->hnext;
			free(u);
		}
	}
	buf_free(&ss->text);
	buf_free(&ss->text_bare);
}

struct stream_user *streams_user(struct streams *ss, const char *id)
{
	for (struct stream_user *u = ss->buckets[hash_id(id)]; u; u = u->hnext)
		if (strcmp(u->id, id) == 0)
			return u;
	return NULL;
}

static struct stream_user *user_get(struct streams *ss, const char *id)
{
	struct stream_user *u = streams_user(ss, id);
	unsigned b;

	if (u)
		return u;
	u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	snprintf(u->id, sizeof(u->id), "%s", id);
	b = hash_id(id);
	u->hnext = ss->buckets[b];
	ss->buckets[b] = u;
	return u;
}

static void user_drop_if_empty(struct streams *ss, struct stream_user *u)
{
	struct stream_user **pp;

	if (u->streams)
		return;
	for (pp = &ss->buckets[hash_id(u->id)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == u) {
			*pp = u->hnext;
			free(u);
			return;
		}
	}
}

struct stream *stream_new(int fd, uint16_t request_id, const char *user_id, int64_t session_id,
			  int64_t session_expires_ms, const struct sse_id *last)
{
	struct stream *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->fd = fd;
	s->request_id = request_id;
	s->session_id = session_id;
	s->session_expires_ms = session_expires_ms;
	s->last_seq = last->seq;
	s->last_epoch = last->epoch;
	s->bare_ids = last->seq >= 0 && last->epoch == 0;
	snprintf(s->user_id, sizeof(s->user_id), "%s", user_id);
	return s;
}

int streams_add(struct streams *ss, struct stream *s, int retry_ms, int64_t now_ms)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = s };

	s->user = user_get(ss, s->user_id);
	if (!s->user)
		return -1;
	if (epoll_ctl(ss->epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0) {
		user_drop_if_empty(ss, s->user);
		return -1;
	}
	s->next = s->user->streams;
	if (s->next)
		s->next->prev = s;
	s->user->streams = s;
	s->all_next = ss->all;
	if (ss->all)
		ss->all->all_prev = s;
	ss->all = s;
	s->last_write_ms = now_ms;
	buf_reset(&ss->text);
	sse_format_open(&ss->text, retry_ms);
	stream_queue_text(ss, s);
	s->catching_up = 1;
	log_debug("stream opened user=%s fd=%d last_event_id=%d.%lld", s->user_id, s->fd, (int)s->last_epoch,
		  (long long)s->last_seq);
	return 0;
}

size_t stream_pending(const struct stream *s)
{
	return s->out.len - s->out_off;
}

void stream_mark_dirty(struct streams *ss, struct stream *s)
{
	if (s->dirty || s->dead)
		return;
	s->dirty = 1;
	s->link = ss->dirty;
	ss->dirty = s;
}

void stream_kill(struct streams *ss, struct stream *s, const char *reason)
{
	if (s->dead)
		return;
	log_debug("stream closed user=%s fd=%d last_seq=%lld reason=\"%s\"", s->user_id, s->fd,
		  (long long)s->last_seq, reason);
	epoll_ctl(ss->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	close(s->fd);
	s->dead = 1;
	if (s->prev)
		s->prev->next = s->next;
	else
		s->user->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	user_drop_if_empty(ss, s->user);
	s->user = NULL;
	if (s->all_prev)
		s->all_prev->all_next = s->all_next;
	else
		ss->all = s->all_next;
	if (s->all_next)
		s->all_next->all_prev = s->all_prev;
	buf_free(&s->out);
	if (!s->dirty) {
		s->link = ss->dead;
		ss->dead = s;
	}
	/* a dirty dead stream is moved to the dead list when the dirty list reaches it */
	if (ss->on_close)
		ss->on_close(ss->on_close_ctx, s->user_id);
}

int stream_queue(struct streams *ss, struct stream *s, const char *text, size_t len)
{
	size_t queued = stream_pending(s);

	if (queued > 0 && queued + len + FCGI_HEADER_LEN > ss->queue_max)
		return 1;
	if (s->out_off > 0 && s->out_off == s->out.len) {
		buf_reset(&s->out);
		s->out_off = 0;
	}
	if (sse_fcgi_stdout(&s->out, s->request_id, text, len) < 0) {
		stream_kill(ss, s, "out of memory");
		return -1;
	}
	stream_mark_dirty(ss, s);
	return 0;
}

int stream_queue_text(struct streams *ss, struct stream *s)
{
	return stream_queue(ss, s, ss->text.data, ss->text.len);
}

static void set_want_out(struct streams *ss, struct stream *s, int want)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0), .data.ptr = s };

	if (s->want_out == want)
		return;
	if (epoll_ctl(ss->epfd, EPOLL_CTL_MOD, s->fd, &ev) == 0)
		s->want_out = want;
}

void stream_flush(struct streams *ss, struct stream *s, int64_t now_ms)
{
	while (stream_pending(s) > 0) {
		ssize_t n = write(s->fd, s->out.data + s->out_off, stream_pending(s));
		if (n > 0) {
			s->out_off += (size_t)n;
			s->last_write_ms = now_ms;
			s->waiting_since = 0;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!s->waiting_since)
				s->waiting_since = now_ms;
			set_want_out(ss, s, 1);
			return;
		}
		stream_kill(ss, s, n < 0 ? strerror(errno) : "write returned 0");
		return;
	}
	/* drained: an idle tab keeps no buffer (a malloc per event costs less
	 * than the 272 bytes each of thousands of open tabs would hold) */
	buf_free(&s->out);
	s->out_off = 0;
	set_want_out(ss, s, 0);
}

void stream_readable(struct streams *ss, struct stream *s)
{
	char scratch[512];

	for (;;) {
		ssize_t n = read(s->fd, scratch, sizeof(scratch));
		if (n > 0)
			continue;	/* nginx sends nothing more; ignore stray records */
		if (n == 0) {
			stream_kill(ss, s, "client went away");
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			stream_kill(ss, s, strerror(errno));
		return;
	}
}

void stream_end(struct streams *ss, struct stream *s, const char *reason)
{
	if (sse_fcgi_end(&s->out, s->request_id) == 0)
		stream_flush(ss, s, util_now_ms());
	stream_kill(ss, s, reason);
}

void streams_free_dead(struct streams *ss)
{
	while (ss->dead) {
		struct stream *s = ss->dead;
		ss->dead = s->link;
		free(s);
	}
}
