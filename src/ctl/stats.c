/*
 * stats: mjsctl stats, one report of what the installation holds and does
 * right now: users, sessions, open streams per responder (from the heartbeats
 * in mjs.responders), generations by status, queue depth, the events table and
 * retention (mjs.retain: what it deleted, what waits for it).
 * The report is one SQL statement building one JSON object; --json prints it
 * as it is, the text form reads it back.
 */
#include "ctl/ctl.h"
#include "common/db.h"

#include <stdio.h>

static const char SQL_STATS[] =
	"SELECT json_build_object("
	" 'users', (SELECT json_build_object('total', count(*), 'disabled', count(*) FILTER (WHERE disabled)) "
	"           FROM mjs.users),"
	" 'sessions', (SELECT count(*) FROM mjs.sessions WHERE expires_at > now()),"
	" 'open_streams', (SELECT coalesce(sum(streams), 0) FROM mjs.responders "
	"                  WHERE heartbeat_at > now() - interval '30 seconds'),"
	" 'responders', (SELECT coalesce(json_agg(json_build_object('name', name, 'listen', listen, "
	"                  'streams', streams, 'heartbeat_age_s', "
	"                  round(extract(epoch FROM now() - heartbeat_at)::numeric, 1)) ORDER BY name), '[]') "
	"                FROM mjs.responders WHERE heartbeat_at > now() - interval '30 seconds'),"
	" 'generations', (SELECT json_build_object("
	"     'queued', count(*) FILTER (WHERE g.state = 'queued'),"
	"     'running', count(*) FILTER (WHERE g.state = 'running'),"
	"     'expired_leases', count(*) FILTER (WHERE g.state = 'running' AND g.lease_until < now()),"
	"     'by_status', (SELECT coalesce(json_object_agg(status, n), '{}') FROM ("
	"         SELECT m.status, count(*) AS n FROM mjs.generations g2 "
	"         JOIN mjs.messages m ON m.id = g2.message_id GROUP BY m.status ORDER BY m.status) s)) "
	"   FROM mjs.generations g WHERE g.state <> 'done'),"
	" 'queue_depth', (SELECT count(*) FROM mjs.generations "
	"                 WHERE state = 'queued' OR (state = 'running' AND lease_until < now())),"
	" 'events', json_build_object("
	"     'rows_estimate', (SELECT greatest(reltuples, 0)::bigint FROM pg_class "
	"                       WHERE oid = 'mjs.events'::regclass),"
	"     'bytes', pg_total_relation_size('mjs.events'),"
	"     'oldest', (SELECT mjs.rfc3339(min(created_at)) FROM mjs.events)),"
	/* what retention (mjs.retain) has done and what waits for it: deltas of finished
	   replies past delta_retention, counted up to a million from where it got */
	" 'retention', (SELECT json_build_object("
	"     'delta_backlog', (SELECT count(*) FROM (SELECT 1 FROM mjs.events e "
	"         WHERE e.created_at < now() - $1::bigint * interval '1 millisecond' "
	"           AND (r.delta_since IS NULL OR e.created_at >= r.delta_since) AND e.type = 'message.delta' "
	"           AND NOT EXISTS (SELECT 1 FROM mjs.generations g "
	"                           WHERE g.message_id = (e.data ->> 'message_id')::uuid AND g.state <> 'done') "
	"         LIMIT 1000000) x),"
	"     'last_run', mjs.rfc3339(r.last_run_at), 'last_general_run', mjs.rfc3339(r.last_general_at),"
	"     'deltas_deleted', r.deltas_deleted, 'events_deleted', r.events_deleted,"
	"     'generations_deleted', r.gens_deleted) FROM mjs.retention r WHERE r.id = 1))";

static long long get_int(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	json_object_object_get_ex(o, key, &v);
	return v;
}

static void print_text(struct json_object *s)
{
	struct json_object *users = get(s, "users"), *gens = get(s, "generations"), *ev = get(s, "events");
	struct json_object *resp = get(s, "responders"), *oldest = get(ev, "oldest");
	struct json_object *ret = get(s, "retention");
	size_t n = resp ? json_object_array_length(resp) : 0;
	int first = 1;

	printf("users          %lld (%lld disabled)\n", get_int(users, "total"), get_int(users, "disabled"));
	printf("sessions       %lld\n", get_int(s, "sessions"));
	printf("open streams   %lld\n", get_int(s, "open_streams"));
	for (size_t i = 0; i < n; i++) {
		struct json_object *r = json_object_array_get_idx(resp, i);
		printf("  %-30s %6lld  %s\n", json_object_get_string(get(r, "name")), get_int(r, "streams"),
		       json_object_get_string(get(r, "listen")));
	}
	printf("generations    %lld queued, %lld running, %lld with an expired lease\n",
	       get_int(gens, "queued"), get_int(gens, "running"), get_int(gens, "expired_leases"));
	printf("  by status   ");
	json_object_object_foreach(get(gens, "by_status"), status, count) {
		printf("%s %s %lld", first ? "" : ",", status, (long long)json_object_get_int64(count));
		first = 0;
	}
	printf("%s\n", first ? " none" : "");
	printf("queue depth    %lld\n", get_int(s, "queue_depth"));
	printf("events         about %lld rows, %lld bytes, oldest %s\n", get_int(ev, "rows_estimate"),
	       get_int(ev, "bytes"), oldest ? json_object_get_string(oldest) : "-");
	if (ret) {
		struct json_object *last = get(ret, "last_run");
		printf("retention      %lld deltas waiting; deleted so far %lld deltas, %lld events, "
		       "%lld generations; last run %s\n", get_int(ret, "delta_backlog"),
		       get_int(ret, "deltas_deleted"), get_int(ret, "events_deleted"),
		       get_int(ret, "generations_deleted"), last ? json_object_get_string(last) : "never");
	}
}

int ctl_stats(struct ctl *c)
{
	char delta[16];
	const char *params[1] = { delta };
	struct json_object *s;
	PGresult *res;

	if (!ctl_db(c))
		return EXIT_NODB;
	snprintf(delta, sizeof(delta), "%d", c->cfg->delta_retention_ms);
	if (!(res = db_exec(c->db, SQL_STATS, 1, params)))
		return EXIT_FAIL;
	s = ctl_json_value(res, 0, 0);
	PQclear(res);
	if (!s) {
		ctl_err("stats: unexpected answer from the database");
		return EXIT_FAIL;
	}
	if (c->json) {
		ctl_print_json(s);
	} else {
		print_text(s);
		json_object_put(s);
	}
	return EXIT_OK;
}
