/*
 * router: the route table and its matcher.
 */
#include "api/router.h"
#include "common/util.h"

#include <string.h>

static const struct route routes[] = {
	{ "GET", "/api/healthz", health_check, 0 },
	{ "POST", "/api/auth/register", auth_register, ROUTE_BODY },
	{ "POST", "/api/auth/login", auth_login, ROUTE_BODY },
	{ "POST", "/api/auth/logout", auth_logout, 0 },
	{ "GET", "/api/me", auth_me, ROUTE_AUTH },
	{ "GET", "/api/models", models_list, ROUTE_AUTH },
	{ "GET", "/api/conversations", conversations_list, ROUTE_AUTH },
	{ "POST", "/api/conversations", conversations_create, ROUTE_AUTH | ROUTE_BODY },
	{ "PATCH", "/api/conversations/{id}", conversations_update, ROUTE_AUTH | ROUTE_BODY },
	{ "DELETE", "/api/conversations/{id}", conversations_delete, ROUTE_AUTH },
	{ "GET", "/api/conversations/{id}/messages", messages_list, ROUTE_AUTH },
	{ "POST", "/api/conversations/{id}/messages", messages_send, ROUTE_AUTH | ROUTE_BODY },
	{ "PATCH", "/api/messages/{id}", messages_update, ROUTE_AUTH | ROUTE_BODY },
	{ "DELETE", "/api/messages/{id}", messages_delete, ROUTE_AUTH },
	{ "POST", "/api/messages/{id}/stop", messages_stop, ROUTE_AUTH },
	{ "GET", "/api/tasks", tasks_list, ROUTE_AUTH },
	{ "POST", "/api/tasks", tasks_create, ROUTE_AUTH | ROUTE_BODY },
	{ "GET", "/api/tasks/{id}", tasks_get, ROUTE_AUTH },
	{ "PATCH", "/api/tasks/{id}", tasks_update, ROUTE_AUTH | ROUTE_BODY },
	{ "DELETE", "/api/tasks/{id}", tasks_delete, ROUTE_AUTH },
	{ "POST", "/api/tasks/{id}/restore", tasks_restore, ROUTE_AUTH },
	{ "GET", "/api/tasks/{id}/content", tasks_content, ROUTE_AUTH },
	{ "GET", "/api/events", events_get, ROUTE_AUTH },
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* Does path match pattern? Fills params with the {id} segments. */
static int path_matches(const char *pattern, const char *path, char params[CALL_MAX_PARAMS][37])
{
	int np = 0;

	while (*pattern && *path) {
		if (strncmp(pattern, "{id}", 4) == 0) {
			size_t len = strcspn(path, "/");
			if (!util_is_uuid(path, len) || np >= CALL_MAX_PARAMS)
				return 0;
			memcpy(params[np], path, 36);
			params[np][36] = '\0';
			np++;
			pattern += 4;
			path += len;
			continue;
		}
		if (*pattern != *path)
			return 0;
		pattern++;
		path++;
	}
	return *pattern == '\0' && *path == '\0';
}

int router_match(const char *method, const char *path, const struct route **out,
		 char params[CALL_MAX_PARAMS][37], char *allow, size_t allowlen)
{
	char scratch[CALL_MAX_PARAMS][37];
	size_t used = 0;
	int path_found = 0;

	if (allowlen)
		allow[0] = '\0';
	for (size_t i = 0; i < NROUTES; i++) {
		if (!path_matches(routes[i].pattern, path, scratch))
			continue;
		if (strcmp(routes[i].method, method) == 0) {
			memcpy(params, scratch, sizeof(scratch));
			*out = &routes[i];
			return 200;
		}
		path_found = 1;
		size_t mlen = strlen(routes[i].method);
		if (used + mlen + 3 < allowlen) {
			if (used) {
				memcpy(allow + used, ", ", 2);
				used += 2;
			}
			memcpy(allow + used, routes[i].method, mlen);
			used += mlen;
			allow[used] = '\0';
		}
	}
	return path_found ? 405 : 404;
}
