/*
 * call: one REST request from FastCGI params to written response. Checks run in
 * this order, so a client learns the most basic problem first: route (404/405),
 * body size (413), session (401), Origin (403), media type (415), JSON (400),
 * then the handler's own field checks (422).
 */
#include "api/auth.h"
#include "api/call.h"
#include "api/router.h"
#include "common/db.h"
#include "common/json.h"
#include "common/log.h"

#include <fcgiapp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DB_WAIT_MS 5000

PGconn *call_db(struct call *c)
{
	if (!c->db) {
		int64_t t = util_now_us();
		c->db = db_pool_get(c->app->pool, DB_WAIT_MS);
		c->t_pool_us += util_now_us() - t;
		if (!c->db)
			http_error(c->resp, 503, "unavailable", "database unavailable; retry later");
	}
	return c->db;
}

/*
 * The pending session check, leading sql in one round trip and transaction
 * (sql NULL: the check alone). Returns what db_exec would: sql's result, or
 * NULL, with *refused set when the session is not valid; the check's row is
 * taken when it passed.
 */
static PGresult *exec_checked(struct call *c, const char *sql, int nparams, const char *const *params, int *refused)
{
	const char *check_params[2] = { c->token, c->user_id[0] ? c->user_id : NULL };
	char state[6];
	PGresult *check, *res;
	int rc;

	rc = db_exec_guarded(c->db, AUTH_SQL_CHECK, 2, check_params, sql, nparams, params, &check, &res, state, NULL);
	if (rc == 0) {
		auth_session_checked(c, check);
		if (!sql)
			return check;
		PQclear(check);
		return res;
	}
	if (rc == -1 && !strcmp(state, "28000"))
		*refused = 1;
	else if (rc == -1)
		log_error("db query failed: sqlstate=%s query=\"session check\"", state[0] ? state : "-");
	return NULL;
}

/*
 * Runs sql, led by the session check while that is pending; with may_retry, a
 * pooled connection the database dropped (a restart, a failover), found dead
 * only when used, is reconnected and the statement goes again, once. Only for a
 * read: a write may have committed before its connection went, so it answers
 * 503 and the client retries. With sql NULL, runs the pending check alone and
 * returns its row.
 */
static PGresult *exec(struct call *c, const char *sql, int nparams, const char *const *params, int may_retry)
{
	PGresult *res;
	int64_t t;
	int refused = 0;

	if (!call_db(c))
		return NULL;
	t = util_now_us();
	if (c->auth_pending)
		res = exec_checked(c, sql, nparams, params, &refused);
	else
		res = db_exec(c->db, sql, nparams, params);
	c->t_db_us += util_now_us() - t;
	c->n_db++;
	if (!res && !refused && may_retry && PQstatus(c->db) != CONNECTION_OK) {
		PQreset(c->db);
		if (PQstatus(c->db) == CONNECTION_OK) {
			log_info("db connection of the pool reconnected; the read goes again");
			if (c->auth_pending)
				res = exec_checked(c, sql, nparams, params, &refused);
			else
				res = db_exec(c->db, sql, nparams, params);
		}
	}
	if (!res) {
		if (refused)
			http_error(c->resp, 401, "unauthorized", "session expired or logged out; log in again");
		else if (PQstatus(c->db) != CONNECTION_OK)
			http_error(c->resp, 503, "unavailable", "database connection lost; retry");
		else
			http_error(c->resp, 500, "internal", "internal error; see the server log");
	}
	return res;
}

int call_session(struct call *c)
{
	PGresult *res;

	if (!c->auth_pending)
		return 0;
	res = exec(c, NULL, 0, NULL, 1);
	PQclear(res);
	return res ? 0 : -1;
}

/*
 * A request that ran no statement (an answer from memory, or refused before its
 * work) still had its session checked: its answer stands only if the session
 * holds; else the check's own answer (401, 503) replaces it.
 */
static void settle_session(struct call *c)
{
	struct http_response answer = *c->resp;

	memset(c->resp, 0, sizeof(*c->resp));
	if (call_session(c) < 0) {
		http_response_free(&answer);
		return;
	}
	http_response_free(c->resp);
	*c->resp = answer;
}

PGresult *call_exec(struct call *c, const char *sql, int nparams, const char *const *params)
{
	return exec(c, sql, nparams, params, !strcmp(c->req->method ? c->req->method : "GET", "GET"));
}

PGresult *call_read(struct call *c, const char *sql, int nparams, const char *const *params)
{
	return exec(c, sql, nparams, params, 1);
}

void call_invalid(struct call *c, const char *message)
{
	http_error(c->resp, 422, "invalid_field", message);
}

void call_over_cap(struct call *c, const char *code, int retry_s, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	http_error(c->resp, 429, code, msg);
	http_header(c->resp, "Retry-After: %d", retry_s);
	log_info("request refused user=%s reason=%s", c->user_id, code);
}

static const char *param(FCGX_Request *fr, const char *name)
{
	return FCGX_GetParam(name, fr->envp);
}

/* Fills req from the FastCGI params. Returns 0, or an HTTP status on bad input. */
static int read_request(FCGX_Request *fr, struct http_request *req)
{
	const char *uri = param(fr, "DOCUMENT_URI"), *q, *cl, *https;
	size_t n;

	if (!uri) {
		uri = param(fr, "REQUEST_URI");
		if (!uri)
			uri = "/";
	}
	n = strcspn(uri, "?");
	if (n >= sizeof(req->path))
		return 404;
	memcpy(req->path, uri, n);
	req->path[n] = '\0';
	q = param(fr, "QUERY_STRING");
	req->query = q ? q : "";
	req->method = param(fr, "REQUEST_METHOD");
	if (!req->method)
		req->method = "GET";
	req->content_type = param(fr, "CONTENT_TYPE");
	req->cookie = param(fr, "HTTP_COOKIE");
	req->range = param(fr, "HTTP_RANGE");
	req->origin = param(fr, "HTTP_ORIGIN");
	req->host = param(fr, "HTTP_HOST");
	req->last_event_id = param(fr, "HTTP_LAST_EVENT_ID");
	req->user_agent = param(fr, "HTTP_USER_AGENT");
	req->remote_addr = param(fr, "REMOTE_ADDR");
	https = param(fr, "HTTPS");
	req->https = https && *https && strcmp(https, "off") != 0;
	cl = param(fr, "CONTENT_LENGTH");
	req->content_length = -1;
	if (cl && *cl) {
		int64_t v;
		if (util_parse_i64(cl, &v) < 0)
			return 400;
		req->content_length = v;
	}
	return 0;
}

/* Reads the body (at most max bytes). Returns 0, 413 when over, 400 when short. */
static int read_body(FCGX_Request *fr, struct http_request *req, size_t max)
{
	size_t want;
	int got;

	if (req->content_length <= 0) {
		req->body = calloc(1, 1);
		return req->body ? 0 : 500;
	}
	if ((unsigned long long)req->content_length > max)
		return 413;
	want = (size_t)req->content_length;
	req->body = malloc(want + 1);
	if (!req->body)
		return 500;
	got = FCGX_GetStr(req->body, (int)want, fr->in);
	if (got < 0 || (size_t)got != want)
		return 400;
	req->body[want] = '\0';
	req->body_len = want;
	return 0;
}

static int is_state_changing(const char *method)
{
	return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

static void dispatch(struct call *c, FCGX_Request *fr)
{
	struct http_request *req = c->req;
	const struct route *route;
	char allow[64];
	int st;

	st = read_request(fr, req);
	if (st) {
		http_error(c->resp, st, st == 404 ? "not_found" : "bad_request", "malformed request");
		return;
	}
	st = router_match(req->method, req->path, &route, c->params, allow, sizeof(allow));
	if (st == 404) {
		http_error(c->resp, 404, "not_found", "no such endpoint");
		return;
	}
	if (st == 405) {
		http_header(c->resp, "Allow: %s", allow);
		http_error(c->resp, 405, "method_not_allowed", "method not allowed here");
		return;
	}
	st = read_body(fr, req, c->app->cfg->max_body_size);
	if (st) {
		if (st == 413)
			http_error(c->resp, 413, "too_large", "request body too large");
		else
			http_error(c->resp, st, "bad_request", "could not read the request body");
		return;
	}
	if (route->flags & ROUTE_AUTH) {
		int64_t t = util_now_us(), db_before = c->t_db_us;
		int rc = auth_require_session(c);
		/* the session check's own time, its statements apart */
		c->t_auth_db_us = c->t_db_us - db_before;
		c->t_auth_us = util_now_us() - t - c->t_auth_db_us;
		if (rc < 0)
			return;
	}
	if (is_state_changing(req->method)) {
		if (!http_origin_allowed(req->origin, c->app->cfg->public_origin, req->host, req->https)) {
			http_error(c->resp, 403, "forbidden", "cross-origin request refused");
			return;
		}
		if ((route->flags & ROUTE_BODY || req->body_len > 0) && !http_is_json_type(req->content_type)) {
			http_error(c->resp, 415, "unsupported_media_type", "send Content-Type: application/json");
			return;
		}
	}
	if (route->flags & ROUTE_BODY) {
		enum json_body_rc rc = json_body_parse(req->body, req->body_len, &c->body);
		if (rc == JSON_BODY_SYNTAX) {
			http_error(c->resp, 400, "bad_json", "request body is not valid JSON");
			return;
		}
		if (rc == JSON_BODY_NOT_OBJECT) {
			http_error(c->resp, 400, "bad_json", "request body must be a JSON object");
			return;
		}
	}
	route->handler(c);
}

/* libfcgi's own printf lacks modern conversions: format here, then PutStr. */
static void write_response(FCGX_Request *fr, struct http_response *resp)
{
	struct buf head = { 0 };

	buf_printf(&head, "Status: %d %s\r\n", resp->status, http_status_text(resp->status));
	if (resp->headers.len)
		buf_append(&head, resp->headers.data, resp->headers.len);
	if (resp->event_seq[0])
		buf_printf(&head, "Mjs-Event-Seq: %s\r\n", resp->event_seq);
	if (resp->status != 204)
		buf_printf(&head, "Content-Type: application/json\r\nCache-Control: no-store\r\n"
			   "Content-Length: %zu\r\n", resp->body.len);
	buf_puts(&head, "\r\n");
	FCGX_PutStr(head.data, (int)head.len, fr->out);
	if (resp->status != 204 && resp->body.len)
		FCGX_PutStr(resp->body.data, (int)resp->body.len, fr->out);
	buf_free(&head);
}

void call_serve(struct app *app, void *fcgi_request)
{
	FCGX_Request *fr = fcgi_request;
	struct http_request req;
	struct http_response resp;
	struct call c;

	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	memset(&c, 0, sizeof(c));
	c.app = app;
	c.req = &req;
	c.resp = &resp;
	c.fcgi = fr;
	c.t_start = util_now_us();
	resp.status = 500;
	dispatch(&c, fr);
	if (c.auth_pending && resp.status)
		settle_session(&c);
	if (c.db)
		db_pool_put(app->pool, c.db);
	if (resp.status) {
		if (resp.status == 500 && !resp.body.len)
			http_error(&resp, 500, "internal", "internal error; see the server log");
		int64_t t_written;
		write_response(fr, &resp);
		t_written = util_now_us();
		/* us: in the responder from accept to the answer written; db: in statements (n of them,
		 * the round trips; auth_db of them a session check run alone), pool: waiting for a
		 * connection, auth: the session check's own work (docs/BENCHMARKS.md) */
		log_debug("request method=%s path=%s status=%d us=%lld db_us=%lld db_n=%d auth_db_us=%lld pool_us=%lld "
			  "auth_us=%lld", req.method ? req.method : "-", req.path, resp.status,
			  (long long)(t_written - c.t_start), (long long)c.t_db_us, c.n_db, (long long)c.t_auth_db_us,
			  (long long)c.t_pool_us, (long long)c.t_auth_us);
	}
	json_object_put(c.body);
	free(req.body);
	http_response_free(&resp);
}
