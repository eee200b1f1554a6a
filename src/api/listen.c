/*
 * listen: LISTEN, notifications to streams, sessions (listen.h).
 */
#include "api/listen.h"
#include "api/delivery.h"
#include "common/db.h"
#include "common/events.h"
#include "common/log.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* every second, no backoff: after a failover tabs wait for this (1 connect/s per responder) */
#define LISTEN_RETRY_MS 1000
#define LISTEN_NOTIFY_BATCH 512	/* notifications taken at once (their big events read in one query) */

void listen_init(struct listener *l, const char *conninfo, int notify_fd)
{
	memset(l, 0, sizeof(*l));
	l->conninfo = conninfo;
	l->fd = -1;
	l->notify_fd = notify_fd;
	pthread_mutex_init(&l->lock, NULL);
}

void listen_lost(struct listener *l, struct streams *ss, const char *why, int64_t now_ms)
{
	int n;

	if (!l->db)
		return;
	n = (int)strcspn(why, "\n");	/* libpq's message: its first line */

	log_warn("hub lost its database connection: %.*s; streams stay open and catch up after reconnect", n, why);
	epoll_ctl(ss->epfd, EPOLL_CTL_DEL, l->fd, NULL);
	PQfinish(l->db);
	l->db = NULL;
	l->fd = -1;
	l->retry_at = now_ms + LISTEN_RETRY_MS;
}

void listen_close(struct listener *l)
{
	if (l->connecting) {
		pthread_join(l->connector, NULL);
		l->connecting = 0;
		PQfinish(l->made);
		l->made = NULL;
	}
	PQfinish(l->db);
	l->db = NULL;
	pthread_mutex_destroy(&l->lock);
}

/* A session was deleted (logout, revocation): end its streams in this process. */
static void session_ended(struct streams *ss, const char *payload)
{
	int64_t id;

	if (util_parse_i64(payload, &id) < 0)
		return;
	for (struct stream *s = ss->all, *next; s; s = next) {
		next = s->all_next;
		if (s->session_id == id)
			stream_end(ss, s, "session ended");
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
 * After the connection came back: a session deleted while it was down (logout,
 * revocation, a disabled user) sent its notification to nobody, so every open
 * stream's session is looked up again, and the streams of those that are gone
 * are ended. A failed query leaves the streams (the next reconnect checks again).
 */
static void recheck_sessions(struct listener *l, struct streams *ss)
{
	struct buf ids = { 0 };
	const char *params[1];
	int64_t *live = NULL;
	PGresult *res;
	int n = 0, ended = 0;

	if (!ss->all)
		return;
	for (struct stream *s = ss->all; s; s = s->all_next) {
		char id[24];
		snprintf(id, sizeof(id), "%lld", (long long)s->session_id);
		buf_array_add(&ids, id);
	}
	params[0] = buf_array_end(&ids);
	res = db_exec(l->db, SQL_LIVE_SESSIONS, 1, params);
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
	for (struct stream *s = ss->all, *next; s; s = next) {
		next = s->all_next;
		if (!bsearch(&s->session_id, live, (size_t)n, sizeof(*live), cmp_i64)) {
			stream_end(ss, s, "session ended while the database was unreachable");
			ended++;
		}
	}
	free(live);
	if (ended)
		log_info("hub ended streams=%d reason=\"their sessions ended while LISTEN was down\"", ended);
}

/*
 * The connector: connects, LISTENs on both channels and reads the epoch. A
 * primary's timeline stays while it runs, so the epoch read once is that of
 * every notification on this connection (a promoted standby cannot have
 * LISTENed; a demoted primary restarts and drops it).
 */
static void *connector_main(void *arg)
{
	struct listener *l = arg;
	PGconn *db = db_connect_as(l->conninfo, "mjs-api-listen");
	PGresult *res = NULL;
	int32_t epoch = 0;
	uint64_t one = 1;
	ssize_t w;

	if (db && (db_command(db, "LISTEN " EVENTS_CHANNEL, 0, NULL) < 0 ||
		   db_command(db, "LISTEN " SESSIONS_CHANNEL, 0, NULL) < 0 ||
		   !(res = db_exec(db, "SELECT mjs.epoch()", 0, NULL)) || PQntuples(res) != 1)) {
		PQfinish(db);
		db = NULL;
	}
	if (db)
		epoch = (int32_t)strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	pthread_mutex_lock(&l->lock);
	l->made = db;
	l->made_epoch = epoch;
	l->done = 1;
	pthread_mutex_unlock(&l->lock);
	w = write(l->notify_fd, &one, sizeof(one));
	(void)w;
	return NULL;
}

int listen_connect(struct listener *l, struct streams *ss, void *tag, int64_t now_ms)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };
	PGconn *db;
	int done;

	if (l->db)
		return 0;
	if (!l->connecting) {
		if (now_ms < l->retry_at)
			return -1;
		l->done = 0;
		l->made = NULL;
		if (pthread_create(&l->connector, NULL, connector_main, l) != 0) {
			log_error("hub cannot start its connector thread; retrying");
			l->retry_at = now_ms + LISTEN_RETRY_MS;
			return -1;
		}
		l->connecting = 1;
		return -1;
	}
	pthread_mutex_lock(&l->lock);
	done = l->done;
	db = l->made;
	l->made = NULL;
	pthread_mutex_unlock(&l->lock);
	if (!done)
		return -1;
	pthread_join(l->connector, NULL);
	l->connecting = 0;
	if (!db) {
		l->retry_at = now_ms + LISTEN_RETRY_MS;
		return -1;
	}
	l->epoch = l->made_epoch;
	PQsetnonblocking(db, 0);
	l->db = db;
	l->fd = PQsocket(db);
	epoll_ctl(ss->epfd, EPOLL_CTL_ADD, l->fd, &ev);
	log_info("hub listening channel=%s epoch=%d", EVENTS_CHANNEL, (int)l->epoch);
	/* notifications may have been missed while disconnected */
	recheck_sessions(l, ss);
	delivery_catch_up_all(ss);
	return 0;
}

/* One notification of a batch taken by listen_drain(). */
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
static PGresult *prefetch(struct listener *l, struct streams *ss, struct notice *batch, int n, int64_t now_ms)
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
	res = db_exec(l->db, SQL_EVENTS_BY_KEY, 2, params);
	buf_free(&users);
	buf_free(&seqs);
	if (res && PQntuples(res) != want) {
		PQclear(res);
		res = NULL;
	}
	if (!res && PQstatus(l->db) != CONNECTION_OK)
		listen_lost(l, ss, "event fetch failed", now_ms);
	return res;
}

void listen_drain(struct listener *l, struct streams *ss, int64_t now_ms)
{
	struct notice batch[LISTEN_NOTIFY_BATCH];

	while (l->db) {
		PGresult *rows;
		int n = 0;

		while (n < LISTEN_NOTIFY_BATCH && (batch[n].n = PQnotifies(l->db)) != NULL) {
			struct notice *b = &batch[n++];
			b->here = 0;
			b->fetch = -1;
			if (strcmp(b->n->relname, SESSIONS_CHANNEL) == 0)
				continue;
			if (events_parse_notify(b->n->extra, &b->note) < 0)
				log_warn("hub ignored a malformed notification");
			else
				b->here = streams_user(ss, b->note.user_id) != NULL;
		}
		if (n == 0)
			break;
		rows = prefetch(l, ss, batch, n, now_ms);
		for (int i = 0; i < n; i++) {
			struct notice *b = &batch[i];
			struct stream_user *u;
			/* looked up again: an earlier notice of the batch may have ended its last stream */
			if (strcmp(b->n->relname, SESSIONS_CHANNEL) == 0) {
				session_ended(ss, b->n->extra);
			} else if (b->here && (u = streams_user(ss, b->note.user_id)) != NULL) {
				int k = b->fetch;
				if (b->note.data_len > 0)
					delivery_event(ss, u, l->epoch, b->note.seq, b->note.type, b->note.type_len, b->note.data,
						       b->note.data_len);
				else if (rows && k >= 0 && !PQgetisnull(rows, k, 0))
					delivery_event(ss, u, l->epoch, b->note.seq, PQgetvalue(rows, k, 0),
						       (size_t)PQgetlength(rows, k, 0), PQgetvalue(rows, k, 1),
						       (size_t)PQgetlength(rows, k, 1));
				else
					delivery_missing(ss, u);
			}
			PQfreemem(b->n);
		}
		PQclear(rows);
	}
}
