/*
 * migrate: applies the SQL built into mjsctl, under an advisory lock so
 * concurrent runs wait for each other: first the numbered migrations
 * (sql/migrations/NNN_*.sql) not applied yet, each in its own transaction with
 * its row in mjs.schema_migrations (an applied migration whose text changed,
 * or one newer than this mjsctl knows, is refused); then the definitions
 * (sql/functions, sql/views) whose text changed, in one transaction
 * (definitions.c).
 */
#include "ctl/ctl.h"
#include "common/db.h"
#include "common/migrations.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const SQL_MIGRATIONS_TABLE[] = {
	"CREATE SCHEMA IF NOT EXISTS mjs",
	"CREATE TABLE IF NOT EXISTS mjs.schema_migrations ("
	" version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
	" applied_at timestamptz NOT NULL DEFAULT now())",
	"COMMENT ON TABLE mjs.schema_migrations IS 'Migrations applied by mjsctl migrate, one row each, "
	"written in the transaction that applied it.'",
};

static const char SQL_HAS_TABLE[] = "SELECT to_regclass('mjs.schema_migrations') IS NOT NULL";
static const char SQL_APPLIED[] = "SELECT version, checksum FROM mjs.schema_migrations ORDER BY version";
static const char SQL_CHECKSUM[] = "SELECT md5($1)";
static const char SQL_RECORD[] = "INSERT INTO mjs.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)";
static const char SQL_LOCK[] = "SELECT pg_advisory_lock(hashtext('mjs.migrate'))";
static const char SQL_UNLOCK[] = "SELECT pg_advisory_unlock(hashtext('mjs.migrate'))";

static const char *applied_checksum(PGresult *res, int version)
{
	for (int i = 0; res && i < PQntuples(res); i++)
		if (atoi(PQgetvalue(res, i, 0)) == version)
			return PQgetvalue(res, i, 1);
	return NULL;
}

int ctl_md5(PGconn *db, const char *sql, char *out)
{
	const char *params[1] = { sql };
	PGresult *res = db_exec(db, SQL_CHECKSUM, 1, params);

	if (!res)
		return -1;
	snprintf(out, 33, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

static void print_state(const struct ctl *c, const struct migration *m, const char *state)
{
	if (c->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "version", json_object_new_int(m->version));
		json_object_object_add(o, "name", json_object_new_string(m->name));
		json_object_object_add(o, "state", json_object_new_string(state));
		ctl_print_json(o);
	} else {
		printf("%03d %-24s %s\n", m->version, m->name, state);
	}
}

/* The applied migrations (NULL when the table does not exist yet); -1 on error. */
static int load_applied(PGconn *db, PGresult **out)
{
	PGresult *t = db_exec(db, SQL_HAS_TABLE, 0, NULL);
	int exists;

	*out = NULL;
	if (!t)
		return -1;
	exists = PQgetvalue(t, 0, 0)[0] == 't';
	PQclear(t);
	if (exists && !(*out = db_exec(db, SQL_APPLIED, 0, NULL)))
		return -1;
	return 0;
}

int ctl_migrations_state(struct ctl *c, int *applied, int *pending, int print)
{
	PGresult *have = NULL;
	int rc = -1, max_known = 0;

	*applied = *pending = 0;
	if (load_applied(c->db, &have) < 0)
		return -1;
	for (int i = 0; i < migrations_count; i++) {
		const struct migration *m = &migrations[i];
		const char *sum_have = applied_checksum(have, m->version);
		char sum[33];

		if (m->version > max_known)
			max_known = m->version;
		if (sum_have) {
			if (ctl_md5(c->db, m->sql, sum) < 0)
				goto out;
			if (strcmp(sum_have, sum) != 0) {
				ctl_err("migration %03d_%s was changed after it was applied", m->version, m->name);
				goto out;
			}
		}
		if (print)
			print_state(c, m, sum_have ? "applied" : "pending");
		if (sum_have)
			(*applied)++;
		else
			(*pending)++;
	}
	for (int i = 0; have && i < PQntuples(have); i++) {
		if (atoi(PQgetvalue(have, i, 0)) > max_known) {
			ctl_err("the database has migration %s, newer than this mjsctl knows",
				PQgetvalue(have, i, 0));
			goto out;
		}
	}
	rc = 0;
out:
	PQclear(have);
	return rc;
}

static int apply_one(PGconn *db, const struct migration *m)
{
	char v[16], sum[33];
	const char *params[3] = { v, m->name, sum };
	PGresult *r;

	if (ctl_md5(db, m->sql, sum) < 0 || db_command(db, "BEGIN", 0, NULL) < 0)
		return -1;
	r = PQexec(db, m->sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		ctl_err("migration %03d_%s failed: %s", m->version, m->name, PQerrorMessage(db));
		PQclear(r);
		db_command(db, "ROLLBACK", 0, NULL);
		return -1;
	}
	PQclear(r);
	snprintf(v, sizeof(v), "%d", m->version);
	if (db_command(db, SQL_RECORD, 3, params) < 0 || db_command(db, "COMMIT", 0, NULL) < 0) {
		db_command(db, "ROLLBACK", 0, NULL);
		return -1;
	}
	return 0;
}

int ctl_migrate(struct ctl *c)
{
	PGresult *have = NULL;
	int rc = EXIT_FAIL, ran = 0, defs, applied, pending;

	if (!ctl_db(c))
		return EXIT_NODB;
	if (c->opts & OPT_STATUS) {
		struct definitions_state st;

		if (ctl_migrations_state(c, &applied, &pending, 1) < 0 || ctl_definitions_state(c, &st, 1) < 0)
			return EXIT_FAIL;
		return EXIT_OK;
	}
	if (db_command(c->db, SQL_LOCK, 0, NULL) < 0)
		return EXIT_FAIL;
	for (size_t i = 0; i < sizeof(SQL_MIGRATIONS_TABLE) / sizeof(SQL_MIGRATIONS_TABLE[0]); i++)
		if (db_command(c->db, SQL_MIGRATIONS_TABLE[i], 0, NULL) < 0)
			goto out;
	/* refuses changed or unknown migrations before applying anything */
	if (ctl_migrations_state(c, &applied, &pending, 0) < 0 || load_applied(c->db, &have) < 0)
		goto out;
	for (int i = 0; i < migrations_count; i++) {
		const struct migration *m = &migrations[i];

		if (applied_checksum(have, m->version))
			continue;
		if (apply_one(c->db, m) < 0)
			goto out;
		printf("applied %03d_%s\n", m->version, m->name);
		ran++;
	}
	if (ctl_definitions_apply(c, &defs) < 0)
		goto out;
	ran += defs;
	if (!ran)
		printf("database is up to date\n");
	rc = EXIT_OK;
out:
	PQclear(have);
	db_command(c->db, SQL_UNLOCK, 0, NULL);
	return rc;
}
