/*
 * fuzz_http_parse: what a request brings besides its body, any bytes: the query
 * string (?limit= ?cursor= ?deleted= ?last_event_id=), the Cookie header, the
 * path against the route table, Last-Event-ID, Origin and Content-Type. Values
 * come out NUL-terminated within their buffers; a matched route's {id}s are
 * UUIDs; a cursor is digits and a UUID.
 */
#include "api/handlers.h"
#include "api/http.h"
#include "api/page.h"
#include "api/router.h"
#include "api/events_get.h"
#include "common/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Splits data at 0x00 bytes into up to n NUL-terminated strings (missing: ""). */
static void split(const uint8_t *data, size_t size, char *buf, const char **parts, int n)
{
	int k = 0;

	memcpy(buf, data, size);
	buf[size] = '\0';
	parts[k++] = buf;
	for (size_t i = 0; i < size && k < n; i++)
		if (buf[i] == '\0')
			parts[k++] = buf + i + 1;
	while (k < n)
		parts[k++] = "";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = { "GET", "POST", "PATCH", "DELETE", "HEAD", "PUT" };
	static const char *const names[] = { "limit", "cursor", "deleted", "last_event_id" };
	const char *parts[6];
	char *buf, out[256], params[CALL_MAX_PARAMS][37], allow[64], usec[24], id[37];
	const struct route *route;
	struct sse_id last;
	int n, st;

	if (size == 0 || size > 65536)
		return 0;
	buf = malloc(size + 1);
	if (!buf)
		return 0;
	split(data + 1, size - 1, buf, parts, 6);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		n = http_query_param(parts[0], names[i], out, sizeof(out));
		if (n >= 0 && ((size_t)n >= sizeof(out) || out[n] != '\0'))
			abort();
	}
	n = http_cookie_get(parts[1], "mjs_session", out, sizeof(out));
	if (n >= 0 && ((size_t)n >= sizeof(out) || out[n] != '\0'))
		abort();
	memset(params, 0, sizeof(params));
	st = router_match(methods[data[0] % 6], parts[2], &route, params, allow, sizeof(allow));
	if (st == 200) {
		const char *p = route->pattern;
		for (int k = 0; k < CALL_MAX_PARAMS && (p = strchr(p, '{')) != NULL; k++, p++)
			if (!util_is_uuid(params[k], strlen(params[k])))
				abort();
	} else if (st != 404 && st != 405) {
		abort();
	}
	if (events_last_event_id(parts[3], parts[0], &last) == 0 && (last.seq < -1 || last.epoch < 0))
		abort();
	if (page_parse_cursor(parts[3], usec, sizeof(usec), id) == 0) {
		if (strspn(usec, "0123456789") != strlen(usec) || !util_is_uuid(id, strlen(id)))
			abort();
	}
	http_origin_allowed(parts[4], data[0] & 1 ? "https://mjs.example" : "", parts[5], data[0] & 2);
	http_is_json_type(parts[5]);
	free(buf);
	return 0;
}
