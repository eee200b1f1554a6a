/*
 * mjsctl: the admin command. Reads the same config as the daemons.
 * Exit codes: 0 ok, 1 the operation failed (database, conflict), 2 bad usage or
 * config, 3 the database is unreachable.
 */
#include "common/config.h"
#include "common/db.h"
#include "common/log.h"
#include "common/migrations.h"
#include "common/password.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define EXIT_NODB 3

static int json_output;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mjsctl [-c CONFIG] [--json] COMMAND [ARGS]\n"
		"commands:\n"
		"  migrate [--status]          apply pending SQL migrations, or list them\n"
		"  user add NAME [--password-stdin]\n"
		"                              create a user; the password is read from stdin\n"
		"  check                       check the config and the database\n");
}

static PGconn *connect_or_die(const struct config *cfg)
{
	PGconn *db = db_connect(cfg->database);

	if (!db) {
		fprintf(stderr, "mjsctl: cannot connect to the database (database = %s)\n", cfg->database);
		exit(EXIT_NODB);
	}
	return db;
}

static const char *const SQL_MIGRATIONS_TABLE[] = {
	"CREATE SCHEMA IF NOT EXISTS mjs",
	"CREATE TABLE IF NOT EXISTS mjs.schema_migrations ("
	" version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
	" applied_at timestamptz NOT NULL DEFAULT now())",
	"COMMENT ON TABLE mjs.schema_migrations IS 'Migrations applied by mjsctl migrate, one row each, "
	"written in the transaction that applied it.'",
};

/* Returns the applied versions' checksums, or NULL (logged). */
static PGresult *applied_migrations(PGconn *db)
{
	return db_exec(db, "SELECT version, checksum, name, applied_at "
			   "FROM mjs.schema_migrations ORDER BY version", 0, NULL);
}

static const char *applied_checksum(PGresult *res, int version)
{
	for (int i = 0; i < PQntuples(res); i++)
		if (atoi(PQgetvalue(res, i, 0)) == version)
			return PQgetvalue(res, i, 1);
	return NULL;
}

static int checksum_of(PGconn *db, const char *sql, char *out)
{
	const char *params[1] = { sql };
	PGresult *res = db_exec(db, "SELECT md5($1)", 1, params);

	if (!res)
		return -1;
	snprintf(out, 33, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

static int cmd_migrate(PGconn *db, int status_only)
{
	PGresult *applied = NULL;
	int rc = EXIT_FAIL, ran = 0, max_known = 0;

	if (db_command(db, "SELECT pg_advisory_lock(hashtext('mjs.migrate'))", 0, NULL) < 0)
		return EXIT_FAIL;
	for (size_t i = 0; !status_only && i < sizeof(SQL_MIGRATIONS_TABLE) / sizeof(SQL_MIGRATIONS_TABLE[0]); i++)
		if (db_command(db, SQL_MIGRATIONS_TABLE[i], 0, NULL) < 0)
			goto out;
	if (status_only) {
		PGresult *t = db_exec(db, "SELECT to_regclass('mjs.schema_migrations') IS NOT NULL", 0, NULL);
		int exists = t && PQgetvalue(t, 0, 0)[0] == 't';
		PQclear(t);
		if (!exists) {
			for (int i = 0; i < migrations_count; i++)
				printf(json_output ? "{\"version\":%d,\"name\":\"%s\",\"state\":\"pending\"}\n"
						   : "%03d %-24s pending\n", migrations[i].version, migrations[i].name);
			rc = 0;
			goto out;
		}
	}
	applied = applied_migrations(db);
	if (!applied)
		goto out;
	for (int i = 0; i < migrations_count; i++) {
		const struct migration *m = &migrations[i];
		const char *have = applied_checksum(applied, m->version);
		char sum[33];

		if (m->version > max_known)
			max_known = m->version;
		if (checksum_of(db, m->sql, sum) < 0)
			goto out;
		if (have && strcmp(have, sum) != 0) {
			fprintf(stderr, "mjsctl: migration %03d_%s was changed after it was applied; refusing\n",
				m->version, m->name);
			goto out;
		}
		if (status_only) {
			printf(json_output ? "{\"version\":%d,\"name\":\"%s\",\"state\":\"%s\"}\n"
					   : "%03d %-24s %s\n", m->version, m->name, have ? "applied" : "pending");
			continue;
		}
		if (have)
			continue;
		if (db_command(db, "BEGIN", 0, NULL) < 0)
			goto out;
		PGresult *r = PQexec(db, m->sql);
		if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
			fprintf(stderr, "mjsctl: migration %03d_%s failed: %s", m->version, m->name,
				PQerrorMessage(db));
			PQclear(r);
			db_command(db, "ROLLBACK", 0, NULL);
			goto out;
		}
		PQclear(r);
		{
			char v[16];
			const char *params[3] = { v, m->name, sum };
			snprintf(v, sizeof(v), "%d", m->version);
			if (db_command(db, "INSERT INTO mjs.schema_migrations (version, name, checksum) "
					   "VALUES ($1, $2, $3)", 3, params) < 0 ||
			    db_command(db, "COMMIT", 0, NULL) < 0) {
				db_command(db, "ROLLBACK", 0, NULL);
				goto out;
			}
		}
		printf("applied %03d_%s\n", m->version, m->name);
		ran++;
	}
	for (int i = 0; i < PQntuples(applied); i++) {
		if (atoi(PQgetvalue(applied, i, 0)) > max_known) {
			fprintf(stderr, "mjsctl: the database has migration %s, newer than this mjsctl knows\n",
				PQgetvalue(applied, i, 0));
			goto out;
		}
	}
	if (!status_only && !ran)
		printf("database is up to date\n");
	rc = 0;
out:
	PQclear(applied);
	db_command(db, "SELECT pg_advisory_unlock(hashtext('mjs.migrate'))", 0, NULL);
	return rc;
}

static int read_password_stdin(char *out, size_t outlen)
{
	size_t n;

	if (isatty(STDIN_FILENO))
		fprintf(stderr, "password: ");
	if (!fgets(out, (int)outlen, stdin))
		return -1;
	n = strlen(out);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
	return 0;
}

#define USERNAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"

/* The rule of the users_username_format constraint, checked before asking for a password. */
static int username_ok(const char *name)
{
	size_t n = strlen(name);

	if (n >= 3 && n <= 32 && strspn(name, USERNAME_CHARS) == n)
		return 1;
	fprintf(stderr, "mjsctl: a username is 3 to 32 letters, digits, '_', '.' or '-'\n");
	return 0;
}

static int cmd_user_add(PGconn *db, const char *name)
{
	char password[PASSWORD_MAX + 2], hash[256];
	const char *params[2] = { name, hash };
	PGresult *res;
	int rc = EXIT_FAIL;

	if (read_password_stdin(password, sizeof(password)) < 0 || strlen(password) < PASSWORD_MIN ||
	    strlen(password) > PASSWORD_MAX) {
		fprintf(stderr, "mjsctl: the password (one line on stdin) must be %d to %d bytes\n",
			PASSWORD_MIN, PASSWORD_MAX);
		return EXIT_USAGE;
	}
	if (password_hash(password, hash, sizeof(hash)) < 0) {
		fprintf(stderr, "mjsctl: password hashing failed\n");
		goto out;
	}
	res = db_exec(db, "INSERT INTO mjs.users (username, password_hash) VALUES ($1, $2) "
			  "ON CONFLICT ((lower(username))) DO NOTHING RETURNING id", 2, params);
	if (!res)
		goto out;
	if (PQntuples(res) == 0) {
		fprintf(stderr, "mjsctl: user %s already exists\n", name);
	} else {
		printf(json_output ? "{\"id\":\"%s\",\"username\":\"%s\"}\n" : "created user %2$s id=%1$s\n",
		       PQgetvalue(res, 0, 0), name);
		rc = 0;
	}
	PQclear(res);
out:
	explicit_bzero(password, sizeof(password));
	return rc;
}

static int cmd_check(PGconn *db)
{
	int rc = cmd_migrate(db, 1);

	if (rc == 0)
		printf("database reachable\n");
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "status", no_argument, NULL, 's' },
		{ "password-stdin", no_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	struct config cfg;
	const char *path = getenv("MJS_CONFIG");
	int must_exist = path != NULL, opt, status_only = 0, rc;
	char err[512];
	const char **args = NULL;
	int nargs = 0;
	PGconn *db;

	config_defaults(&cfg);
	while ((opt = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': path = optarg; must_exist = 1; break;
		case 'j': json_output = 1; break;
		case 'h': usage(stdout); config_free(&cfg); return 0;
		default: usage(stderr); config_free(&cfg); return EXIT_USAGE;
		}
	}
	if (config_load(&cfg, path ? path : CONFIG_DEFAULT_PATH, must_exist, err, sizeof(err)) < 0) {
		fprintf(stderr, "mjsctl: %s\n", err);
		config_free(&cfg);
		return EXIT_USAGE;
	}
	log_set_level(LOG_ERROR);
	argc -= optind;
	argv += optind;
	if (argc < 1)
		goto usage;
	args = calloc((size_t)argc, sizeof(*args));
	if (!args) {
		fprintf(stderr, "mjsctl: out of memory\n");
		config_free(&cfg);
		return EXIT_FAILURE;
	}
	/* options after the command; every other word is a positional argument */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--status")) {
			status_only = 1;
		} else if (!strcmp(argv[i], "--json")) {
			json_output = 1;
		} else if (!strcmp(argv[i], "--password-stdin")) {
			/* the password always comes from stdin; accepted for scripts that say so */
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "mjsctl: unknown option \"%s\"\n", argv[i]);
			goto usage;
		} else {
			args[nargs++] = argv[i];
		}
	}
	if (!strcmp(argv[0], "migrate") && nargs == 0) {
		db = connect_or_die(&cfg);
		rc = cmd_migrate(db, status_only);
	} else if (!strcmp(argv[0], "user") && nargs == 2 && !strcmp(args[0], "add")) {
		if (!username_ok(args[1]))
			goto usage;
		db = connect_or_die(&cfg);
		rc = cmd_user_add(db, args[1]);
	} else if (!strcmp(argv[0], "check") && nargs == 0) {
		db = connect_or_die(&cfg);
		rc = cmd_check(db);
	} else {
		if (strcmp(argv[0], "migrate") && strcmp(argv[0], "user") && strcmp(argv[0], "check"))
			fprintf(stderr, "mjsctl: unknown command \"%s\"\n", argv[0]);
		else
			fprintf(stderr, "mjsctl: wrong arguments for \"%s\"\n", argv[0]);
		goto usage;
	}
	PQfinish(db);
	free(args);
	config_free(&cfg);
	return rc;
usage:
	usage(stderr);
	free(args);
	config_free(&cfg);
	return EXIT_USAGE;
}
