/*
 * ctl: what the command groups of mjsctl share: the parsed command line, the
 * lazily opened database connection, exit codes and output.
 *
 * Output: text for people (aligned columns with a header), or with --json one
 * JSON object per line for lists and one object for reports. JSON is always
 * built with json-c, never printed from values.
 */
#ifndef MJS_CTL_CTL_H
#define MJS_CTL_CTL_H

#include "common/config.h"

#include <json-c/json.h>
#include <libpq-fe.h>

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define EXIT_NODB 3

/* options that may follow a command; each command says which it takes */
enum ctl_opt {
	OPT_STATUS = 1 << 0,
	OPT_PASSWORD_STDIN = 1 << 1,
	OPT_ALL = 1 << 2,
	OPT_USER = 1 << 3,
	OPT_OLDER_THAN = 1 << 4,
	OPT_KEEP = 1 << 5,
	OPT_LIMIT = 1 << 6,
	OPT_DATABASE = 1 << 7,
	OPT_ADMIN = 1 << 8,
};

struct ctl {
	struct config *cfg;
	const char *config_path;	/* the file read, or NULL when the default was missing */
	const char *config_target;	/* the file -c names, or the default (setup writes it) */
	PGconn *db;
	int json;
	unsigned opts;			/* enum ctl_opt bits given */
	const char *user;		/* --user */
	const char *older_than;		/* --older-than */
	long long keep;			/* --keep */
	long long limit;		/* --limit */
	const char *database;		/* --database (setup) */
	const char *admin;		/* --admin (setup) */
	const char *const *args;	/* positional arguments after the command words */
	int nargs;
};

/*
 * The database connection, opened on first use. Returns NULL after saying on
 * stderr that the database cannot be reached: the command exits EXIT_NODB.
 */
PGconn *ctl_db(struct ctl *c);

/* A conninfo as it may be shown: its parts with the password masked (for messages). */
const char *ctl_conninfo_shown(const char *conninfo, char *out, size_t len);

/* Prints an error line "mjsctl: ..." on stderr. */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Prints the rows of res: with --json one object per row (column names as keys;
 * booleans, numbers, json columns and NULLs typed), else a table with a header.
 */
void ctl_print_rows(const struct ctl *c, PGresult *res);

/* The value of column col of row 0 as JSON, typed as ctl_print_rows does (new reference). */
struct json_object *ctl_json_value(PGresult *res, int row, int col);

/* Prints obj as one line of JSON and drops the caller's reference. */
void ctl_print_json(struct json_object *obj);

/* True for a canonical UUID (what every id in mjs is). */
int ctl_is_uuid(const char *s);

/* The user name rule of mjs.users; says why on stderr when it fails. */
int ctl_username_ok(const char *name);

/*
 * Whether user name exists (compared ignoring case, as logins are): 1, or 0
 * after saying "no such user" on stderr, or -1 on a database error (said).
 * Needs the connection open (ctl_db).
 */
int ctl_user_exists(struct ctl *c, const char *name);

/* Parses a duration (s, m, h, d, w; bare numbers are seconds) into seconds. */
int ctl_parse_duration_s(const char *s, long long *out);

int ctl_migrate(struct ctl *c);
/* The md5 of text as PostgreSQL computes it (hex, 32 characters and NUL into out). Returns 0 or -1 (said). */
int ctl_md5(PGconn *db, const char *text, char *out);
/* Compares the built-in migrations with the database's; fills the counts. Returns 0 or -1 (said). */
int ctl_migrations_state(struct ctl *c, int *applied, int *pending, int print);

/* Where the definitions (sql/functions, sql/views) stand in the database. */
struct definitions_state {
	int applied;		/* files whose text the database has */
	int pending;		/* files new or changed since the last migrate */
	int drift;		/* objects changed, missing or added since the last migrate */
	char first_pending[64];
	char first_drift[200];
};

/*
 * Applies the definition files whose text changed since the last migrate (all
 * of them when an object drifted), in one transaction; counts them in ran.
 * The caller holds migrate's lock. Returns 0 or -1 (said).
 */
int ctl_definitions_apply(struct ctl *c, int *ran);
/* Fills st; with print, one line per file and per drifted object. Returns 0 or -1 (said). */
int ctl_definitions_state(struct ctl *c, struct definitions_state *st, int print);

int ctl_user_add(struct ctl *c);
int ctl_user_list(struct ctl *c);
int ctl_user_disable(struct ctl *c);
int ctl_user_enable(struct ctl *c);
int ctl_user_passwd(struct ctl *c);
int ctl_user_delete(struct ctl *c);

int ctl_session_list(struct ctl *c);
int ctl_session_revoke(struct ctl *c);

int ctl_gen_list(struct ctl *c);
int ctl_gen_stop(struct ctl *c);

int ctl_task_list(struct ctl *c);
int ctl_task_retry(struct ctl *c);

int ctl_events_prune(struct ctl *c);

int ctl_stats(struct ctl *c);
int ctl_limits(struct ctl *c);
int ctl_setup(struct ctl *c);
int ctl_check(struct ctl *c);

#endif
