/*
 * sse_load: a load client for GET /api/events, for the benchmarks in docs/BENCHMARKS.md.
 *
 * One thread, one epoll set, non-blocking sockets: it opens users × tabs SSE streams to
 * nginx on the loopback, decodes HTTP/1.1 (chunked or not) and the SSE framing, and for
 * every stream checks that the per-user seq goes 1, 2, 3, … without gaps or repeats.
 * For the event types it measures (message.delta and conversation.updated unless told
 * otherwise) it finds every "@T<19 digits>" stamp in the event's data — the CLOCK_REALTIME
 * nanoseconds at which the writer made the text — and records arrival − stamp in a
 * log-linear histogram, so memory does not grow with the number of samples.
 *
 * Invariants:
 * - Memory is bounded: per stream a header buffer (HEAD_MAX), one line and one event's
 *   data (LINE_MAX each); a stream that exceeds a bound is closed as a protocol error.
 * - Time is bounded: opening all tabs has a deadline (-o), the measured run has one (-d),
 *   and the whole program has one (the sum plus a margin); it stops by itself.
 * - It talks only to 127.0.0.1 or ::1.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "hist.h"
#include "lbuf.h"
#include "sse_decode.h"

#define HEAD_MAX (16 * 1024)		/* response headers */
#define TYPE_MAX SSE_TYPE_MAX		/* event type names */
#define NTYPES_MAX 32			/* distinct event types counted */
#define STAMP_DIGITS 19
#define MAX_TABS 200000
#define EPOLL_BATCH 1024
#define READ_CHUNK (256 * 1024)

#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL

/* ------------------------------------------------------------------ state */

enum phase {
	PH_QUEUED,	/* waiting for its turn to connect */
	PH_CONNECTING,	/* connect() in progress */
	PH_SENDING,	/* writing the request */
	PH_HEADERS,	/* reading the response head */
	PH_BODY,	/* streaming */
	PH_WAITING,	/* closed; reconnects at retry_at */
	PH_FAILED,	/* closed for good */
};

struct user {
	char *cookie;		/* the Cookie header value */
	char *name;		/* the line as it is: with -N, the user's channel */
	int64_t max_seq;	/* highest seq any of its tabs saw */
};

struct tab {
	int fd;
	int user;
	enum phase phase;
	int opened_once;
	int64_t started_ns;	/* monotonic, this attempt */
	int64_t retry_at_ns;
	char *req;		/* the request, while it is being sent */
	size_t req_len, req_off;
	struct lbuf head;
	struct sse_decoder dec;	/* the body (sse_decode.h); its callbacks get the tab */
	struct load *load;
	/* continuity */
	int have_seq;
	int64_t last_seq;
	int retry_ms;
};

struct type_count {
	char name[TYPE_MAX];
	uint64_t n;
};

struct opts {
	const char *host;
	int port;
	const char *cookies;
	int tabs;
	double duration_s;
	long long max_events;
	double open_timeout_s;
	double conn_timeout_s;
	double idle_exit_s;
	double rate;			/* new connections per second, 0 = unlimited */
	int max_connecting;
	int reconnect;
	int reconnect_ms;		/* 0: use the server's retry */
	const char *ready_file;
	const char *path;
	const char *publish;		/* -N: nchan, the publisher's path prefix */
	const char *measure;		/* comma-separated event types */
	int verbose;
	double write_rate;		/* renames per second, 0: no writer */
	const char *targets;		/* "cookie conversation-id" lines */
	double settle_s;		/* quiet time at the end of the run */
	double interval_s;		/* -I: a latency line per interval on stdout (0: none) */
};

struct measured {
	char name[TYPE_MAX];
	struct hist h;
	struct hist interval;		/* since the last -I line */
};

/*
 * The change writer (-W): renames conversations at a fixed rate over one keep-alive
 * connection, putting "@T<now ns>" in each title, so the conversation.updated events
 * the tabs receive measure change-to-tab latency. One request at a time; a tick that
 * finds the previous request still open is counted late and skipped.
 */
struct target {
	char *cookie;
	char *conversation;
};

enum writer_state { W_OFF, W_DOWN, W_CONNECTING, W_IDLE, W_BUSY };

struct writer {
	enum writer_state state;
	int fd;
	int pending;			/* send as soon as the connection is up */
	struct target *targets;
	int ntargets, next_target;
	int64_t period_ns, next_ns, sent_ns;
	char *req;
	size_t req_len, req_off;
	struct lbuf resp;
	uint64_t sent, ok, errors, late, connects;
	struct hist rtt;
};

#define WRITER_ID UINT32_MAX

struct load {
	struct opts o;
	struct writer w;
	struct hist second;		/* every measured stamp of the last second (-v progress) */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int ep;
	struct user *users;
	int nusers;
	struct tab *tabs;
	int ntabs;
	int *queue;			/* ring of tab indexes to connect */
	int qhead, qlen;
	double tokens;			/* rate limiter */
	int64_t tokens_at_ns;
	int connecting;			/* tabs in CONNECTING, SENDING or HEADERS */
	int streaming;			/* tabs in BODY */
	int settled;			/* tabs that opened once or failed for good */
	/* figures */
	uint64_t opened, failed, closed_early, reconnects, proto_errors;
	uint64_t status[600];
	uint64_t events, lost, gaps, duplicates, resets, no_id, comments, stamps_bad;
	struct type_count types[NTYPES_MAX];
	int ntypes;
	uint64_t types_other;
	struct measured *measured;
	int nmeasured;
	int64_t start_ns, ready_ns, end_ns, last_event_ns, first_event_ns;
	int ready;
	char *readbuf;
	char host_header[80];		/* "127.0.0.1:8080" or "[::1]:8080" */
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static int64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("sse_load: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

/* ------------------------------------------------------------------ setup */

/* Fills the address; refuses anything but the loopback addresses 127.0.0.1 and ::1. */
static int resolve_loopback(struct load *L)
{
	char host[64];
	size_t n = strlen(L->o.host);

	snprintf(L->host_header, sizeof(L->host_header), strchr(L->o.host, ':') && L->o.host[0] != '[' ?
		 "[%s]:%d" : "%s:%d", L->o.host, L->o.port);
	struct sockaddr_in *a4 = (struct sockaddr_in *)&L->addr;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&L->addr;

	if (n >= sizeof(host))
		return -1;
	if (n >= 2 && L->o.host[0] == '[' && L->o.host[n - 1] == ']') {
		memcpy(host, L->o.host + 1, n - 2);
		host[n - 2] = 0;
	} else {
		memcpy(host, L->o.host, n + 1);
	}
	memset(&L->addr, 0, sizeof(L->addr));
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		if (ntohl(a4->sin_addr.s_addr) != INADDR_LOOPBACK)
			return -1;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)L->o.port);
		L->addrlen = sizeof(*a4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		if (memcmp(&a6->sin6_addr, &in6addr_loopback, sizeof(in6addr_loopback)))
			return -1;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)L->o.port);
		L->addrlen = sizeof(*a6);
		return 0;
	}
	return -1;
}

/* The Cookie header value for a cookie-file line: a bare token or a whole "k=v" list. */
static char *cookie_header_dup(const char *token)
{
	char *c = NULL;

	if (strchr(token, '='))
		return strdup(token);
	if (asprintf(&c, "mjs_session=%s", token) < 0)
		return NULL;
	return c;
}

/*
 * Reads one user per line: a bare session token becomes "mjs_session=<token>", a line
 * with '=' is taken as the whole Cookie value. Blank lines and '#' comments are skipped.
 */
static int read_cookies(struct load *L)
{
	FILE *f = fopen(L->o.cookies, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = -1, alloc = 0;

	if (!f) {
		fprintf(stderr, "sse_load: %s: %s\n", L->o.cookies, strerror(errno));
		return -1;
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		char *s = line, *e = line + n;
		struct user *u;

		while (s < e && isspace((unsigned char)*s))
			s++;
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
		*e = 0;
		if (s == e || *s == '#')
			continue;
		if (e - s > 512 || strpbrk(s, "\r\n")) {
			fprintf(stderr, "sse_load: %s: cookie line too long\n", L->o.cookies);
			goto out;
		}
		if (L->nusers == alloc) {
			int na = alloc ? alloc * 2 : 64;
			struct user *nu = realloc(L->users, sizeof(*nu) * (size_t)na);
			if (!nu)
				goto out;
			L->users = nu;
			alloc = na;
		}
		u = &L->users[L->nusers];
		memset(u, 0, sizeof(*u));
		u->cookie = cookie_header_dup(s);
		u->name = strdup(s);
		if (!u->cookie || !u->name)
			goto out;
		L->nusers++;
	}
	if (L->nusers == 0) {
		fprintf(stderr, "sse_load: %s: no cookies\n", L->o.cookies);
		goto out;
	}
	rc = 0;
out:
	free(line);
	fclose(f);
	return rc;
}

/* Sets up the measured event types from a comma-separated list. */
static int parse_measured(struct load *L)
{
	const char *p = L->o.measure;

	while (*p) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		struct measured *m;

		if (n > 0) {
			if (n >= TYPE_MAX)
				return -1;
			m = realloc(L->measured, sizeof(*m) * (size_t)(L->nmeasured + 1));
			if (!m)
				return -1;
			L->measured = m;
			m = &L->measured[L->nmeasured++];
			memset(m, 0, sizeof(*m));
			memcpy(m->name, p, n);
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

static void raise_fd_limit(int need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if ((long long)rl.rlim_cur < (long long)need)
		die("%d tabs need %d file descriptors but the limit is %llu (ulimit -Hn)",
		    need - 64, need, (unsigned long long)rl.rlim_cur);
}

/* ------------------------------------------------------------------ connections */

static void queue_push(struct load *L, int i)
{
	L->queue[(L->qhead + L->qlen) % L->ntabs] = i;
	L->qlen++;
	L->tabs[i].phase = PH_QUEUED;
}

static void tab_reset_parser(struct tab *t)
{
	free(t->req);
	t->req = NULL;
	lbuf_free(&t->head);
	sse_decoder_start(&t->dec, 0, -1);
	sse_decoder_free(&t->dec);
}

static int in_handshake(enum phase p)
{
	return p == PH_CONNECTING || p == PH_SENDING || p == PH_HEADERS;
}

/*
 * Ends the tab's connection. A stream that was open and ends while the run goes on
 * counts as closed early; one that never opened counts as failed. With -R the tab
 * reconnects after the server's retry (sending Last-Event-ID, so continuity holds).
 */
static void tab_close(struct load *L, int i, const char *why)
{
	struct tab *t = &L->tabs[i];
	int was_open = t->phase == PH_BODY;
	int64_t now = mono_ns();

	if (t->fd >= 0) {
		epoll_ctl(L->ep, EPOLL_CTL_DEL, t->fd, NULL);
		close(t->fd);
		t->fd = -1;
	}
	if (in_handshake(t->phase))
		L->connecting--;
	if (was_open)
		L->streaming--;
	if (t->dec.retry_ms)
		t->retry_ms = t->dec.retry_ms;	/* the server's retry: holds for the next attempts */
	tab_reset_parser(t);
	if (was_open)
		L->closed_early++;
	else
		L->failed++;
	if (L->o.verbose > 1 || (L->o.verbose && L->failed + L->closed_early <= 10))
		fprintf(stderr, "sse_load: tab %d (user %d) %s: %s\n", i, t->user,
			was_open ? "closed early" : "failed", why);
	if (L->o.reconnect && !stop_requested) {
		int ms = L->o.reconnect_ms ? L->o.reconnect_ms : t->retry_ms;
		t->phase = PH_WAITING;
		t->retry_at_ns = now + (int64_t)ms * NS_PER_MS;
		return;
	}
	t->phase = PH_FAILED;
	if (!t->opened_once)
		L->settled++;
}

static void tab_connect(struct load *L, int i)
{
	struct tab *t = &L->tabs[i];
	struct epoll_event ev;
	size_t cap = 256 + strlen(L->o.path) + strlen(L->host_header) + strlen(L->users[t->user].cookie) +
		     strlen(L->users[t->user].name);
	int n, one = 1;

	t->started_ns = mono_ns();
	t->fd = socket(L->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->fd < 0) {
		t->phase = PH_CONNECTING;
		L->connecting++;
		tab_close(L, i, strerror(errno));
		return;
	}
	setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	t->req = malloc(cap);
	if (!t->req)
		die("out of memory");
	if (L->o.publish)
		/* nchan: the user's channel under -P; no session, no seq to resume from */
		n = snprintf(t->req, cap,
			     "GET %s%s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n"
			     "Cache-Control: no-cache\r\n\r\n",
			     L->o.path, L->users[t->user].name, L->host_header);
	else if (t->have_seq)
		n = snprintf(t->req, cap,
			     "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n"
			     "Cache-Control: no-cache\r\nCookie: %s\r\nLast-Event-ID: %" PRId64 "\r\n\r\n",
			     L->o.path, L->host_header, L->users[t->user].cookie, t->last_seq);
	else
		n = snprintf(t->req, cap,
			     "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n"
			     "Cache-Control: no-cache\r\nCookie: %s\r\n\r\n",
			     L->o.path, L->host_header, L->users[t->user].cookie);
	if (n < 0 || (size_t)n >= cap)
		die("request too long");
	t->req_len = (size_t)n;
	t->req_off = 0;
	t->phase = PH_CONNECTING;
	L->connecting++;
	if (connect(t->fd, (struct sockaddr *)&L->addr, L->addrlen) < 0 && errno != EINPROGRESS) {
		tab_close(L, i, strerror(errno));
		return;
	}
	ev.events = EPOLLOUT;
	ev.data.u32 = (uint32_t)i;
	if (epoll_ctl(L->ep, EPOLL_CTL_ADD, t->fd, &ev) < 0)
		tab_close(L, i, strerror(errno));
}

/* Writes the request once the socket is connected; then waits for the response. */
static void tab_writable(struct load *L, int i)
{
	struct tab *t = &L->tabs[i];
	struct epoll_event ev;

	if (t->phase == PH_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			tab_close(L, i, strerror(err));
			return;
		}
		t->phase = PH_SENDING;
	}
	while (t->req_off < t->req_len) {
		ssize_t n = send(t->fd, t->req + t->req_off, t->req_len - t->req_off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR)
				continue;
			tab_close(L, i, strerror(errno));
			return;
		}
		t->req_off += (size_t)n;
	}
	free(t->req);
	t->req = NULL;
	t->phase = PH_HEADERS;
	ev.events = EPOLLIN;
	ev.data.u32 = (uint32_t)i;
	if (epoll_ctl(L->ep, EPOLL_CTL_MOD, t->fd, &ev) < 0)
		tab_close(L, i, strerror(errno));
}

/* ------------------------------------------------------------------ SSE */

static void count_type(struct load *L, const char *name)
{
	for (int i = 0; i < L->ntypes; i++)
		if (!strcmp(L->types[i].name, name)) {
			L->types[i].n++;
			return;
		}
	if (L->ntypes < NTYPES_MAX) {
		snprintf(L->types[L->ntypes].name, TYPE_MAX, "%s", name);
		L->types[L->ntypes++].n = 1;
		return;
	}
	L->types_other++;
}

/* Records arrival − stamp for every "@T<19 digits>" in data. */
static void measure_stamps(struct load *L, struct measured *m, const char *data, size_t len,
			   int64_t arrival_ns)
{
	const char *p = data, *end = data + len;

	while ((p = memchr(p, '@', (size_t)(end - p))) != NULL) {
		int64_t stamp = 0;
		int k;

		if (end - p < 2 + STAMP_DIGITS || p[1] != 'T') {
			p++;
			continue;
		}
		for (k = 0; k < STAMP_DIGITS && isdigit((unsigned char)p[2 + k]); k++)
			stamp = stamp * 10 + (p[2 + k] - '0');
		if (k < STAMP_DIGITS || (p + 2 + k < end && isdigit((unsigned char)p[2 + k]))) {
			L->stamps_bad++;
			p++;
			continue;
		}
		hist_add(&m->h, (arrival_ns - stamp) / 1000);
		if (L->o.interval_s > 0)
			hist_add(&m->interval, (arrival_ns - stamp) / 1000);
		if (L->o.verbose)
			hist_add(&L->second, (arrival_ns - stamp) / 1000);
		p += 2 + STAMP_DIGITS;
	}
}

/* When the bytes a decoder is fed arrived (set before each feed). */
static int64_t feed_arrival_ns;

static void on_comment(void *ctx)
{
	((struct tab *)ctx)->load->comments++;
}

/*
 * An event is complete (blank line). Events with data move the stream's seq: the next
 * one expected is last + 1, a jump is a gap (events lost), a step back a duplicate.
 * A bare "id: N" (what the server sends first when no Last-Event-ID was given) sets
 * the starting point.
 */
static void on_event(void *ctx, const struct sse_event *ev)
{
	struct tab *t = ctx;
	struct load *L = t->load;
	struct user *u = &L->users[t->user];

	if (!ev->has_data) {
		if (ev->has_id) {
			if (t->have_seq && ev->id > t->last_seq) {
				L->lost += (uint64_t)(ev->id - t->last_seq);
				L->gaps++;
			}
			if (!t->have_seq || ev->id > t->last_seq)
				t->last_seq = ev->id;
			t->have_seq = 1;
		}
		goto out;
	}
	L->events++;
	L->last_event_ns = mono_ns();
	if (!L->first_event_ns)
		L->first_event_ns = L->last_event_ns;
	count_type(L, ev->type);
	if (L->o.publish) {
		/* nchan's ids are its own ("time:tag"): no seq to check, only the stamps */
	} else if (!ev->has_id) {
		L->no_id++;
	} else if (!strcmp(ev->type, "reset")) {
		L->resets++;
		t->last_seq = ev->id;
		t->have_seq = 1;
	} else if (!t->have_seq) {
		t->last_seq = ev->id;
		t->have_seq = 1;
	} else if (ev->id == t->last_seq + 1) {
		t->last_seq = ev->id;
	} else if (ev->id > t->last_seq + 1) {
		L->lost += (uint64_t)(ev->id - t->last_seq - 1);
		L->gaps++;
		t->last_seq = ev->id;
	} else {
		L->duplicates++;
	}
	for (int k = 0; k < L->nmeasured; k++)
		if (!strcmp(L->measured[k].name, ev->type)) {
			measure_stamps(L, &L->measured[k], ev->data, ev->data_len, feed_arrival_ns);
			break;
		}
out:
	if (t->have_seq && t->last_seq > u->max_seq)
		u->max_seq = t->last_seq;
}

/* Case-insensitive search for a header line "name:" in the head; returns its value. */
static const char *header_value(const char *head, const char *name, size_t *len)
{
	size_t nl = strlen(name);
	const char *p = strstr(head, "\r\n");

	while (p) {
		const char *line = p + 2, *eol = strstr(line, "\r\n");
		if (!eol || eol == line)
			return NULL;
		if ((size_t)(eol - line) > nl && !strncasecmp(line, name, nl) && line[nl] == ':') {
			const char *v = line + nl + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			*len = (size_t)(eol - v);
			return v;
		}
		p = eol;
	}
	return NULL;
}

/*
 * Accumulates the response head. Returns the number of bytes of p it used, or -1 when
 * the stream must close (bad status or bad head). When the head is complete the tab
 * moves to BODY and the caller feeds the rest of p as body.
 */
static ssize_t head_bytes(struct load *L, int i, const char *p, size_t n)
{
	struct tab *t = &L->tabs[i];
	size_t before = t->head.len, used;
	const char *end, *v;
	size_t vlen;
	int status, chunked;

	/* a read may hold the head and much of the body (a replay): take at most HEAD_MAX */
	size_t take = n < HEAD_MAX - before ? n : HEAD_MAX - before;

	if (take == 0 || lbuf_append(&t->head, p, take, HEAD_MAX) < 0)
		return -1;
	if (lbuf_append(&t->head, "", 1, HEAD_MAX + 1) < 0)	/* NUL for the string functions */
		return -1;
	t->head.len--;
	end = strstr(t->head.data, "\r\n\r\n");
	if (!end)
		return take < n ? -1 : (ssize_t)n;	/* no head within HEAD_MAX bytes */
	used = (size_t)(end + 4 - t->head.data) - before;
	if (sscanf(t->head.data, "HTTP/1.%*d %d", &status) != 1 || status < 100 || status > 599) {
		L->proto_errors++;
		return -1;
	}
	L->status[status]++;
	if (status != 200)
		return -1;
	v = header_value(t->head.data, "Transfer-Encoding", &vlen);
	chunked = v && vlen >= 7 && strcasestr(v, "chunked") && strcasestr(v, "chunked") < v + vlen;
	v = header_value(t->head.data, "Content-Length", &vlen);
	sse_decoder_start(&t->dec, chunked, (!chunked && v) ? strtoll(v, NULL, 10) : -1);
	lbuf_free(&t->head);
	t->phase = PH_BODY;
	L->connecting--;
	L->streaming++;
	L->opened++;
	if (!t->opened_once) {
		t->opened_once = 1;
		L->settled++;
	} else {
		L->reconnects++;
	}
	return (ssize_t)used;
}

static void tab_readable(struct load *L, int i)
{
	struct tab *t = &L->tabs[i];

	for (int rounds = 0; rounds < 4; rounds++) {
		ssize_t n = read(t->fd, L->readbuf, READ_CHUNK);
		int64_t arrival = real_ns();
		const char *p = L->readbuf;
		int r;

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR)
				continue;
			tab_close(L, i, strerror(errno));
			return;
		}
		if (n == 0) {
			tab_close(L, i, t->phase == PH_BODY ? "server closed the stream" :
				  "server closed before the response head");
			return;
		}
		if (t->phase == PH_HEADERS) {
			ssize_t used = head_bytes(L, i, p, (size_t)n);
			if (used < 0) {
				tab_close(L, i, "response was not 200 text/event-stream");
				return;
			}
			p += used;
			n -= used;
			if (t->phase != PH_BODY)
				continue;
		}
		feed_arrival_ns = arrival;
		r = sse_decoder_body(&t->dec, p, (size_t)n);
		if (r < 0) {
			L->proto_errors++;
			tab_close(L, i, "bad chunked or SSE framing");
			return;
		}
		if (r > 0) {
			tab_close(L, i, "server ended the response");
			return;
		}
		if (n < READ_CHUNK)
			return;
	}
}

/* ------------------------------------------------------------------ the change writer */

/* Reads "cookie conversation-id" lines for the writer. */
static int read_targets(struct load *L)
{
	struct writer *w = &L->w;
	FILE *f = fopen(L->o.targets, "r");
	char *line = NULL;
	size_t cap = 0;
	int rc = -1, alloc = 0;

	if (!f) {
		fprintf(stderr, "sse_load: %s: %s\n", L->o.targets, strerror(errno));
		return -1;
	}
	while (getline(&line, &cap, f) >= 0) {
		char cookie[600], conv[100];
		struct target *t;

		if (line[0] == '#' || sscanf(line, "%599s %99s", cookie, conv) != 2)
			continue;
		if (strspn(conv, "0123456789abcdefABCDEF-") != strlen(conv)) {
			fprintf(stderr, "sse_load: %s: bad conversation id %s\n", L->o.targets, conv);
			goto out;
		}
		if (w->ntargets == alloc) {
			int na = alloc ? alloc * 2 : 16;
			t = realloc(w->targets, sizeof(*t) * (size_t)na);
			if (!t)
				goto out;
			w->targets = t;
			alloc = na;
		}
		t = &w->targets[w->ntargets];
		t->cookie = cookie_header_dup(cookie);
		t->conversation = strdup(conv);
		if (!t->cookie || !t->conversation) {
			free(t->cookie);
			free(t->conversation);
			goto out;
		}
		w->ntargets++;
	}
	if (w->ntargets == 0) {
		fprintf(stderr, "sse_load: %s: no targets\n", L->o.targets);
		goto out;
	}
	rc = 0;
out:
	free(line);
	fclose(f);
	return rc;
}

static void writer_close(struct load *L, const char *why)
{
	struct writer *w = &L->w;

	if (w->fd >= 0) {
		epoll_ctl(L->ep, EPOLL_CTL_DEL, w->fd, NULL);
		close(w->fd);
		w->fd = -1;
	}
	if (w->state == W_BUSY) {
		w->errors++;
		if (L->o.verbose)
			fprintf(stderr, "sse_load: writer request failed: %s\n", why);
	}
	free(w->req);
	w->req = NULL;
	lbuf_free(&w->resp);
	w->state = W_DOWN;
}

static void writer_connect(struct load *L)
{
	struct writer *w = &L->w;
	struct epoll_event ev;
	int one = 1;

	w->fd = socket(L->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (w->fd < 0) {
		writer_close(L, strerror(errno));
		return;
	}
	setsockopt(w->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	w->state = W_CONNECTING;
	w->connects++;
	if (connect(w->fd, (struct sockaddr *)&L->addr, L->addrlen) < 0 && errno != EINPROGRESS) {
		writer_close(L, strerror(errno));
		return;
	}
	ev.events = EPOLLOUT;
	ev.data.u32 = WRITER_ID;
	if (epoll_ctl(L->ep, EPOLL_CTL_ADD, w->fd, &ev) < 0)
		writer_close(L, strerror(errno));
}

static void writer_flush(struct load *L)
{
	struct writer *w = &L->w;
	struct epoll_event ev;

	while (w->req_off < w->req_len) {
		ssize_t n = send(w->fd, w->req + w->req_off, w->req_len - w->req_off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				ev.events = EPOLLOUT | EPOLLIN;
				ev.data.u32 = WRITER_ID;
				epoll_ctl(L->ep, EPOLL_CTL_MOD, w->fd, &ev);
				return;
			}
			if (errno == EINTR)
				continue;
			writer_close(L, strerror(errno));
			return;
		}
		w->req_off += (size_t)n;
	}
	free(w->req);
	w->req = NULL;
	ev.events = EPOLLIN;
	ev.data.u32 = WRITER_ID;
	epoll_ctl(L->ep, EPOLL_CTL_MOD, w->fd, &ev);
}

/* One rename; the stamp is taken just before the request leaves. */
static void writer_send(struct load *L)
{
	struct writer *w = &L->w;
	struct target *t = &w->targets[w->next_target];
	char body[96];
	int blen, n;
	size_t cap;

	w->next_target = (w->next_target + 1) % w->ntargets;
	blen = snprintf(body, sizeof(body), "{\"title\":\"bench @T%019" PRId64 "\"}", real_ns());
	cap = 512 + strlen(t->cookie) + strlen(t->conversation) + strlen(L->host_header) +
	      (L->o.publish ? strlen(L->o.publish) : 0);
	w->req = malloc(cap);
	if (!w->req)
		die("out of memory");
	if (L->o.publish)
		/* nchan: the same body published to the channel named where the conversation id goes */
		n = snprintf(w->req, cap,
			     "POST %s%s HTTP/1.1\r\nHost: %s\r\n"
			     "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			     L->o.publish, t->conversation, L->host_header, blen, body);
	else
		n = snprintf(w->req, cap,
			     "PATCH /api/conversations/%s HTTP/1.1\r\nHost: %s\r\n"
			     "Content-Type: application/json\r\nContent-Length: %d\r\nCookie: %s\r\n\r\n%s",
			     t->conversation, L->host_header, blen, t->cookie, body);
	if (n < 0 || (size_t)n >= cap)
		die("request too long");
	w->req_len = (size_t)n;
	w->req_off = 0;
	w->state = W_BUSY;
	w->pending = 0;
	w->sent++;
	w->sent_ns = mono_ns();
	writer_flush(L);
}

/* Returns 1 when resp holds a whole response (Content-Length or chunked). */
static int writer_response_done(struct writer *w, int *status, int *close_after)
{
	const char *end, *v;
	size_t vlen, head_len;

	if (lbuf_append(&w->resp, "", 1, HEAD_MAX * 4 + 1) < 0)
		return -1;
	w->resp.len--;
	end = strstr(w->resp.data, "\r\n\r\n");
	if (!end)
		return 0;
	head_len = (size_t)(end + 4 - w->resp.data);
	if (sscanf(w->resp.data, "HTTP/1.%*d %d", status) != 1)
		return -1;
	v = header_value(w->resp.data, "Connection", &vlen);
	*close_after = v && !strncasecmp(v, "close", 5);
	v = header_value(w->resp.data, "Content-Length", &vlen);
	if (v)
		return w->resp.len >= head_len + (size_t)strtoull(v, NULL, 10);
	v = header_value(w->resp.data, "Transfer-Encoding", &vlen);
	if (v && strcasestr(v, "chunked"))	/* JSON holds no raw CR, so this ends the body */
		return w->resp.len >= head_len + 5 && !memcmp(w->resp.data + w->resp.len - 5, "0\r\n\r\n", 5);
	*close_after = 1;	/* until close: count it when the server closes */
	return 0;
}

static void writer_event(struct load *L, uint32_t events)
{
	struct writer *w = &L->w;

	if (w->state == W_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			writer_close(L, strerror(err));
			return;
		}
		w->state = W_IDLE;
		if (w->pending)
			writer_send(L);
		else {
			struct epoll_event ev = { .events = EPOLLIN, .data.u32 = WRITER_ID };
			epoll_ctl(L->ep, EPOLL_CTL_MOD, w->fd, &ev);
		}
		return;
	}
	if (w->state == W_BUSY && w->req && (events & EPOLLOUT))
		writer_flush(L);
	if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)) || w->fd < 0)
		return;
	for (;;) {
		ssize_t n = read(w->fd, L->readbuf, READ_CHUNK);
		int status = 0, close_after = 0, r;

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR)
				continue;
			writer_close(L, strerror(errno));
			return;
		}
		if (n == 0) {
			writer_close(L, "server closed the connection");
			return;
		}
		if (w->state != W_BUSY || lbuf_append(&w->resp, L->readbuf, (size_t)n, HEAD_MAX * 4) < 0) {
			writer_close(L, "unexpected or oversized response");
			return;
		}
		r = writer_response_done(w, &status, &close_after);
		if (r < 0) {
			writer_close(L, "bad response");
			return;
		}
		if (r == 0)
			continue;
		hist_add(&w->rtt, (mono_ns() - w->sent_ns) / 1000);
		if (status >= 200 && status < 300)
			w->ok++;
		else {
			w->errors++;
			if (L->o.verbose && w->errors <= 5)
				fprintf(stderr, "sse_load: writer got HTTP %d\n", status);
		}
		lbuf_clear(&w->resp);
		w->state = W_IDLE;
		if (close_after)
			writer_close(L, "server asked to close");
		return;
	}
}

/* Sends a rename when one is due; runs every loop iteration while the run is measured. */
static void writer_tick(struct load *L, int64_t now)
{
	struct writer *w = &L->w;
	int64_t stop_at;

	if (w->state == W_OFF || !L->ready)
		return;
	stop_at = L->ready_ns + (int64_t)((L->o.duration_s - L->o.settle_s) * NS_PER_S);
	if (now >= stop_at || now < w->next_ns)
		return;
	w->next_ns += w->period_ns;
	if (w->next_ns < now)
		w->next_ns = now + w->period_ns;	/* we fell behind: do not burst */
	if (w->state == W_IDLE) {
		writer_send(L);
	} else if (w->state == W_DOWN) {
		w->pending = 1;
		writer_connect(L);
	} else {
		w->late++;
	}
}

/* ------------------------------------------------------------------ the loop */

static void start_connects(struct load *L, int64_t now)
{
	if (L->o.rate > 0) {
		double burst = L->o.rate / 10 > 1 ? L->o.rate / 10 : 1;
		L->tokens += (double)(now - L->tokens_at_ns) / NS_PER_S * L->o.rate;
		if (L->tokens > burst)
			L->tokens = burst;
		L->tokens_at_ns = now;
	}
	while (L->qlen > 0 && L->connecting < L->o.max_connecting) {
		int i;

		if (L->o.rate > 0) {
			if (L->tokens < 1)
				break;
			L->tokens -= 1;
		}
		i = L->queue[L->qhead];
		L->qhead = (L->qhead + 1) % L->ntabs;
		L->qlen--;
		tab_connect(L, i);
	}
}

/* Connect timeouts, reconnect timers, the ready mark. Runs every 100 ms. */
static void housekeeping(struct load *L, int64_t now)
{
	int64_t conn_to = (int64_t)(L->o.conn_timeout_s * NS_PER_S);

	for (int i = 0; i < L->ntabs; i++) {
		struct tab *t = &L->tabs[i];

		if (in_handshake(t->phase) && now - t->started_ns > conn_to)
			tab_close(L, i, "timed out opening the stream");
		else if (t->phase == PH_WAITING && now >= t->retry_at_ns)
			queue_push(L, i);
	}
	if (!L->ready && (L->settled >= L->ntabs ||
			  now - L->start_ns > (int64_t)(L->o.open_timeout_s * NS_PER_S))) {
		L->ready = 1;
		L->ready_ns = now;
		L->w.next_ns = now;
		if (L->o.verbose)
			fprintf(stderr, "sse_load: ready after %.1f s: %d streaming, %" PRIu64 " failed\n",
				(double)(now - L->start_ns) / NS_PER_S, L->streaming, L->failed);
		if (L->o.ready_file) {
			FILE *f = fopen(L->o.ready_file, "w");
			if (f) {
				fprintf(f, "streaming=%d failed=%" PRIu64 "\n", L->streaming, L->failed);
				fclose(f);
			}
		}
	}
}

/* -I: one line for the interval just ended, then its histograms start again. */
static void print_interval(struct load *L, int64_t now)
{
	printf("interval: t=%.0f streaming=%d events=%" PRIu64 " lost=%" PRIu64 " duplicates=%" PRIu64
	       " resets=%" PRIu64 " reconnects=%" PRIu64, (double)(now - L->ready_ns) / NS_PER_S, L->streaming,
	       L->events, L->lost, L->duplicates, L->resets, L->reconnects);
	for (int k = 0; k < L->nmeasured; k++) {
		struct hist *h = &L->measured[k].interval;
		printf(" %s: n=%" PRIu64 " p50_ms=%.2f p99_ms=%.2f max_ms=%.2f", L->measured[k].name, h->count,
		       hist_quantile(h, 0.5) / 1000.0, hist_quantile(h, 0.99) / 1000.0,
		       hist_quantile(h, 1.0) / 1000.0);
		memset(h, 0, sizeof(*h));
	}
	printf("\n");
	fflush(stdout);
}

static int should_stop(struct load *L, int64_t now)
{
	if (stop_requested)
		return 1;
	if (L->o.max_events > 0 && L->events >= (uint64_t)L->o.max_events)
		return 1;
	if (!L->ready)
		return 0;
	if (now - L->ready_ns >= (int64_t)(L->o.duration_s * NS_PER_S))
		return 1;
	if (L->o.idle_exit_s > 0 && L->last_event_ns &&
	    now - L->last_event_ns >= (int64_t)(L->o.idle_exit_s * NS_PER_S))
		return 1;
	if (L->streaming == 0 && L->qlen == 0 && L->connecting == 0 && !L->o.reconnect)
		return 1;	/* every tab failed or closed: nothing more can arrive */
	return 0;
}

static void run(struct load *L)
{
	struct epoll_event evs[EPOLL_BATCH];
	int64_t next_house = 0, next_progress, next_interval = INT64_MAX;
	uint64_t events_at_progress = 0;

	L->start_ns = mono_ns();
	L->tokens_at_ns = L->start_ns;
	next_progress = L->start_ns + NS_PER_S;
	for (;;) {
		int64_t now = mono_ns();
		int n;

		if (now >= next_house) {
			housekeeping(L, now);
			next_house = now + 100 * NS_PER_MS;
		}
		if (should_stop(L, now))
			break;
		start_connects(L, now);
		writer_tick(L, now);
		if (L->o.interval_s > 0 && L->ready) {
			if (next_interval == INT64_MAX) {
				next_interval = L->ready_ns + (int64_t)(L->o.interval_s * NS_PER_S);
			} else if (now >= next_interval) {
				print_interval(L, now);
				next_interval += (int64_t)(L->o.interval_s * NS_PER_S);
			}
		}
		if (L->o.verbose && now >= next_progress) {
			fprintf(stderr, "sse_load: t=%.0fs streaming=%d connecting=%d queued=%d events=%" PRIu64
				" (+%" PRIu64 "/s) lost=%" PRIu64 " failed=%" PRIu64 " closed_early=%" PRIu64
				" latency_p50_ms=%.1f p99_ms=%.1f max_ms=%.1f\n",
				(double)(now - L->start_ns) / NS_PER_S, L->streaming, L->connecting, L->qlen,
				L->events, L->events - events_at_progress, L->lost, L->failed, L->closed_early,
				hist_quantile(&L->second, 0.5) / 1000.0, hist_quantile(&L->second, 0.99) / 1000.0,
				hist_quantile(&L->second, 1.0) / 1000.0);
			memset(&L->second, 0, sizeof(L->second));
			events_at_progress = L->events;
			next_progress += NS_PER_S;
		}
		n = epoll_wait(L->ep, evs, EPOLL_BATCH, 10);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (int k = 0; k < n; k++) {
			int i = (int)evs[k].data.u32;
			struct tab *t;

			if (evs[k].data.u32 == WRITER_ID) {
				writer_event(L, evs[k].events);
				continue;
			}
			t = &L->tabs[i];
			if (t->fd < 0)
				continue;
			if (t->phase == PH_CONNECTING || t->phase == PH_SENDING) {
				if (evs[k].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
					tab_writable(L, i);
			} else if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
				tab_readable(L, i);
			}
		}
	}
	L->end_ns = mono_ns();
}

/* ------------------------------------------------------------------ report */

static void print_summary(struct load *L)
{
	uint64_t behind = 0, tabs_behind = 0, open_at_end = 0;
	double measured_s = L->ready ? (double)(L->end_ns - L->ready_ns) / NS_PER_S : 0;
	struct rusage ru;

	for (int i = 0; i < L->ntabs; i++) {
		struct tab *t = &L->tabs[i];
		int64_t want = L->users[t->user].max_seq;

		if (t->phase == PH_BODY)
			open_at_end++;
		if (t->have_seq && t->last_seq < want) {
			behind += (uint64_t)(want - t->last_seq);
			tabs_behind++;
		}
	}
	getrusage(RUSAGE_SELF, &ru);
	printf("sse_load: users=%d tabs=%d open_s=%.2f measured_s=%.2f%s\n", L->nusers, L->ntabs,
	       L->ready ? (double)(L->ready_ns - L->start_ns) / NS_PER_S : -1.0, measured_s,
	       stop_requested ? " (interrupted)" : "");
	printf("connections: opened=%" PRIu64 " failed=%" PRIu64 " closed_early=%" PRIu64
	       " reconnects=%" PRIu64 " open_at_end=%" PRIu64 " protocol_errors=%" PRIu64 "\n",
	       L->opened, L->failed, L->closed_early, L->reconnects, open_at_end, L->proto_errors);
	printf("http_status:");
	for (int s = 100; s < 600; s++)
		if (L->status[s])
			printf(" %d=%" PRIu64, s, L->status[s]);
	printf("\n");
	printf("events: received=%" PRIu64 " lost=%" PRIu64 " gaps=%" PRIu64 " duplicates=%" PRIu64
	       " resets=%" PRIu64 " without_id=%" PRIu64 " behind_at_end=%" PRIu64
	       " tabs_behind=%" PRIu64 " keepalives=%" PRIu64 " rate_per_s=%.0f\n",
	       L->events, L->lost, L->gaps, L->duplicates, L->resets, L->no_id, behind, tabs_behind,
	       L->comments, measured_s > 0 ? (double)L->events / measured_s : 0.0);
	printf("types:");
	for (int i = 0; i < L->ntypes; i++)
		printf(" %s=%" PRIu64, L->types[i].name, L->types[i].n);
	if (L->types_other)
		printf(" other=%" PRIu64, L->types_other);
	printf("\n");
	for (int k = 0; k < L->nmeasured; k++) {
		struct hist *h = &L->measured[k].h;
		printf("latency[%s]: samples=%" PRIu64, L->measured[k].name, h->count);
		if (h->count)
			printf(" p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f mean_ms=%.2f",
			       hist_quantile(h, 0.50) / 1000, hist_quantile(h, 0.90) / 1000,
			       hist_quantile(h, 0.99) / 1000, hist_quantile(h, 0.999) / 1000,
			       (double)h->max_us / 1000, h->sum_us / (double)h->count / 1000);
		if (h->negative)
			printf(" negative=%" PRIu64, h->negative);
		printf("\n");
	}
	if (L->stamps_bad)
		printf("stamps: malformed=%" PRIu64 "\n", L->stamps_bad);
	if (L->w.state != W_OFF) {
		struct hist *h = &L->w.rtt;
		printf("writer: sent=%" PRIu64 " ok=%" PRIu64 " errors=%" PRIu64 " late=%" PRIu64
		       " connections=%" PRIu64, L->w.sent, L->w.ok, L->w.errors, L->w.late, L->w.connects);
		if (h->count)
			printf(" rtt_p50_ms=%.2f rtt_p99_ms=%.2f rtt_max_ms=%.2f", hist_quantile(h, 0.5) / 1000,
			       hist_quantile(h, 0.99) / 1000, (double)h->max_us / 1000);
		printf("\n");
	}
	printf("client: max_rss_kb=%ld cpu_user_s=%.2f cpu_sys_s=%.2f\n", ru.ru_maxrss,
	       (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	fflush(stdout);
}

static void cleanup(struct load *L)
{
	for (int i = 0; i < L->ntabs; i++) {
		struct tab *t = &L->tabs[i];
		if (t->fd >= 0)
			close(t->fd);
		tab_reset_parser(t);
	}
	for (int u = 0; u < L->nusers; u++) {
		free(L->users[u].cookie);
		free(L->users[u].name);
	}
	free(L->users);
	for (int k = 0; k < L->w.ntargets; k++) {
		free(L->w.targets[k].cookie);
		free(L->w.targets[k].conversation);
	}
	free(L->w.targets);
	if (L->w.fd >= 0)
		close(L->w.fd);
	free(L->w.req);
	lbuf_free(&L->w.resp);
	free(L->tabs);
	free(L->queue);
	free(L->measured);
	free(L->readbuf);
	if (L->ep >= 0)
		close(L->ep);
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f)
{
	fputs("usage: sse_load -p PORT -c COOKIES [options]\n"
	      "Opens users x tabs SSE streams to GET /api/events through nginx on the loopback and\n"
	      "reports events lost, duplicates and stamp latency (docs/BENCHMARKS.md).\n"
	      "  -H HOST        127.0.0.1 (default) or ::1; nothing else is accepted\n"
	      "  -p PORT        nginx port\n"
	      "  -c FILE        session cookies, one user per line (token or name=value)\n"
	      "  -t TABS        streams per user (default 1)\n"
	      "  -d SECONDS     how long to measure once every tab is open (default 30)\n"
	      "  -n EVENTS      stop after this many events in all (default: no limit)\n"
	      "  -o SECONDS     deadline for opening every tab (default 120)\n"
	      "  -T SECONDS     deadline for one stream's response head (default 30)\n"
	      "  -i SECONDS     stop after this long without events, once events came (default: off)\n"
	      "  -r PER_SEC     new connections per second (default: no limit)\n"
	      "  -m N           at most N connections opening at once (default 256)\n"
	      "  -R             reconnect closed streams with Last-Event-ID, like a browser\n"
	      "  -D MS          reconnect delay (default: the server's retry)\n"
	      "  -e TYPES       comma-separated event types whose stamps are measured\n"
	      "                 (default message.delta,conversation.updated)\n"
	      "  -w FILE        write FILE when every tab is open (or failed)\n"
	      "  -P PATH        request path (default /api/events); with -N the prefix of each\n"
	      "                 user's channel (its line in COOKIES), e.g. /sub/\n"
	      "  -N PREFIX      nchan: the writer POSTs to PREFIX<CONVERSATION-ID> (e.g. /pub/)\n"
	      "                 instead of renaming; no session, seqs not checked\n"
	      "  -W PER_SEC     the change writer: renames per second over one keep-alive\n"
	      "                 connection, \"@T<ns>\" in each title (needs -C)\n"
	      "  -C FILE        writer targets, \"COOKIE CONVERSATION-ID\" per line, used in turn\n"
	      "  -S SECONDS     the writer stops this long before the end (default 2)\n"
	      "  -I SECONDS     print one line per interval: streams, events and each measured\n"
	      "                 type's latency over that interval alone (a soak's flatness)\n"
	      "  -v             progress to stderr every second (-vv: every failure)\n", f);
}

static double parse_seconds(const char *s, const char *what)
{
	char *end;
	double v = strtod(s, &end);

	if (*s == 0 || *end || v < 0 || v > 86400)
		die("bad %s: %s", what, s);
	return v;
}

static long long parse_count(const char *s, const char *what, long long max)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	if (*s == 0 || *end || v < 0 || v > max)
		die("bad %s: %s", what, s);
	return v;
}

int main(int argc, char **argv)
{
	struct load L;
	struct sigaction sa;
	int c;

	memset(&L, 0, sizeof(L));
	L.ep = -1;
	L.w.fd = -1;
	L.o.settle_s = 2;
	L.o.host = "127.0.0.1";
	L.o.tabs = 1;
	L.o.duration_s = 30;
	L.o.open_timeout_s = 120;
	L.o.conn_timeout_s = 30;
	L.o.max_connecting = 256;
	L.o.path = "/api/events";
	L.o.measure = "message.delta,conversation.updated";
	while ((c = getopt(argc, argv, "H:p:c:t:d:n:o:T:i:r:m:RD:e:w:P:N:W:C:S:I:vh")) != -1) {
		switch (c) {
		case 'H': L.o.host = optarg; break;
		case 'p': L.o.port = (int)parse_count(optarg, "port", 65535); break;
		case 'c': L.o.cookies = optarg; break;
		case 't': L.o.tabs = (int)parse_count(optarg, "tabs", MAX_TABS); break;
		case 'd': L.o.duration_s = parse_seconds(optarg, "duration"); break;
		case 'n': L.o.max_events = parse_count(optarg, "event count", 1LL << 50); break;
		case 'o': L.o.open_timeout_s = parse_seconds(optarg, "open deadline"); break;
		case 'T': L.o.conn_timeout_s = parse_seconds(optarg, "stream deadline"); break;
		case 'i': L.o.idle_exit_s = parse_seconds(optarg, "idle time"); break;
		case 'r': L.o.rate = (double)parse_count(optarg, "rate", 1000000); break;
		case 'm': L.o.max_connecting = (int)parse_count(optarg, "opening limit", MAX_TABS); break;
		case 'R': L.o.reconnect = 1; break;
		case 'D': L.o.reconnect_ms = (int)parse_count(optarg, "reconnect delay", 600000); break;
		case 'e': L.o.measure = optarg; break;
		case 'w': L.o.ready_file = optarg; break;
		case 'P': L.o.path = optarg; break;
		case 'N': L.o.publish = optarg; break;
		case 'W': L.o.write_rate = parse_seconds(optarg, "write rate"); break;
		case 'C': L.o.targets = optarg; break;
		case 'S': L.o.settle_s = parse_seconds(optarg, "settle time"); break;
		case 'I': L.o.interval_s = parse_seconds(optarg, "interval"); break;
		case 'v': L.o.verbose++; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !L.o.port || !L.o.cookies || L.o.tabs < 1 || L.o.max_connecting < 1) {
		usage(stderr);
		return 2;
	}
	if (L.o.path[0] != '/' || strpbrk(L.o.path, " \r\n"))
		die("bad path: %s", L.o.path);
	if (resolve_loopback(&L) < 0)
		die("refusing host %s: only 127.0.0.1 and ::1 are allowed", L.o.host);
	if (!L.o.write_rate != !L.o.targets)
		die("-W and -C go together");
	if (parse_measured(&L) < 0 || read_cookies(&L) < 0 || (L.o.targets && read_targets(&L) < 0)) {
		cleanup(&L);
		return 2;
	}
	if ((long long)L.nusers * L.o.tabs > MAX_TABS) {
		cleanup(&L);
		die("%d users x %d tabs is more than %d streams", L.nusers, L.o.tabs, MAX_TABS);
	}
	L.ntabs = L.nusers * L.o.tabs;
	if (L.o.write_rate > 0) {
		L.w.state = W_DOWN;
		L.w.period_ns = (int64_t)(NS_PER_S / L.o.write_rate);
	}
	raise_fd_limit(L.ntabs + 64);
	L.tabs = calloc((size_t)L.ntabs, sizeof(*L.tabs));
	L.queue = calloc((size_t)L.ntabs, sizeof(*L.queue));
	L.readbuf = malloc(READ_CHUNK);
	L.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!L.tabs || !L.queue || !L.readbuf || L.ep < 0)
		die("out of memory or epoll: %s", strerror(errno));
	/* tab k of every user before tab k+1 of any: a user's first tab opens early */
	for (int k = 0; k < L.o.tabs; k++)
		for (int u = 0; u < L.nusers; u++) {
			int i = u * L.o.tabs + k;
			L.tabs[i].fd = -1;
			L.tabs[i].user = u;
			L.tabs[i].retry_ms = 2000;
			L.tabs[i].load = &L;
			L.tabs[i].dec.on_event = on_event;
			L.tabs[i].dec.on_comment = on_comment;
			L.tabs[i].dec.ctx = &L.tabs[i];
			tab_reset_parser(&L.tabs[i]);
			queue_push(&L, i);
		}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	run(&L);
	print_summary(&L);
	cleanup(&L);
	return 0;
}
