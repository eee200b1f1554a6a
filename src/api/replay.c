/*
 * replay: one catch-up page from mjs.events (replay.h).
 */
#include "api/replay.h"
#include "api/delivery.h"
#include "common/db.h"

#include <stdio.h>
#include <stdlib.h>

/*
 * A page holds at most $3 events and, past its first, $4 bytes of data (what
 * the queue has room for: a page of large events is not read for one or two
 * of them); total is how many the page had before the byte cap. The sizes are
 * the stored ones (pg_column_size: event data is stored uncompressed,
 * sql/migrations/001_baseline.sql), read from the TOAST pointers, so what is
 * left out is never read. k holds what the epoch rule needs (delivery.h): the
 * epochs of the stream's last event and of the head, and the current one.
 */
static const char SQL_CATCH_UP[] =
	"SELECT u.event_seq, e.seq, e.type, e.data::text, e.total, e.epoch, k.after_epoch, k.head_epoch, k.epoch "
	"FROM mjs.users u "
	"CROSS JOIN LATERAL (SELECT"
	"  (SELECT a.epoch FROM mjs.events a WHERE a.user_id = u.id AND a.seq = $2) AS after_epoch,"
	"  (SELECT h.epoch FROM mjs.events h WHERE h.user_id = u.id AND h.seq = u.event_seq) AS head_epoch,"
	"  mjs.epoch() AS epoch) k "
	"LEFT JOIN LATERAL (SELECT x.seq, x.type, x.data, x.total, x.epoch FROM ("
	"  SELECT w.seq, w.type, w.data, w.epoch, count(*) OVER () AS total,"
	"    sum(pg_column_size(w.data)) OVER (ORDER BY w.seq) AS upto, row_number() OVER (ORDER BY w.seq) AS rn"
	"  FROM (SELECT seq, type, data, epoch FROM mjs.events WHERE user_id = u.id AND seq > $2 ORDER BY seq LIMIT $3) w"
	"  ) x WHERE x.upto <= $4 OR x.rn = 1) e ON true "
	"WHERE u.id = $1 ORDER BY e.seq";

static int32_t epoch_at(const PGresult *res, int col)
{
	return PQgetisnull(res, 0, col) ? 0 : (int32_t)strtol(PQgetvalue(res, 0, col), NULL, 10);
}

int replay_page(PGconn *db, struct streams *ss, struct stream *s, int limit)
{
	char after[24], lim[16], room[24];
	const char *params[4] = { s->user_id, after, lim, room };
	struct replay_page page = { .limit = limit };
	struct replay_row *rows = NULL;
	PGresult *res;
	int n, rc;

	snprintf(after, sizeof(after), "%lld", (long long)(s->last_seq < 0 ? 0 : s->last_seq));
	snprintf(lim, sizeof(lim), "%d", limit);
	snprintf(room, sizeof(room), "%zu", delivery_page_room(ss, s));
	res = db_exec(db, SQL_CATCH_UP, 4, params);
	if (!res)
		return -1;
	n = PQntuples(res);
	page.user_found = n > 0;
	if (n > 0) {
		page.head = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		page.after_epoch = epoch_at(res, 6);
		page.epoch = epoch_at(res, 8);
		page.head_epoch = epoch_at(res, 7) ? epoch_at(res, 7) : page.epoch;
		if (!PQgetisnull(res, 0, 1)) {
			rows = calloc((size_t)n, sizeof(*rows));
			if (!rows) {
				PQclear(res);
				return -1;
			}
			for (int i = 0; i < n; i++) {
				rows[i].seq = strtoll(PQgetvalue(res, i, 1), NULL, 10);
				rows[i].epoch = (int32_t)strtol(PQgetvalue(res, i, 5), NULL, 10);
				rows[i].type = PQgetvalue(res, i, 2);
				rows[i].type_len = (size_t)PQgetlength(res, i, 2);
				rows[i].data = PQgetvalue(res, i, 3);
				rows[i].data_len = (size_t)PQgetlength(res, i, 3);
			}
			page.rows = rows;
			page.n = n;
			page.total = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
		}
	}
	rc = delivery_page(ss, s, &page);
	free(rows);
	PQclear(res);
	return rc;
}
