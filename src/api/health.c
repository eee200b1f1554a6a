/*
 * health: GET /api/healthz, what a load balancer or a monitor asks: 200
 * {"status":"ok"} when this responder answers and reaches PostgreSQL through
 * its pool (one round trip), else the pool's 503.
 */
#include "api/handlers.h"

void health_check(struct call *c)
{
	PGresult *res = call_exec(c, "SELECT 1", 0, NULL);

	if (!res)
		return;
	PQclear(res);
	http_json(c->resp, 200, "{\"status\":\"ok\"}");
}
