/*
 * handlers: what a route handler gets (struct call) and every handler of the
 * route table. A handler fills c->resp; it never writes to the connection itself
 * (except events_get, which hands the connection to the hub).
 */
#ifndef MJS_API_HANDLERS_H
#define MJS_API_HANDLERS_H

#include <json-c/json.h>
#include <libpq-fe.h>

#include "api/http.h"
#include "common/config.h"

struct hub;
struct db_pool;

/* Process-wide state shared by all threads; read-only after start. */
struct app {
	const struct config *cfg;
	struct db_pool *pool;
	struct hub *hub;
};

#define CALL_MAX_PARAMS 2

struct call {
	struct app *app;
	struct http_request *req;
	struct http_response *resp;
	void *fcgi;			/* FCGX_Request *, for events_get only */
	PGconn *db;			/* taken from the pool by call_db() */
	char user_id[37];		/* set when the route needs a session */
	char token[81];			/* the session cookie's token (auth.h) */
	int auth_pending;		/* the session check is still to run, with the first statement */
	long long session_id;		/* mjs.sessions.id of that session */
	long long session_left_ms;	/* until it expires, as of the check */
	/* user_id comes from the token before the check: nothing may trust it before a statement's answer */
	char params[CALL_MAX_PARAMS][37];	/* {id} path parameters, in order */
	struct json_object *body;	/* parsed body for routes that take one */
	/* where the request's time went (the debug log's request line), µs */
	int64_t t_start, t_pool_us, t_db_us, t_auth_us, t_auth_db_us;
	int n_db;
};

/*
 * The call's database connection, taken from the pool on first use. Returns NULL
 * after setting a 503 response when the database cannot be reached.
 */
PGconn *call_db(struct call *c);

/*
 * Runs a statement for a handler. On failure sets a 503 (database unreachable) or
 * 500 response and returns NULL; the caller just returns. In a GET, a pooled
 * connection the database dropped is reconnected and the statement runs again,
 * once; call_read does the same for a read-only statement of any request (the
 * session check).
 */
PGresult *call_exec(struct call *c, const char *sql, int nparams, const char *const *params);
PGresult *call_read(struct call *c, const char *sql, int nparams, const char *const *params);

/*
 * Runs the session check now if it is still pending (for a handler that needs
 * the session itself before any statement). Returns 0, or -1 after setting the
 * response (401, 503).
 */
int call_session(struct call *c);

/* Sets a 422 response. */
void call_invalid(struct call *c, const char *message);

/* Retry-After of a request over a per-user cap (mjs.conf(5)): about when a slot frees. */
#define LIMIT_RETRY_REPLY_S 5
#define LIMIT_RETRY_TASK_S 15
#define LIMIT_RETRY_STREAM_S 30

/* Sets a 429 response with Retry-After for a per-user cap, and logs who hit it. */
void call_over_cap(struct call *c, const char *code, int retry_s, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

void auth_register(struct call *c);
void auth_login(struct call *c);
void auth_logout(struct call *c);
void auth_me(struct call *c);

void health_check(struct call *c);	/* health.c */

void models_list(struct call *c);
/* The model a message without one uses (chat_model, else the first an upstream names), or NULL when none. */
const char *models_default(const struct config *cfg);

void conversations_list(struct call *c);
void conversations_create(struct call *c);
void conversations_update(struct call *c);
void conversations_delete(struct call *c);

void messages_list(struct call *c);
void messages_send(struct call *c);
void messages_update(struct call *c);
void messages_delete(struct call *c);
void messages_stop(struct call *c);

void tasks_list(struct call *c);
void tasks_create(struct call *c);
void tasks_get(struct call *c);
void tasks_update(struct call *c);
void tasks_delete(struct call *c);
void tasks_restore(struct call *c);
void tasks_content(struct call *c);	/* content.c */

void events_get(struct call *c);

#endif
