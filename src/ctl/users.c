/*
 * users: mjsctl user add|list|disable|enable|passwd|delete.
 *
 * Users are named by user name (case-insensitive, as logins are). Disabling a
 * user, changing its password or deleting it also deletes its sessions in the
 * same statement: the sessions_ended trigger notifies mjs_sessions, so every
 * responder closes that user's open event streams at once.
 */
#include "ctl/ctl.h"
#include "common/db.h"
#include "common/password.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

/* Reads the password from stdin and hashes it into hash. Returns 0 or an exit code (said). */
static int new_password_hash(char *hash, size_t hashlen)
{
	char password[PASSWORD_MAX + 2];
	int rc = EXIT_OK;

	if (read_password_stdin(password, sizeof(password)) < 0 || strlen(password) < PASSWORD_MIN ||
	    strlen(password) > PASSWORD_MAX) {
		ctl_err("the password (one line on stdin) must be %d to %d bytes", PASSWORD_MIN, PASSWORD_MAX);
		rc = EXIT_USAGE;
	} else if (password_hash(password, hash, hashlen) < 0) {
		ctl_err("password hashing failed");
		rc = EXIT_FAIL;
	}
	explicit_bzero(password, sizeof(password));
	return rc;
}

static const char SQL_USER_ADD[] =
	"INSERT INTO mjs.users (username, password_hash) VALUES ($1, $2) "
	"ON CONFLICT ((lower(username))) DO NOTHING RETURNING id, username";

int ctl_user_add(struct ctl *c)
{
	char hash[256];
	const char *params[2] = { c->args[0], hash };
	PGresult *res;
	int rc;

	if (!ctl_username_ok(c->args[0]))
		return EXIT_USAGE;
	if ((rc = new_password_hash(hash, sizeof(hash))) != EXIT_OK)
		return rc;
	if (!ctl_db(c))
		return EXIT_NODB;
	res = db_exec(c->db, SQL_USER_ADD, 2, params);
	if (!res)
		return EXIT_FAIL;
	if (PQntuples(res) == 0) {
		ctl_err("user %s already exists", c->args[0]);
		rc = EXIT_FAIL;
	} else if (c->json) {
		ctl_print_rows(c, res);
	} else {
		printf("created user %s id=%s\n", PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 0));
	}
	PQclear(res);
	return rc;
}

static const char SQL_USER_LIST[] =
	"SELECT u.username, u.id, u.disabled, mjs.rfc3339(u.created_at) AS created_at, u.event_seq, "
	"  (SELECT count(*) FROM mjs.sessions s WHERE s.user_id = u.id AND s.expires_at > now()) AS sessions "
	"FROM mjs.users u ORDER BY lower(u.username)";

int ctl_user_list(struct ctl *c)
{
	PGresult *res;

	if (!ctl_db(c))
		return EXIT_NODB;
	if (!(res = db_exec(c->db, SQL_USER_LIST, 0, NULL)))
		return EXIT_FAIL;
	ctl_print_rows(c, res);
	PQclear(res);
	return EXIT_OK;
}

/*
 * One statement per change: the user's row and the deletion of its sessions
 * (whose trigger closes the open streams) commit together.
 */
static const char SQL_USER_DISABLE[] =
	"WITH u AS (UPDATE mjs.users SET disabled = true WHERE lower(username) = lower($1) "
	"           RETURNING id, username), "
	"     s AS (DELETE FROM mjs.sessions WHERE user_id IN (SELECT id FROM u) RETURNING 1) "
	"SELECT u.username, u.id, true AS disabled, (SELECT count(*) FROM s) AS sessions_ended FROM u";
static const char SQL_USER_ENABLE[] =
	"UPDATE mjs.users SET disabled = false WHERE lower(username) = lower($1) "
	"RETURNING username, id, disabled";
static const char SQL_USER_PASSWD[] =
	"WITH u AS (UPDATE mjs.users SET password_hash = $2 WHERE lower(username) = lower($1) "
	"           RETURNING id, username), "
	"     s AS (DELETE FROM mjs.sessions WHERE user_id IN (SELECT id FROM u) RETURNING 1) "
	"SELECT u.username, u.id, (SELECT count(*) FROM s) AS sessions_ended FROM u";
/* sessions, conversations, messages, generations and events go with it (ON DELETE CASCADE) */
static const char SQL_USER_DELETE[] =
	"DELETE FROM mjs.users WHERE lower(username) = lower($1) RETURNING username, id";

/* Runs one of the statements above for user args[0]; prints the row it returns. */
static int change_user(struct ctl *c, const char *sql, const char *hash, const char *done)
{
	const char *params[2] = { c->args[0], hash };
	PGresult *res;
	int rc = EXIT_OK;

	if (!ctl_username_ok(c->args[0]))
		return EXIT_USAGE;
	if (!ctl_db(c))
		return EXIT_NODB;
	if (!(res = db_exec(c->db, sql, hash ? 2 : 1, params)))
		return EXIT_FAIL;
	if (PQntuples(res) == 0) {
		ctl_err("no such user: %s", c->args[0]);
		rc = EXIT_FAIL;
	} else if (c->json) {
		ctl_print_rows(c, res);
	} else {
		int ended = PQfnumber(res, "sessions_ended");
		printf("%s user %s id=%s", done, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
		if (ended >= 0)
			printf(" sessions_ended=%s", PQgetvalue(res, 0, ended));
		printf("\n");
	}
	PQclear(res);
	return rc;
}

int ctl_user_disable(struct ctl *c)
{
	return change_user(c, SQL_USER_DISABLE, NULL, "disabled");
}

int ctl_user_enable(struct ctl *c)
{
	return change_user(c, SQL_USER_ENABLE, NULL, "enabled");
}

int ctl_user_passwd(struct ctl *c)
{
	char hash[256];
	int rc;

	if (!ctl_username_ok(c->args[0]))
		return EXIT_USAGE;
	if ((rc = new_password_hash(hash, sizeof(hash))) != EXIT_OK)
		return rc;
	return change_user(c, SQL_USER_PASSWD, hash, "changed the password of");
}

int ctl_user_delete(struct ctl *c)
{
	return change_user(c, SQL_USER_DELETE, NULL, "deleted");
}
