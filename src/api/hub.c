/*
 * hub: the event loop of one mjs-api process (hub.h). One thread, one epoll:
 * the wake-up of REST threads handing over streams, the LISTEN connection
 * (listen.c) and every open stream (stream.c). Each turn:
 *   1. adopts handed-over streams, reads what epoll reports;
 *   2. delivers the notifications received (listen_drain, delivery.c);
 *   3. once a second: keepalives, expired sessions, stalled clients;
 *   4. process_dirty: writes every stream's queue, then gives catch-up its
 *      turns (replay.c): one page per stream in turn, at most
 *      HUB_CATCH_UP_SLICE_MS of queries per turn, so replays share the loop
 *      fairly and never hold up live events;
 *   5. delivers what the catch-up queries read meanwhile, frees closed streams.
 *
 * Only the hub thread touches a stream after hub_adopt(); REST threads only
 * push onto the pending list under the lock.
 */
#include "api/hub.h"
#include "api/delivery.h"
#include "api/listen.h"
#include "api/replay.h"
#include "api/seats.h"
#include "api/stream.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define HUB_MAX_EVENTS 256
#define HUB_CATCH_UP_SLICE_MS 5	/* catch-up queries per loop turn (process_dirty) */
#define HUB_CATCH_UP_PAUSE_MS 1000	/* after a catch-up query failed on a live connection */
#define HUB_KEEPALIVE_CHECK_MS 1000

struct hub {
	const struct config *cfg;
	pthread_t thread;
	int epfd;
	int wakefd;
	pthread_mutex_t lock;		/* guards pending and stopping */
	struct stream *pending;
	int stopping;
	struct seats seats;
	atomic_int nstreams;
	struct listener listener;
	struct streams streams;
	int64_t next_keepalive_check;
	int64_t catch_up_pause_until;	/* after a catch-up query failed on a live connection */
};

/* Sentinels for epoll data of the non-stream fds. */
static char wake_tag, db_tag;

int hub_seat_take(struct hub *h, const char *user_id)
{
	return seats_take(&h->seats, user_id);
}

void hub_seat_give(struct hub *h, const char *user_id)
{
	seats_give(&h->seats, user_id);
}

int hub_capped_users(struct hub *h, char *out, size_t len, int max)
{
	return seats_capped(&h->seats, out, len, max);
}

/* stream.c's on_close: one stream fewer, its seat free. */
static void stream_closed(void *ctx, const char *user_id)
{
	struct hub *h = ctx;

	atomic_fetch_sub(&h->nstreams, 1);
	seats_give(&h->seats, user_id);
}

/* A catch-up query failed on a live connection a moment ago: wait (keepalive_tick resumes). */
static int catch_up_paused(const struct hub *h)
{
	return h->catch_up_pause_until && util_now_ms() < h->catch_up_pause_until;
}

static void catch_up(struct hub *h, struct stream *s)
{
	PGconn *db = h->listener.db;

	if (replay_page(db, &h->streams, s, h->cfg->replay_batch) >= 0)
		return;
	if (PQstatus(db) != CONNECTION_OK)
		listen_lost(&h->listener, &h->streams, "catch-up query failed", util_now_ms());
	else
		h->catch_up_pause_until = util_now_ms() + HUB_CATCH_UP_PAUSE_MS;	/* not every turn */
}

static void adopt_pending(struct hub *h)
{
	struct stream *list;
	uint64_t v;
	ssize_t r = read(h->wakefd, &v, sizeof(v));

	(void)r;
	pthread_mutex_lock(&h->lock);
	list = h->pending;
	h->pending = NULL;
	pthread_mutex_unlock(&h->lock);
	while (list) {
		struct stream *s = list;
		list = s->link;
		s->link = NULL;
		if (streams_add(&h->streams, s, h->cfg->sse_retry_ms, util_now_ms()) < 0) {
			log_error("stream adopt failed user=%s", s->user_id);
			close(s->fd);
			stream_closed(h, s->user_id);
			free(s);
		}
	}
}

static void keepalive_tick(struct hub *h, int64_t now)
{
	static const char ka[] = ": keepalive\n\n";
	struct streams *ss = &h->streams;

	if (now < h->next_keepalive_check)
		return;
	h->next_keepalive_check = now + HUB_KEEPALIVE_CHECK_MS;
	for (struct stream *s = ss->all, *next; s; s = next) {
		next = s->all_next;
		if (now >= s->session_expires_ms) {
			stream_end(ss, s, "session expired");
			continue;
		}
		if (s->waiting_since && now - s->waiting_since >= h->cfg->stream_stall_timeout_ms) {
			log_info("stream dropped user=%s queued=%zu reason=\"the client took nothing for "
				 "%lld ms\"", s->user_id, stream_pending(s), (long long)(now - s->waiting_since));
			stream_kill(ss, s, "stalled");
			continue;
		}
		if (s->catching_up && !s->want_out && !catch_up_paused(h))
			stream_mark_dirty(ss, s);	/* catch-up paused after a failed query: go on */
		if (now - s->last_write_ms >= h->cfg->keepalive_interval_ms && stream_pending(s) == 0) {
			stream_queue(ss, s, ka, sizeof(ka) - 1);
			s->last_write_ms = now;
		}
	}
}

/*
 * Writes what is queued for every dirty stream, then gives catch-up its share:
 * one page per stream in turn, for at most HUB_CATCH_UP_SLICE_MS of queries per
 * loop turn. The streams whose turn did not come stay dirty, ahead of the
 * others, so the next turn starts with them (round robin), and in between the
 * loop delivers live notifications: many tabs replaying long histories at once
 * do not hold up the live tabs of the same responder, nor each other.
 */
static void process_dirty(struct hub *h)
{
	struct streams *ss = &h->streams;
	struct stream *list = ss->dirty, *turns = NULL, **tail = &turns;
	size_t low_water = h->cfg->stream_queue_max / 2;
	int64_t until;

	ss->dirty = NULL;
	/* 1. writes: cheap, never behind a query */
	while (list) {
		struct stream *s = list;
		list = s->link;
		s->dirty = 0;
		if (s->dead) {
			s->link = ss->dead;
			ss->dead = s;
			continue;
		}
		stream_flush(ss, s, util_now_ms());
		/* killed just now while not dirty: stream_kill put it on the dead list already */
		if (s->dead)
			continue;
		if (s->catching_up && h->listener.db && !catch_up_paused(h) && stream_pending(s) < low_water) {
			s->dirty = 1;	/* waits for its catch-up turn */
			s->link = NULL;
			*tail = s;
			tail = &s->link;
		}
	}
	/* 2. catch-up turns, within the slice */
	until = util_now_ms() + HUB_CATCH_UP_SLICE_MS;
	while (turns && util_now_ms() < until) {
		struct stream *s = turns;
		turns = s->link;
		s->dirty = 0;
		if (s->dead) {
			s->link = ss->dead;
			ss->dead = s;
			continue;
		}
		if (!h->listener.db || catch_up_paused(h))
			continue;	/* keepalive_tick marks it again once the database is back */
		catch_up(h, s);
		if (!s->dead)
			stream_flush(ss, s, util_now_ms());
		if (!s->dead && s->catching_up && !s->want_out)
			stream_mark_dirty(ss, s);
	}
	/* 3. the streams whose turn did not come go first next time (still dirty) */
	if (turns) {
		*tail = ss->dirty;
		ss->dirty = turns;
	}
}

static void shutdown_streams(struct hub *h)
{
	for (struct stream *s = h->streams.all, *next; s; s = next) {
		next = s->all_next;
		stream_end(&h->streams, s, "server shutting down");
	}
}

static void *hub_main(void *arg)
{
	struct hub *h = arg;
	struct epoll_event events[HUB_MAX_EVENTS];

	listen_connect(&h->listener, &h->streams, &db_tag, util_now_ms());
	for (;;) {
		int64_t now = util_now_ms();
		int timeout = h->streams.dirty ? 0 : 1000;
		int stopping;

		if (!h->listener.db)
			listen_connect(&h->listener, &h->streams, &db_tag, now);	/* starts or takes over */
		int n = epoll_wait(h->epfd, events, HUB_MAX_EVENTS, timeout);
		if (n < 0 && errno != EINTR) {
			log_error("hub epoll_wait failed: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			void *tag = events[i].data.ptr;
			if (tag == &wake_tag) {
				adopt_pending(h);
			} else if (tag == &db_tag) {
				if (h->listener.db && !PQconsumeInput(h->listener.db))
					listen_lost(&h->listener, &h->streams, PQerrorMessage(h->listener.db),
						    util_now_ms());
			} else {
				struct stream *s = tag;
				if (s->dead)
					continue;
				if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
					stream_readable(&h->streams, s);
				if (!s->dead && (events[i].events & EPOLLOUT))
					stream_mark_dirty(&h->streams, s);
			}
		}
		listen_drain(&h->listener, &h->streams, util_now_ms());
		keepalive_tick(h, util_now_ms());
		process_dirty(h);
		listen_drain(&h->listener, &h->streams, util_now_ms());	/* catch-up queries may have read some */
		streams_free_dead(&h->streams);
		pthread_mutex_lock(&h->lock);
		stopping = h->stopping;
		pthread_mutex_unlock(&h->lock);
		if (stopping)
			break;
	}
	shutdown_streams(h);
	process_dirty(h);
	streams_free_dead(&h->streams);
	return NULL;
}

struct hub *hub_start(const struct config *cfg)
{
	struct hub *h = calloc(1, sizeof(*h));
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &wake_tag };

	if (!h)
		return NULL;
	h->cfg = cfg;
	h->epfd = epoll_create1(EPOLL_CLOEXEC);
	h->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (h->epfd < 0 || h->wakefd < 0 || epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->wakefd, &ev) < 0) {
		log_error("hub start failed: %s", strerror(errno));
		goto fail;
	}
	pthread_mutex_init(&h->lock, NULL);
	seats_init(&h->seats, cfg->max_streams_per_user);
	listen_init(&h->listener, cfg->database, h->wakefd);
	streams_init(&h->streams, h->epfd, cfg->stream_queue_max, stream_closed, h);
	if (pthread_create(&h->thread, NULL, hub_main, h) != 0) {
		log_error("hub thread start failed");
		listen_close(&h->listener);
		seats_fini(&h->seats);
		pthread_mutex_destroy(&h->lock);
		goto fail;
	}
	return h;
fail:
	if (h->epfd >= 0)
		close(h->epfd);
	if (h->wakefd >= 0)
		close(h->wakefd);
	free(h);
	return NULL;
}

static void wake(struct hub *h)
{
	uint64_t one = 1;
	ssize_t w = write(h->wakefd, &one, sizeof(one));

	(void)w;
}

void hub_stop(struct hub *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->stopping = 1;
	pthread_mutex_unlock(&h->lock);
	wake(h);
	pthread_join(h->thread, NULL);
	/* streams handed over after the loop ended */
	while (h->pending) {
		struct stream *s = h->pending;
		h->pending = s->link;
		close(s->fd);
		free(s);
	}
	streams_fini(&h->streams);
	seats_fini(&h->seats);
	listen_close(&h->listener);
	pthread_mutex_destroy(&h->lock);
	close(h->epfd);
	close(h->wakefd);
	free(h);
}

int hub_adopt(struct hub *h, int fd, uint16_t request_id, const char *user_id, int64_t session_id,
	      int64_t session_left_ms, const struct sse_id *last)
{
	struct stream *s;
	int flags;

	if (atomic_fetch_add(&h->nstreams, 1) >= h->cfg->max_streams) {
		atomic_fetch_sub(&h->nstreams, 1);
		log_warn("stream refused user=%s reason=\"max_streams reached\" max_streams=%d", user_id,
			 h->cfg->max_streams);
		close(fd);
		seats_give(&h->seats, user_id);
		return -1;
	}
	flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	s = stream_new(fd, request_id, user_id, session_id, util_now_ms() + session_left_ms, last);
	if (!s) {
		stream_closed(h, user_id);
		close(fd);
		return -1;
	}
	pthread_mutex_lock(&h->lock);
	s->link = h->pending;
	h->pending = s;
	pthread_mutex_unlock(&h->lock);
	wake(h);
	return 0;
}

int hub_stream_count(struct hub *h)
{
	return atomic_load(&h->nstreams);
}
