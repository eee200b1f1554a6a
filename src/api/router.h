/*
 * router: the one table of routes. Paths are matched segment by segment; a {id}
 * segment matches only a UUID, so a malformed id is a plain 404.
 */
#ifndef MJS_API_ROUTER_H
#define MJS_API_ROUTER_H

#include <stddef.h>

#include "api/handlers.h"

#define ROUTE_AUTH 1	/* needs a logged-in session */
#define ROUTE_BODY 2	/* takes a JSON object body */

struct route {
	const char *method;
	const char *pattern;
	void (*handler)(struct call *c);
	int flags;
};

/*
 * Matches method and path. Returns 200 and sets *out and params, 404 when no
 * pattern matches the path, or 405 with allow filled ("GET, POST") when the path
 * exists for other methods.
 */
int router_match(const char *method, const char *path, const struct route **out,
		 char params[CALL_MAX_PARAMS][37], char *allow, size_t allowlen);

#endif
