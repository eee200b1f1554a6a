/*
 * definitions: the functions, views and triggers of schema mjs, one file each
 * under sql/functions/ and sql/views/ (built into mjsctl), kept in step with
 * the database by mjsctl migrate and watched by mjsctl check.
 *
 * Two records, both written by migrate in the transaction that applies:
 *   mjs.schema_definitions  the md5 of each file as last applied: a file whose
 *                           text changed since is applied again;
 *   mjs.schema_objects      the md5 of every function, view and trigger of the
 *                           schema as migrate left it (pg_get_functiondef and
 *                           friends): what check compares the live schema
 *                           with to find drift (an object changed or dropped
 *                           by hand, or one added that no file defines).
 * migrate repairs drift of the objects it made by applying every file again;
 * an object no file defines is reported, never dropped.
 */
#include "ctl/ctl.h"
#include "common/db.h"
#include "common/migrations.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const SQL_TABLES[] = {
	"CREATE TABLE IF NOT EXISTS mjs.schema_definitions ("
	" path text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
	"COMMENT ON TABLE mjs.schema_definitions IS 'The files of sql/functions and sql/views as mjsctl migrate last "
	"applied them (md5 of the text); a file whose text differs is applied again.'",
	"CREATE TABLE IF NOT EXISTS mjs.schema_objects (object text PRIMARY KEY, checksum text NOT NULL)",
	"COMMENT ON TABLE mjs.schema_objects IS 'Every function, view and trigger of schema mjs as mjsctl migrate left "
	"it (md5 of its definition); mjsctl check reports the live schema''s differences as drift.'",
};

/* Every function, view and trigger of schema mjs: (kind, name, object, checksum). */
#define SQL_LIVE \
	"SELECT 'function' AS kind, p.proname::text AS name," \
	" 'function ' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS object," \
	" md5(pg_get_functiondef(p.oid)) AS checksum" \
	" FROM pg_proc p WHERE p.pronamespace = 'mjs'::regnamespace" \
	" UNION ALL SELECT 'view', c.relname::text, 'view ' || c.relname, md5(pg_get_viewdef(c.oid))" \
	" FROM pg_class c WHERE c.relnamespace = 'mjs'::regnamespace AND c.relkind = 'v'" \
	" UNION ALL SELECT 'trigger', p.proname::text, 'trigger ' || t.tgname || ' on ' || c.relname," \
	" md5(pg_get_triggerdef(t.oid))" \
	" FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid" \
	" WHERE c.relnamespace = 'mjs'::regnamespace AND NOT t.tgisinternal"

/* Definitions print names as the search path shows them: the same path every time. */
static const char SQL_PATH[] = "SET LOCAL search_path TO pg_catalog";
static const char SQL_HAS_TABLES[] = "SELECT to_regclass('mjs.schema_objects') IS NOT NULL";
static const char SQL_RECORDED[] = "SELECT path, checksum FROM mjs.schema_definitions";
static const char SQL_RECORD[] =
	"INSERT INTO mjs.schema_definitions (path, checksum) VALUES ($1, $2)"
	" ON CONFLICT (path) DO UPDATE SET checksum = excluded.checksum, applied_at = now()";
static const char SQL_FORGET[] = "DELETE FROM mjs.schema_definitions WHERE NOT (path = ANY ($1::text[]))";
/*
 * Differences between the live schema and what migrate left, with $1 and $2 the
 * names of the functions and views the files define (arrays): changed, missing,
 * or added (unknown: no file defines its name; or new: a file's name, made by hand).
 */
static const char SQL_DRIFT[] =
	"WITH live AS (" SQL_LIVE ")"
	" SELECT coalesce(l.object, s.object),"
	"  CASE WHEN l.object IS NULL THEN 'missing'"
	"       WHEN s.object IS NULL AND NOT ((l.kind IN ('function', 'trigger') AND l.name = ANY ($1::text[]))"
	"                                  OR (l.kind = 'view' AND l.name = ANY ($2::text[]))) THEN 'unknown'"
	"       WHEN s.object IS NULL THEN 'new'"
	"       ELSE 'changed' END"
	" FROM live l FULL JOIN mjs.schema_objects s ON s.object = l.object"
	" WHERE l.object IS NULL OR s.object IS NULL OR l.checksum <> s.checksum"
	" ORDER BY 1";
/*
 * The new record after applying: every live object, except those that were there
 * before, unrecorded and untouched (made by hand: check goes on reporting them).
 */
static const char SQL_BEFORE[] =
	"CREATE TEMP TABLE mjs_unrecorded ON COMMIT DROP AS"
	" SELECT l.object, l.checksum FROM (" SQL_LIVE ") l"
	" WHERE NOT EXISTS (SELECT 1 FROM mjs.schema_objects s WHERE s.object = l.object)";
static const char SQL_UNRECORD[] = "DELETE FROM mjs.schema_objects";
static const char SQL_SNAPSHOT[] =
	"INSERT INTO mjs.schema_objects (object, checksum)"
	" SELECT l.object, l.checksum FROM (" SQL_LIVE ") l"
	" WHERE NOT EXISTS (SELECT 1 FROM mjs_unrecorded u WHERE u.object = l.object AND u.checksum = l.checksum)";

static const char *recorded_checksum(PGresult *res, const char *path)
{
	for (int i = 0; res && i < PQntuples(res); i++)
		if (strcmp(PQgetvalue(res, i, 0), path) == 0)
			return PQgetvalue(res, i, 1);
	return NULL;
}

/* '{a,b,...}': the names the files define of one kind (names are [a-z_0-9]). */
static char *names_array(const char *kind)
{
	size_t len = 3, used = 0;
	char *out;

	for (int i = 0; i < sql_definitions_count; i++)
		len += strlen(sql_definitions[i].name) + 1;
	out = malloc(len);
	if (!out)
		return NULL;
	out[used++] = '{';
	for (int i = 0; i < sql_definitions_count; i++) {
		if (strcmp(sql_definitions[i].kind, kind) != 0)
			continue;
		if (used > 1)
			out[used++] = ',';
		used += (size_t)sprintf(out + used, "%s", sql_definitions[i].name);
	}
	out[used++] = '}';
	out[used] = '\0';
	return out;
}

/* The drift rows (object, how), or NULL on error (said). Needs search_path set. */
static PGresult *drift(PGconn *db)
{
	char *functions = names_array("function"), *views = names_array("view");
	const char *params[2] = { functions, views };
	PGresult *res = functions && views ? db_exec(db, SQL_DRIFT, 2, params) : NULL;

	free(functions);
	free(views);
	return res;
}

static int has_tables(PGconn *db)
{
	PGresult *t = db_exec(db, SQL_HAS_TABLES, 0, NULL);
	int exists;

	if (!t)
		return -1;
	exists = PQgetvalue(t, 0, 0)[0] == 't';
	PQclear(t);
	return exists;
}

static void print_file(const struct ctl *c, const char *path, const char *state)
{
	if (c->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "definition", json_object_new_string(path));
		json_object_object_add(o, "state", json_object_new_string(state));
		ctl_print_json(o);
	} else {
		printf("%-32s %s\n", path, state);
	}
}

/* Applies one file in the open transaction and records its checksum. */
static int apply_file(PGconn *db, const struct sql_definition *d, const char *sum)
{
	const char *params[2] = { d->path, sum };
	PGresult *r = PQexec(db, d->sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		ctl_err("sql/%s failed: %s", d->path, PQerrorMessage(db));
		PQclear(r);
		return -1;
	}
	PQclear(r);
	return db_command(db, SQL_RECORD, 2, params);
}

int ctl_definitions_apply(struct ctl *c, int *ran)
{
	PGconn *db = c->db;
	PGresult *recorded = NULL, *drifted = NULL;
	char *paths_array = NULL;
	int rc = -1, repair = 0;
	size_t len = 3;

	*ran = 0;
	if (db_command(db, "BEGIN", 0, NULL) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(SQL_TABLES) / sizeof(SQL_TABLES[0]); i++)
		if (db_command(db, SQL_TABLES[i], 0, NULL) < 0)
			goto out;
	/* bodies are checked when called: the files may refer to each other in any order */
	if (db_command(db, SQL_PATH, 0, NULL) < 0 || db_command(db, "SET LOCAL check_function_bodies = off", 0, NULL) < 0 ||
	    !(recorded = db_exec(db, SQL_RECORDED, 0, NULL)) || !(drifted = drift(db)) ||
	    db_command(db, SQL_BEFORE, 0, NULL) < 0)
		goto out;
	for (int i = 0; i < PQntuples(drifted); i++) {
		const char *how = PQgetvalue(drifted, i, 1);

		if (strcmp(how, "changed") == 0 || strcmp(how, "missing") == 0) {
			printf("drift: %s %s since the last migrate; applying every definition again\n",
			       PQgetvalue(drifted, i, 0), how);
			repair = 1;
		} else {
			ctl_err("warning: %s is in schema mjs but %s; left as it is", PQgetvalue(drifted, i, 0),
				strcmp(how, "unknown") == 0 ? "no file of sql/ defines it" : "was made by hand");
		}
	}
	for (int i = 0; i < sql_definitions_count; i++) {
		const struct sql_definition *d = &sql_definitions[i];
		const char *had = recorded_checksum(recorded, d->path);
		char sum[33];

		len += strlen(d->path) + 3;
		if (ctl_md5(db, d->sql, sum) < 0)
			goto out;
		if (!repair && had && strcmp(had, sum) == 0)
			continue;
		if (apply_file(db, d, sum) < 0)
			goto out;
		printf("applied sql/%s\n", d->path);
		(*ran)++;
	}
	/* the record forgets files this mjsctl no longer has (their objects stay until a migration drops them) */
	paths_array = malloc(len);
	if (!paths_array)
		goto out;
	strcpy(paths_array, "{");
	for (int i = 0; i < sql_definitions_count; i++) {
		if (i)
			strcat(paths_array, ",");
		strcat(paths_array, "\"");
		strcat(paths_array, sql_definitions[i].path);
		strcat(paths_array, "\"");
	}
	strcat(paths_array, "}");
	{
		const char *params[1] = { paths_array };

		if (db_command(db, SQL_FORGET, 1, params) < 0 || db_command(db, SQL_UNRECORD, 0, NULL) < 0 ||
		    db_command(db, SQL_SNAPSHOT, 0, NULL) < 0)
			goto out;
	}
	rc = db_command(db, "COMMIT", 0, NULL);
out:
	if (rc < 0)
		db_command(db, "ROLLBACK", 0, NULL);
	PQclear(recorded);
	PQclear(drifted);
	free(paths_array);
	return rc;
}

int ctl_definitions_state(struct ctl *c, struct definitions_state *st, int print)
{
	PGconn *db = c->db;
	PGresult *recorded = NULL, *drifted = NULL;
	int rc = -1, exists;

	memset(st, 0, sizeof(*st));
	if ((exists = has_tables(db)) < 0)
		return -1;
	if (db_command(db, "BEGIN", 0, NULL) < 0)
		return -1;
	if (exists && (db_command(db, SQL_PATH, 0, NULL) < 0 || !(recorded = db_exec(db, SQL_RECORDED, 0, NULL)) ||
		       !(drifted = drift(db))))
		goto out;
	for (int i = 0; i < sql_definitions_count; i++) {
		const struct sql_definition *d = &sql_definitions[i];
		const char *had = recorded_checksum(recorded, d->path);
		char sum[33];

		if (ctl_md5(db, d->sql, sum) < 0)
			goto out;
		if (had && strcmp(had, sum) == 0) {
			st->applied++;
		} else {
			st->pending++;
			if (!st->first_pending[0])
				snprintf(st->first_pending, sizeof(st->first_pending), "sql/%s", d->path);
		}
		if (print)
			print_file(c, d->path, had ? strcmp(had, sum) == 0 ? "applied" : "changed" : "pending");
	}
	for (int i = 0; drifted && i < PQntuples(drifted); i++) {
		const char *object = PQgetvalue(drifted, i, 0), *how = PQgetvalue(drifted, i, 1);

		st->drift++;
		if (!st->first_drift[0])
			snprintf(st->first_drift, sizeof(st->first_drift), "%s %s", object,
				 strcmp(how, "unknown") == 0 ? "is defined by no file" :
				 strcmp(how, "new") == 0 ? "was made by hand" : how);
		if (print) {
			if (c->json) {
				struct json_object *o = json_object_new_object();
				json_object_object_add(o, "object", json_object_new_string(object));
				json_object_object_add(o, "drift", json_object_new_string(how));
				ctl_print_json(o);
			} else {
				printf("%-32s drift: %s\n", object, how);
			}
		}
	}
	rc = 0;
out:
	db_command(db, rc < 0 ? "ROLLBACK" : "COMMIT", 0, NULL);
	PQclear(recorded);
	PQclear(drifted);
	return rc;
}
