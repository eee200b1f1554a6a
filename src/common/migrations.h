/*
 * migrations: the SQL of sql/, embedded at build time by
 * build-aux/embed-sql.sh so mjsctl migrate needs no files at run time:
 * the numbered migrations (sql/migrations/NNN_name.sql: tables, indexes,
 * types), applied once each, and the definitions (sql/functions/NAME.sql,
 * sql/views/NAME.sql: CREATE OR REPLACE), applied whenever their text changes.
 */
#ifndef MJS_COMMON_MIGRATIONS_H
#define MJS_COMMON_MIGRATIONS_H

struct migration {
	int version;
	const char *name;
	const char *sql;
};

struct sql_definition {
	const char *path;	/* "functions/emit.sql": the file under sql/ */
	const char *kind;	/* "function" or "view" */
	const char *name;	/* what it defines in schema mjs: the file's name */
	const char *sql;
};

extern const struct migration migrations[];
extern const int migrations_count;
/* functions first, then views, each in name order: the order they are applied in */
extern const struct sql_definition sql_definitions[];
extern const int sql_definitions_count;

#endif
