/*
 * hub: one event loop per mjs-api process for the LISTEN connection and every
 * open SSE stream.
 *
 * Invariants:
 * - Only the hub thread touches a stream after hub_adopt(); REST threads only push
 *   onto the pending list under the lock.
 * - s->last_seq is the seq of the last event queued to the stream. An event is
 *   queued only if its seq is last_seq + 1, so a stream never sees a gap or a
 *   duplicate. Anything else (a jump, a notification without data, a replay, a
 *   lost LISTEN connection) switches the stream to catch-up, which reads
 *   mjs.events page by page while the stream's queue is below the low-water mark.
 * - A stream's queued bytes never exceed stream_queue_max, except for one event
 *   larger than that on an otherwise empty queue (so every stored event can be
 *   delivered). An event that does not fit switches the stream to catch-up: it
 *   waits in mjs.events, not in memory, and catch-up queues only while the
 *   queue is below the low-water mark (half of stream_queue_max), event by
 *   event. So no event, however large, and no backlog, however long, makes a
 *   stream drop and replay the same thing again. A tab that takes nothing for
 *   stream_stall_timeout while data waits is dropped, never allowed to delay
 *   others or to hold memory.
 * - All database queries (catch-up pages) happen in process_dirty(), after the
 *   notifications of an iteration are delivered and every queue is written: one
 *   page per stream in turn, at most HUB_CATCH_UP_SLICE_MS of them per
 *   iteration, so replays share the loop fairly and never hold up live events.
 */
#include "api/hub.h"
#include "api/sse.h"
#include "common/db.h"
#include "common/events.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define HUB_BUCKETS 4096
#define HUB_MAX_EVENTS 256
#define HUB_DB_RETRY_MS 1000
#define HUB_DB_RETRY_MAX_MS 10000
#define HUB_CATCH_UP_SLICE_MS 5	/* catch-up queries per loop iteration (process_dirty) */
#define HUB_NOTIFY_BATCH 512	/* notifications taken at once (their big events read in one query) */

struct user;

struct stream {
	int fd;
	uint16_t request_id;
	int64_t session_id;
	int64_t session_expires_ms;	/* monotonic; the stream ends with its session */
	int64_t last_seq;	/* last seq queued; -1: not known yet (start from head) */
	int catching_up;
	int want_out;		/* EPOLLOUT is registered */
	int dirty;		/* on the dirty list */
	int dead;
	int64_t last_write_ms;
	int64_t waiting_since;	/* monotonic ms since data waits without progress; 0: not */
	struct buf out;
	size_t out_off;		/* bytes of out already written */
	struct user *user;
	char user_id[37];
	struct stream *prev, *next;		/* the user's streams */
	struct stream *all_prev, *all_next;	/* every stream of the hub */
	struct stream *link;			/* pending, dirty or dead list */
};

struct user {
	char id[37];
	struct stream *streams;
	struct user *hnext;
};

/* A user's streams in this process, for max_streams_per_user (under hub.lock). */
struct seat {
	char id[37];
	int n;
	struct seat *next;
};

struct hub {
	const struct config *cfg;
	pthread_t thread;
	int epfd;
	int wakefd;
	pthread_mutex_t lock;		/* guards pending, stopping and seats */
	struct stream *pending;
	int stopping;
	struct seat *seats[HUB_BUCKETS];
	atomic_int nstreams;
	PGconn *db;
	int db_fd;
	int64_t db_retry_at;
	int db_retry_ms;
	struct user *buckets[HUB_BUCKETS];
	struct stream *all;
	struct stream *dirty;
	struct stream *dead;
	struct buf text;		/* event text being fanned out */
	int64_t next_keepalive_check;
	int64_t catch_up_pause_until;	/* after a catch-up query failed on a live connection */
};

/* Sentinels for epoll data of the non-stream fds. */
static char wake_tag, db_tag;

static size_t pending_bytes(const struct stream *s)
{
	return s->out.len - s->out_off;
}

static unsigned hash_id(const char *id)
{
	unsigned h = 2166136261u;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h % HUB_BUCKETS;
}

static struct user *user_find(struct hub *h, const char *id)
{
	for (struct user *u = h->buckets[hash_id(id)]; u; u = u->hnext)
		if (strcmp(u->id, id) == 0)
			return u;
	return NULL;
}

static struct user *user_get(struct hub *h, const char *id)
{
	struct user *u = user_find(h, id);
	unsigned b;

	if (u)
		return u;
	u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	memcpy(u->id, id, sizeof(u->id));
	b = hash_id(id);
	u->hnext = h->buckets[b];
	h->buckets[b] = u;
	return u;
}

static void user_drop_if_empty(struct hub *h, struct user *u)
{
	struct user **pp;

	if (u->streams)
		return;
	for (pp = &h->buckets[hash_id(u->id)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == u) {
			*pp = u->hnext;
			free(u);
			return;
		}
	}
}

int hub_seat_take(struct hub *h, const char *user_id)
{
	unsigned b = hash_id(user_id);
	struct seat *st;
	int rc = -1;

	pthread_mutex_lock(&h->lock);
	for (st = h->seats[b]; st && strcmp(st->id, user_id); st = st->next)
		;
	if (!st && (st = calloc(1, sizeof(*st)))) {
		snprintf(st->id, sizeof(st->id), "%s", user_id);
		st->next = h->seats[b];
		h->seats[b] = st;
	}
	if (!st)
		rc = -2;
	else if (st->n < h->cfg->max_streams_per_user) {
		st->n++;
		rc = 0;
	}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

void hub_seat_give(struct hub *h, const char *user_id)
{
	struct seat **pp, *st;

	pthread_mutex_lock(&h->lock);
	for (pp = &h->seats[hash_id(user_id)]; (st = *pp); pp = &st->next) {
		if (!strcmp(st->id, user_id)) {
			if (--st->n <= 0) {
				*pp = st->next;
				free(st);
			}
			break;
		}
	}
	pthread_mutex_unlock(&h->lock);
}

int hub_capped_users(struct hub *h, char *out, size_t len, int max)
{
	size_t used = 0;
	int count = 0;

	if (len < 3)
		return 0;
	out[used++] = '{';
	pthread_mutex_lock(&h->lock);
	for (int b = 0; b < HUB_BUCKETS && count < max; b++) {
		for (struct seat *st = h->seats[b]; st && count < max; st = st->next) {
			if (st->n < h->cfg->max_streams_per_user || used + 38 >= len)
				continue;
			used += (size_t)snprintf(out + used, len - used, "%s%s", count ? "," : "", st->id);
			count++;
		}
	}
	pthread_mutex_unlock(&h->lock);
	out[used++] = '}';
	out[used] = '\0';
	return count;
}

static void mark_dirty(struct hub *h, struct stream *s)
{
	if (s->dirty || s->dead)
		return;
	s->dirty = 1;
	s->link = h->dirty;
	h->dirty = s;
}

/* Closes a stream now; its memory is freed at the end of the loop iteration. */
static void stream_kill(struct hub *h, struct stream *s, const char *reason)
{
	if (s->dead)
		return;
	log_debug("stream closed user=%s fd=%d last_seq=%lld reason=\"%s\"", s->user_id, s->fd,
		  (long long)s->last_seq, reason);
	epoll_ctl(h->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	close(s->fd);
	s->dead = 1;
	if (s->prev)
		s->prev->next = s->next;
	else
		s->user->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	user_drop_if_empty(h, s->user);
	if (s->all_prev)
		s->all_prev->all_next = s->all_next;
	else
		h->all = s->all_next;
	if (s->all_next)
		s->all_next->all_prev = s->all_prev;
	buf_free(&s->out);
	if (!s->dirty) {
		s->link = h->dead;
		h->dead = s;
	}
	/* a dirty dead stream is freed when the dirty list reaches it */
	atomic_fetch_sub(&h->nstreams, 1);
	hub_seat_give(h, s->user_id);
}

/*
 * Queues SSE text for a stream, wrapped in FastCGI records. Returns 0; 1 when it
 * does not fit now (the queue holds other data and would exceed
 * stream_queue_max: the caller leaves it to catch-up); -1 when the stream was
 * closed. An empty queue takes any one text, however large.
 */
static int stream_queue(struct hub *h, struct stream *s, const char *text, size_t len)
{
	size_t queued = pending_bytes(s);

	if (queued > 0 && queued + len + FCGI_HEADER_LEN > h->cfg->stream_queue_max)
		return 1;
	if (s->out_off > 0 && s->out_off == s->out.len) {
		buf_reset(&s->out);
		s->out_off = 0;
	}
	if (sse_fcgi_stdout(&s->out, s->request_id, text, len) < 0) {
		stream_kill(h, s, "out of memory");
		return -1;
	}
	mark_dirty(h, s);
	return 0;
}

static void stream_set_out(struct hub *h, struct stream *s, int want)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0), .data.ptr = s };

	if (s->want_out == want)
		return;
	if (epoll_ctl(h->epfd, EPOLL_CTL_MOD, s->fd, &ev) == 0)
		s->want_out = want;
}

static void stream_flush(struct hub *h, struct stream *s)
{
	while (pending_bytes(s) > 0) {
		ssize_t n = write(s->fd, s->out.data + s->out_off, pending_bytes(s));
		if (n > 0) {
			s->out_off += (size_t)n;
			s->last_write_ms = util_now_ms();
			s->waiting_since = 0;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!s->waiting_since)
				s->waiting_since = util_now_ms();
			stream_set_out(h, s, 1);
			return;
		}
		stream_kill(h, s, n < 0 ? strerror(errno) : "write returned 0");
		return;
	}
	/* drained: give large buffers back, keep small ones for the next event */
	if (s->out.cap > 65536)
		buf_free(&s->out);
	else
		buf_reset(&s->out);
	s->out_off = 0;
	stream_set_out(h, s, 0);
}

static void db_lost(struct hub *h, const char *why)
{
	if (!h->db)
		return;
	log_warn("hub lost its database connection: %s; streams stay open and catch up after reconnect",
		 why);
	epoll_ctl(h->epfd, EPOLL_CTL_DEL, h->db_fd, NULL);
	PQfinish(h->db);
	h->db = NULL;
	h->db_retry_at = util_now_ms() + h->db_retry_ms;
}

static int queue_text(struct hub *h, struct stream *s)
{
	return stream_queue(h, s, h->text.data, h->text.len);
}

/*
 * Sends "reset" (the asked-for events are gone) and continues from head.
 * Returns 0, or 1 when it waits for room in the queue.
 */
static int stream_reset(struct hub *h, struct stream *s, int64_t head)
{
	char data[64];
	int n = snprintf(data, sizeof(data), "{\"seq\":%lld}", (long long)head);

	log_info("stream reset user=%s from_seq=%lld head=%lld reason=\"events no longer stored\"",
		 s->user_id, (long long)s->last_seq, (long long)head);
	buf_reset(&h->text);
	sse_format_event(&h->text, head, "reset", 5, data, (size_t)n);
	if (queue_text(h, s) != 0)
		return 1;
	s->last_seq = head;
	return 0;
}

/*
 * A page holds at most $3 events and, past its first, $4 bytes of data (what
 * the queue has room for: a page of large events is not read for one or two
 * of them); total is how many the page had before the byte cap. The sizes are
 * the stored ones (pg_column_size: event data is stored uncompressed, sql/migrations/001_baseline.sql),
 * read from the TOAST pointers, so what is left out is never read.
 */
static const char SQL_CATCH_UP[] =
	"SELECT u.event_seq, e.seq, e.type, e.data::text, e.total FROM mjs.users u "
	"LEFT JOIN LATERAL (SELECT x.seq, x.type, x.data, x.total FROM ("
	"  SELECT w.seq, w.type, w.data, count(*) OVER () AS total,"
	"    sum(pg_column_size(w.data)) OVER (ORDER BY w.seq) AS upto, row_number() OVER (ORDER BY w.seq) AS rn"
	"  FROM (SELECT seq, type, data FROM mjs.events WHERE user_id = u.id AND seq > $2 ORDER BY seq LIMIT $3) w) x"
	"  WHERE x.upto <= $4 OR x.rn = 1) e ON true "
	"WHERE u.id = $1 ORDER BY e.seq";

/*
 * One page of catch-up: the user's head and the events after last_seq, in one
 * snapshot. Returns 0; 1 when the next event waits for room in the queue (the
 * stream goes on once nginx has taken what is queued); -1 when the database
 * failed (the stream stays in catch-up and resumes after reconnect, or after
 * the pause of a failed query on a live connection).
 */
static int catch_up_page(struct hub *h, struct stream *s)
{
	char after[24], limit[16], room[24];
	const char *params[4] = { s->user_id, after, limit, room };
	int64_t head, batch = h->cfg->replay_batch;
	size_t low_water = h->cfg->stream_queue_max / 2;
	PGresult *res;
	int n, i, rc = 0;

	snprintf(after, sizeof(after), "%lld", (long long)(s->last_seq < 0 ? 0 : s->last_seq));
	snprintf(limit, sizeof(limit), "%lld", (long long)batch);
	snprintf(room, sizeof(room), "%zu", low_water > pending_bytes(s) ? low_water - pending_bytes(s) : 0);
	res = db_exec(h->db, SQL_CATCH_UP, 4, params);
	if (!res) {
		if (PQstatus(h->db) != CONNECTION_OK)
			db_lost(h, "catch-up query failed");
		else
			h->catch_up_pause_until = util_now_ms() + HUB_DB_RETRY_MS;	/* not every turn */
		return -1;
	}
	n = PQntuples(res);
	if (n == 0) {
		PQclear(res);
		stream_kill(h, s, "user no longer exists");
		return 0;
	}
	head = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	if (s->last_seq < 0) {
		/* a stream without Last-Event-ID starts at the head */
		buf_reset(&h->text);
		sse_format_id(&h->text, head);
		rc = queue_text(h, s) == 0 ? 0 : 1;
		if (rc == 0) {
			s->last_seq = head;
			s->catching_up = 0;
		}
	} else if (PQgetisnull(res, 0, 1)) {
		if (head == s->last_seq)
			s->catching_up = 0;
		else
			rc = stream_reset(h, s, head);	/* pruned, or an id from elsewhere */
	} else if (strtoll(PQgetvalue(res, 0, 1), NULL, 10) != s->last_seq + 1) {
		rc = stream_reset(h, s, head);
	} else {
		/* event by event while below the low-water mark; the rest on the next page */
		for (i = 0; i < n && !s->dead && pending_bytes(s) < low_water; i++) {
			int64_t seq = strtoll(PQgetvalue(res, i, 1), NULL, 10);
			buf_reset(&h->text);
			sse_format_event(&h->text, seq, PQgetvalue(res, i, 2), (size_t)PQgetlength(res, i, 2),
					 PQgetvalue(res, i, 3), (size_t)PQgetlength(res, i, 3));
			if (queue_text(h, s) != 0) {
				rc = 1;
				break;
			}
			s->last_seq = seq;
		}
		if (i < n)
			rc = 1;
		else if (n < batch && n == atoi(PQgetvalue(res, 0, 4)))
			s->catching_up = 0;	/* the page held every event left, and all went out */
	}
	PQclear(res);
	return rc;
}

/* A catch-up query failed on a live connection a moment ago: wait (keepalive_tick resumes). */
static int catch_up_paused(const struct hub *h)
{
	return h->catch_up_pause_until && util_now_ms() < h->catch_up_pause_until;
}

/*
 * Delivers one notification to the streams of its user in this process. An
 * event too big for a notification comes without data: its row, when it was
 * read (prefetch()), is passed as type and data; without one the streams read
 * it by catch-up.
 */
static void deliver(struct hub *h, const struct event_note *note, struct user *u, const char *type,
		    size_t type_len, const char *data, size_t data_len)
{
	if (note->data_len > 0) {
		type = note->type;
		type_len = note->type_len;
		data = note->data;
		data_len = note->data_len;
	} else if (!data) {
		for (struct stream *s = u->streams; s; s = s->next) {
			s->catching_up = 1;
			mark_dirty(h, s);
		}
		return;
	}
	buf_reset(&h->text);
	sse_format_event(&h->text, note->seq, type, type_len, data, data_len);
	for (struct stream *s = u->streams, *next; s; s = next) {
		next = s->next;
		if (s->catching_up || note->seq <= s->last_seq)
			continue;
		if (note->seq == s->last_seq + 1 && queue_text(h, s) == 0) {
			s->last_seq = note->seq;
		} else if (!s->dead) {
			/* a gap, or no room now: read what is missing from the table */
			s->catching_up = 1;
			mark_dirty(h, s);
		}
	}
}

/* Ends a stream cleanly (best effort: what the socket takes now), then closes it. */
static void stream_end(struct hub *h, struct stream *s, const char *reason)
{
	if (sse_fcgi_end(&s->out, s->request_id) == 0)
		stream_flush(h, s);
	stream_kill(h, s, reason);
}

static void shutdown_streams(struct hub *h)
{
	for (struct stream *s = h->all, *next; s; s = next) {
		next = s->all_next;
		stream_end(h, s, "server shutting down");
	}
}

/* A session was deleted (logout, revocation): end its streams in this process. */
static void session_ended(struct hub *h, const char *payload)
{
	int64_t id;

	if (util_parse_i64(payload, &id) < 0)
		return;
	for (struct stream *s = h->all, *next; s; s = next) {
		next = s->all_next;
		if (s->session_id == id)
			stream_end(h, s, "session ended");
	}
}

/* One notification of a batch taken by drain_notifies(). */
struct notice {
	PGnotify *n;
	struct event_note note;	/* parsed, for mjs_events */
	int here;		/* its user has streams in this process */
	int fetch;		/* row of the prefetch, or -1 */
};

static const char SQL_EVENTS_BY_KEY[] =
	"SELECT e.type, e.data::text FROM unnest($1::uuid[], $2::bigint[]) WITH ORDINALITY AS k(user_id, seq, n) "
	"LEFT JOIN LATERAL (SELECT type, data FROM mjs.events WHERE user_id = k.user_id AND seq = k.seq) e ON true "
	"ORDER BY k.n";

/*
 * The rows of the batch's events that came without data and have streams here,
 * read in one query (a burst of finished replies is hundreds of big events at
 * once; one query each would hold up every stream). Row k of the result is the
 * notice whose fetch index is k; NULL when none was needed or the query failed.
 */
static PGresult *prefetch(struct hub *h, struct notice *batch, int n)
{
	struct buf users = { 0 }, seqs = { 0 };
	const char *params[2];
	PGresult *res;
	int want = 0;

	for (int i = 0; i < n; i++) {
		char seq[24];
		if (!batch[i].here || batch[i].note.data_len > 0)
			continue;
		batch[i].fetch = want++;
		snprintf(seq, sizeof(seq), "%lld", (long long)batch[i].note.seq);
		buf_array_add(&users, batch[i].note.user_id);
		buf_array_add(&seqs, seq);
	}
	if (want == 0)
		return NULL;
	params[0] = buf_array_end(&users);
	params[1] = buf_array_end(&seqs);
	res = db_exec(h->db, SQL_EVENTS_BY_KEY, 2, params);
	buf_free(&users);
	buf_free(&seqs);
	if (res && PQntuples(res) != want) {
		PQclear(res);
		res = NULL;
	}
	if (!res && PQstatus(h->db) != CONNECTION_OK)
		db_lost(h, "event fetch failed");
	return res;
}

static void drain_notifies(struct hub *h)
{
	struct notice batch[HUB_NOTIFY_BATCH];

	while (h->db) {
		PGresult *rows;
		int n = 0;

		while (n < HUB_NOTIFY_BATCH && (batch[n].n = PQnotifies(h->db)) != NULL) {
			struct notice *b = &batch[n++];
			b->here = 0;
			b->fetch = -1;
			if (strcmp(b->n->relname, SESSIONS_CHANNEL) == 0)
				continue;
			if (events_parse_notify(b->n->extra, &b->note) < 0)
				log_warn("hub ignored a malformed notification");
			else
				b->here = user_find(h, b->note.user_id) != NULL;
		}
		if (n == 0)
			break;
		rows = prefetch(h, batch, n);
		for (int i = 0; i < n; i++) {
			struct notice *b = &batch[i];
			struct user *u;
			/* looked up again: an earlier notice of the batch may have ended its last stream */
			if (strcmp(b->n->relname, SESSIONS_CHANNEL) == 0) {
				session_ended(h, b->n->extra);
			} else if (b->here && (u = user_find(h, b->note.user_id)) != NULL) {
				int k = b->fetch;
				if (rows && k >= 0 && !PQgetisnull(rows, k, 0))
					deliver(h, &b->note, u, PQgetvalue(rows, k, 0),
						(size_t)PQgetlength(rows, k, 0), PQgetvalue(rows, k, 1),
						(size_t)PQgetlength(rows, k, 1));
				else
					deliver(h, &b->note, u, NULL, 0, NULL, 0);
			}
			PQfreemem(b->n);
		}
		PQclear(rows);
	}
}

static const char SQL_LIVE_SESSIONS[] =
	"SELECT s.id FROM mjs.sessions s JOIN mjs.users u ON u.id = s.user_id "
	"WHERE s.id = ANY($1::bigint[]) AND s.expires_at > now() AND NOT u.disabled ORDER BY s.id";

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * After the LISTEN connection came back: a session deleted while it was down
 * (logout, revocation, a disabled user) sent its notification to nobody, so
 * every open stream's session is looked up again, and the streams of those
 * that are gone are ended. A failed query leaves the streams (the next
 * reconnect checks again).
 */
static void recheck_sessions(struct hub *h)
{
	struct buf ids = { 0 };
	const char *params[1];
	int64_t *live = NULL;
	PGresult *res;
	int n = 0, ended = 0;

	if (!h->all)
		return;
	for (struct stream *s = h->all; s; s = s->all_next) {
		char id[24];
		snprintf(id, sizeof(id), "%lld", (long long)s->session_id);
		buf_array_add(&ids, id);
	}
	params[0] = buf_array_end(&ids);
	res = db_exec(h->db, SQL_LIVE_SESSIONS, 1, params);
	buf_free(&ids);
	if (!res)
		return;
	n = PQntuples(res);
	live = malloc(sizeof(*live) * (size_t)(n ? n : 1));
	if (!live) {
		PQclear(res);
		return;
	}
	for (int i = 0; i < n; i++)
		live[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
	PQclear(res);
	for (struct stream *s = h->all, *next; s; s = next) {
		next = s->all_next;
		if (!bsearch(&s->session_id, live, (size_t)n, sizeof(*live), cmp_i64)) {
			stream_end(h, s, "session ended while the database was unreachable");
			ended++;
		}
	}
	free(live);
	if (ended)
		log_info("hub ended streams=%d reason=\"their sessions ended while LISTEN was down\"", ended);
}

static void db_connect_listen(struct hub *h)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &db_tag };
	PGconn *db = db_connect(h->cfg->database);

	if (!db || db_command(db, "LISTEN " EVENTS_CHANNEL, 0, NULL) < 0 ||
	    db_command(db, "LISTEN " SESSIONS_CHANNEL, 0, NULL) < 0) {
		PQfinish(db);
		h->db_retry_at = util_now_ms() + h->db_retry_ms;
		h->db_retry_ms = h->db_retry_ms * 2 > HUB_DB_RETRY_MAX_MS ? HUB_DB_RETRY_MAX_MS
									   : h->db_retry_ms * 2;
		return;
	}
	PQsetnonblocking(db, 0);
	h->db = db;
	h->db_fd = PQsocket(db);
	h->db_retry_ms = HUB_DB_RETRY_MS;
	epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->db_fd, &ev);
	log_info("hub listening channel=%s", EVENTS_CHANNEL);
	/* notifications may have been missed while disconnected */
	recheck_sessions(h);
	for (struct stream *s = h->all; s; s = s->all_next) {
		s->catching_up = 1;
		mark_dirty(h, s);
	}
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
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = s };
		list = s->link;
		s->link = NULL;
		s->user = user_get(h, s->user_id);
		if (!s->user || epoll_ctl(h->epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0) {
			log_error("stream adopt failed user=%s", s->user_id);
			close(s->fd);
			hub_seat_give(h, s->user_id);
			free(s);
			atomic_fetch_sub(&h->nstreams, 1);
			continue;
		}
		s->next = s->user->streams;
		if (s->next)
			s->next->prev = s;
		s->user->streams = s;
		s->all_next = h->all;
		if (h->all)
			h->all->all_prev = s;
		h->all = s;
		s->last_write_ms = util_now_ms();
		buf_reset(&h->text);
		sse_format_open(&h->text, h->cfg->sse_retry_ms);
		queue_text(h, s);
		s->catching_up = 1;
		log_debug("stream opened user=%s fd=%d last_event_id=%lld", s->user_id, s->fd,
			  (long long)s->last_seq);
	}
}

static void stream_readable(struct hub *h, struct stream *s)
{
	char scratch[512];

	for (;;) {
		ssize_t n = read(s->fd, scratch, sizeof(scratch));
		if (n > 0)
			continue;	/* nginx sends nothing more; ignore stray records */
		if (n == 0) {
			stream_kill(h, s, "client went away");
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			stream_kill(h, s, strerror(errno));
		return;
	}
}

static void keepalive_tick(struct hub *h, int64_t now)
{
	static const char ka[] = ": keepalive\n\n";

	if (now < h->next_keepalive_check)
		return;
	h->next_keepalive_check = now + 1000;
	for (struct stream *s = h->all, *next; s; s = next) {
		next = s->all_next;
		if (now >= s->session_expires_ms) {
			stream_end(h, s, "session expired");
			continue;
		}
		if (s->waiting_since && now - s->waiting_since >= h->cfg->stream_stall_timeout_ms) {
			log_info("stream dropped user=%s queued=%zu reason=\"the client took nothing for "
				 "%lld ms\"", s->user_id, pending_bytes(s), (long long)(now - s->waiting_since));
			stream_kill(h, s, "stalled");
			continue;
		}
		if (s->catching_up && !s->want_out && !catch_up_paused(h))
			mark_dirty(h, s);	/* catch-up paused after a failed query: go on */
		if (now - s->last_write_ms >= h->cfg->keepalive_interval_ms && pending_bytes(s) == 0) {
			stream_queue(h, s, ka, sizeof(ka) - 1);
			s->last_write_ms = now;
		}
	}
}

/*
 * Writes what is queued for every dirty stream, then gives catch-up its share:
 * one page per stream in turn, for at most HUB_CATCH_UP_SLICE_MS of queries per
 * loop iteration. The streams whose turn did not come stay dirty, ahead of the
 * others, so the next iteration starts with them (round robin), and in between
 * the loop delivers live notifications: many tabs replaying long histories at
 * once do not hold up the live tabs of the same responder, nor each other.
 */
static void process_dirty(struct hub *h)
{
	struct stream *list = h->dirty, *turns = NULL, **tail = &turns;
	size_t low_water = h->cfg->stream_queue_max / 2;
	int64_t until;

	h->dirty = NULL;
	/* 1. writes: cheap, never behind a query */
	while (list) {
		struct stream *s = list;
		list = s->link;
		s->dirty = 0;
		if (s->dead) {
			s->link = h->dead;
			h->dead = s;
			continue;
		}
		stream_flush(h, s);
		/* killed just now while not dirty: stream_kill put it on the dead list already */
		if (s->dead)
			continue;
		if (s->catching_up && h->db && !catch_up_paused(h) && pending_bytes(s) < low_water) {
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
			s->link = h->dead;
			h->dead = s;
			continue;
		}
		if (!h->db || catch_up_paused(h))
			continue;	/* keepalive_tick marks it again once the database is back */
		catch_up_page(h, s);
		if (!s->dead)
			stream_flush(h, s);
		if (!s->dead && s->catching_up && !s->want_out)
			mark_dirty(h, s);
	}
	/* 3. the streams whose turn did not come go first next time (still dirty) */
	if (turns) {
		*tail = h->dirty;
		h->dirty = turns;
	}
}

static void free_dead(struct hub *h)
{
	while (h->dead) {
		struct stream *s = h->dead;
		h->dead = s->link;
		free(s);
	}
}

static void *hub_main(void *arg)
{
	struct hub *h = arg;
	struct epoll_event events[HUB_MAX_EVENTS];

	db_connect_listen(h);
	for (;;) {
		int64_t now = util_now_ms();
		int timeout = h->dirty ? 0 : 1000;
		int stopping;

		if (!h->db && now >= h->db_retry_at)
			db_connect_listen(h);
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
				if (h->db && !PQconsumeInput(h->db))
					db_lost(h, PQerrorMessage(h->db));
			} else {
				struct stream *s = tag;
				if (s->dead)
					continue;
				if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
					stream_readable(h, s);
				if (!s->dead && (events[i].events & EPOLLOUT))
					mark_dirty(h, s);
			}
		}
		drain_notifies(h);
		keepalive_tick(h, util_now_ms());
		process_dirty(h);
		drain_notifies(h);	/* catch-up queries may have read notifications */
		free_dead(h);
		pthread_mutex_lock(&h->lock);
		stopping = h->stopping;
		pthread_mutex_unlock(&h->lock);
		if (stopping)
			break;
	}
	shutdown_streams(h);
	process_dirty(h);
	free_dead(h);
	return NULL;
}

struct hub *hub_start(const struct config *cfg)
{
	struct hub *h = calloc(1, sizeof(*h));
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &wake_tag };

	if (!h)
		return NULL;
	h->cfg = cfg;
	h->db_retry_ms = HUB_DB_RETRY_MS;
	h->epfd = epoll_create1(EPOLL_CLOEXEC);
	h->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (h->epfd < 0 || h->wakefd < 0 || epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->wakefd, &ev) < 0) {
		log_error("hub start failed: %s", strerror(errno));
		goto fail;
	}
	pthread_mutex_init(&h->lock, NULL);
	if (pthread_create(&h->thread, NULL, hub_main, h) != 0) {
		log_error("hub thread start failed");
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
	for (int i = 0; i < HUB_BUCKETS; i++) {
		while (h->buckets[i]) {
			struct user *u = h->buckets[i];
			h->buckets[i] = u->hnext;
			free(u);
		}
		while (h->seats[i]) {
			struct seat *st = h->seats[i];
			h->seats[i] = st->next;
			free(st);
		}
	}
	PQfinish(h->db);
	buf_free(&h->text);
	pthread_mutex_destroy(&h->lock);
	close(h->epfd);
	close(h->wakefd);
	free(h);
}

int hub_adopt(struct hub *h, int fd, uint16_t request_id, const char *user_id, int64_t session_id,
	      int64_t session_left_ms, int64_t last_event_id)
{
	struct stream *s;
	int flags;

	if (atomic_fetch_add(&h->nstreams, 1) >= h->cfg->max_streams) {
		atomic_fetch_sub(&h->nstreams, 1);
		log_warn("stream refused user=%s reason=\"max_streams reached\" max_streams=%d", user_id,
			 h->cfg->max_streams);
		close(fd);
		hub_seat_give(h, user_id);
		return -1;
	}
	flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	s = calloc(1, sizeof(*s));
	if (!s) {
		atomic_fetch_sub(&h->nstreams, 1);
		close(fd);
		hub_seat_give(h, user_id);
		return -1;
	}
	s->fd = fd;
	s->request_id = request_id;
	s->session_id = session_id;
	s->session_expires_ms = util_now_ms() + session_left_ms;
	s->last_seq = last_event_id;
	memcpy(s->user_id, user_id, 36);
	s->user_id[36] = '\0';
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
