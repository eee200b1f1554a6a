/*
 * http: the request as FastCGI hands it to us, the response we build, and the
 * JSON error shape of DESIGN.md. The pure helpers (status text, query and cookie
 * parsing, error bodies) carry no libfcgi state so they can be unit tested.
 */
#ifndef MJS_API_HTTP_H
#define MJS_API_HTTP_H

#include <stddef.h>

#include "common/util.h"

struct http_request {
	const char *method;
	char path[1024];	/* decoded-free path without the query */
	const char *query;	/* after '?', or "" */
	const char *content_type;
	const char *cookie;
	const char *origin;
	const char *host;
	const char *last_event_id;
	const char *range;		/* Range header (GET /api/tasks/{id}/content) */
	const char *user_agent;
	const char *remote_addr;
	int https;
	long long content_length;	/* -1 when absent */
	char *body;		/* NUL-terminated, owned by the request */
	size_t body_len;
};

struct http_response {
	int status;
	struct buf headers;	/* extra header lines, each ending in \r\n */
	struct buf body;
	char event_seq[24];	/* Mjs-Event-Seq of the answer, "" when none */
};

const char *http_status_text(int status);

/* Sets status and a {"error":{"code","message"}} body. */
void http_error(struct http_response *resp, int status, const char *code, const char *message);

/* Sets status and a JSON body given as text (the bytes PostgreSQL produced). */
void http_json(struct http_response *resp, int status, const char *json);

/*
 * Records the user's event seq the answer reflects (digits, as PostgreSQL wrote
 * them), sent as the Mjs-Event-Seq header; anything but 1 to 19 digits is ignored.
 */
void http_event_seq(struct http_response *resp, const char *seq);

void http_header(struct http_response *resp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Frees what a response holds. */
void http_response_free(struct http_response *resp);

/*
 * Finds name in a query string ("a=1&b=x%20y") and URL-decodes its value into out.
 * Returns the decoded length, or -1 when absent, malformed or too long for out.
 */
int http_query_param(const char *query, const char *name, char *out, size_t outlen);

/* Is name in the query at all, whatever its value (too long or malformed for http_query_param)? */
int http_query_has(const char *query, const char *name);

/* Finds cookie name in a Cookie header into out. Returns its length or -1. */
int http_cookie_get(const char *header, const char *name, char *out, size_t outlen);

/* Is the request's media type application/json (parameters like charset allowed)? */
int http_is_json_type(const char *content_type);

/*
 * Origin check for state-changing requests. A request without Origin passes (not a
 * browser, or a same-origin GET-like form browsers never send without one). With
 * public_origin set the Origin must equal it; otherwise it must be scheme://Host of
 * the request itself.
 */
int http_origin_allowed(const char *origin, const char *public_origin, const char *host, int https);

#endif
