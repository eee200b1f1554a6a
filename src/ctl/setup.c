/*
 * setup: mjsctl setup [--database CONNINFO] [--admin CONNINFO], a first run on
 * a machine with PostgreSQL, safe to run again:
 *   1. the configuration file (-c, default /etc/mjs/mjs.conf): kept when it
 *      exists, else written, mode 0640 and group mjs when there is one, with
 *      database = CONNINFO (default "dbname=mjs user=mjs") and a fresh random
 *      password for the role;
 *   2. the role and the database named there, made by a PostgreSQL superuser
 *      over --admin (default: the same host and port, database postgres) when
 *      they are missing; the role gets the fresh password. Run as root, this
 *      connects as the OS user postgres (peer authentication). Without the
 *      rights it prints the commands to run and stops;
 *   3. the migrations, applied as the role itself so it owns what they make;
 *      run as root, as the OS user of the role's name when there is one (the
 *      package's mjs), else as root;
 *   4. what to do next: the nginx server block and the services.
 * Statements are parameterized; the two DDL statements are built by the
 * server's format() from parameters (%I, %L), never by string pasting here.
 */
#include "config.h"
#include "ctl/ctl.h"
#include "common/db.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PKGDATADIR
#define PKGDATADIR "/usr/share/mjs"
#endif
#define DEFAULT_DATABASE "dbname=mjs user=mjs"

struct target {
	char dbname[64], role[64];
	char host[256], port[16];
	char password[64];	/* "" unless the configuration was written now */
};

/* dbname, user, host and port of a conninfo; the defaults mjs/mjs. */
static int parse_target(const char *conninfo, struct target *t)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &err);

	if (!opts) {
		ctl_err("bad database setting \"%.200s\": %s", conninfo, err ? err : "cannot parse it");
		PQfreemem(err);
		return -1;
	}
	snprintf(t->dbname, sizeof(t->dbname), "mjs");
	snprintf(t->role, sizeof(t->role), "mjs");
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		if (!strcmp(o->keyword, "dbname"))
			snprintf(t->dbname, sizeof(t->dbname), "%s", o->val);
		else if (!strcmp(o->keyword, "user"))
			snprintf(t->role, sizeof(t->role), "%s", o->val);
		else if (!strcmp(o->keyword, "host"))
			snprintf(t->host, sizeof(t->host), "%s", o->val);
		else if (!strcmp(o->keyword, "port"))
			snprintf(t->port, sizeof(t->port), "%s", o->val);
	}
	PQconninfoFree(opts);
	return 0;
}

/* A conninfo value, quoted as libpq wants it. */
static void conninfo_value(char *out, size_t len, const char *v)
{
	size_t n = 0;

	if (len < 3)
		return;
	out[n++] = '\'';
	for (; *v && n + 3 < len; v++) {
		if (*v == '\'' || *v == '\\')
			out[n++] = '\\';
		out[n++] = *v;
	}
	out[n++] = '\'';
	out[n] = '\0';
}

static int write_config(const char *path, const char *database)
{
	char tmp[4096];
	struct group *g = getgrnam("mjs");
	time_t now = time(NULL);
	FILE *f;
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.new", path) >= sizeof(tmp))
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		ctl_err("cannot write %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	fprintf(f, "# mjs.conf, written by mjsctl setup on %s", ctime(&now));
	fprintf(f, "# Every key, its default and its range: mjs.conf(5). Keep this file private: it\n"
		   "# holds the database password and the upstream keys.\n\n"
		   "database = %s\n\n"
		   "# The site's origin as browsers see it; with https:// the session cookie is Secure.\n"
		   "#public_origin = https://studio.example.org\n\n"
		   "# The AI upstreams (mjs-worker): an OpenAI-compatible chat API, and optionally a\n"
		   "# Midjourney-proxy for images and an OpenAI-style video API.\n"
		   "#chat_url = https://api.openai.com/v1\n#chat_api_key =\n#chat_model = gpt-4o-mini\n"
		   "#image_url =\n#image_secret =\n#video_url =\n#video_api_key =\n\n"
		   "# The responders' sockets are given by the systemd units (mjs-api@N: /run/mjs/api-N.sock);\n"
		   "# nginx reaches them through the group mjs.\n"
		   "socket_mode = 0660\n", database);
	if (g && fchown(fileno(f), (uid_t)-1, g->gr_gid) < 0)
		fprintf(stderr, "mjsctl: warning: cannot give %s to group mjs: %s\n", tmp, strerror(errno));
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		ctl_err("cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	printf("wrote %s (mode 0640%s)\n", path, g ? ", group mjs" : "");
	return 0;
}

/*
 * Runs fn(c, t) as OS user `user` in a child when we are root and that user
 * exists (so peer authentication applies), else in this process. Returns fn's
 * result, -1 when the child could not run it.
 */
static int as_user(const char *user, struct ctl *c, struct target *t, int (*fn)(struct ctl *, struct target *))
{
	struct passwd *pw = geteuid() == 0 ? getpwnam(user) : NULL;
	int status;
	pid_t pid;

	if (!pw)
		return fn(c, t);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		ctl_err("fork failed: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
			ctl_err("cannot become %s: %s", user, strerror(errno));
			_exit(2);
		}
		/* a directory the user may be in (libpq reads ~/.pgpass relative to HOME) */
		if (chdir("/") < 0)
			_exit(2);
		setenv("HOME", pw->pw_dir, 1);
		c->db = NULL;
		status = fn(c, t) == 0 ? 0 : 1;
		fflush(stdout);		/* _exit does not */
		fflush(stderr);
		_exit(status);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static const char SQL_ROLE_EXISTS[] = "SELECT 1 FROM pg_roles WHERE rolname = $1";
static const char SQL_DB_EXISTS[] = "SELECT 1 FROM pg_database WHERE datname = $1";
static const char SQL_CREATE_ROLE[] = "SELECT format('CREATE ROLE %I LOGIN', $1::text)";
static const char SQL_ROLE_PASSWORD[] = "SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)";
static const char SQL_CREATE_DB[] = "SELECT format('CREATE DATABASE %I OWNER %I', $1::text, $2::text)";

/* Builds a DDL statement with the server's format() and runs it. */
static int run_built(PGconn *db, const char *builder, int n, const char *const *params)
{
	PGresult *res = db_exec(db, builder, n, params);
	int rc;

	if (!res)
		return -1;
	rc = db_command(db, PQgetvalue(res, 0, 0), 0, NULL);
	PQclear(res);
	return rc;
}

static int exists(PGconn *db, const char *sql, const char *name)
{
	const char *params[1] = { name };
	PGresult *res = db_exec(db, sql, 1, params);
	int n;

	if (!res)
		return -1;
	n = PQntuples(res);
	PQclear(res);
	return n > 0;
}

static char admin_conninfo[1024];

/* Step 2, as the PostgreSQL superuser. */
static int make_role_and_db(struct ctl *c, struct target *t)
{
	PGconn *db = PQconnectdb(admin_conninfo);
	int have;

	(void)c;
	if (PQstatus(db) != CONNECTION_OK) {
		fprintf(stderr, "mjsctl: cannot connect as an administrator (%s): %s", admin_conninfo,
			PQerrorMessage(db));
		PQfinish(db);
		return -1;
	}
	if ((have = exists(db, SQL_ROLE_EXISTS, t->role)) < 0)
		goto fail;
	if (!have) {
		const char *params[1] = { t->role };
		if (run_built(db, SQL_CREATE_ROLE, 1, params) < 0)
			goto fail;
		printf("created role %s\n", t->role);
	}
	if (t->password[0]) {
		const char *params[2] = { t->role, t->password };
		if (run_built(db, SQL_ROLE_PASSWORD, 2, params) < 0)
			goto fail;
		printf("set the password of role %s (in the new configuration)\n", t->role);
	}
	if ((have = exists(db, SQL_DB_EXISTS, t->dbname)) < 0)
		goto fail;
	if (!have) {
		const char *params[2] = { t->dbname, t->role };
		if (run_built(db, SQL_CREATE_DB, 2, params) < 0)
			goto fail;
		printf("created database %s owned by %s\n", t->dbname, t->role);
	} else {
		printf("database %s exists\n", t->dbname);
	}
	PQfinish(db);
	return 0;
fail:
	PQfinish(db);
	return -1;
}

/* Step 3, as the role. */
static int migrate_as_role(struct ctl *c, struct target *t)
{
	int rc;

	(void)t;
	c->opts &= ~(unsigned)OPT_STATUS;
	rc = ctl_migrate(c);
	PQfinish(c->db);
	c->db = NULL;
	return rc == EXIT_OK ? 0 : -1;
}

int ctl_setup(struct ctl *c)
{
	const char *path = c->config_target;
	const char *database = c->cfg->database;
	char quoted[128], conninfo[1200];
	struct target t = { 0 };
	int wrote = 0, made;

	if (access(path, F_OK) == 0) {
		if (c->opts & OPT_DATABASE) {
			ctl_err("%s exists: its database setting is used; --database is for a new one", path);
			return EXIT_USAGE;
		}
		printf("using %s (it exists: kept as it is)\n", path);
		if (parse_target(database, &t) < 0)
			return EXIT_USAGE;
	} else {
		unsigned char raw[24];
		database = (c->opts & OPT_DATABASE) ? c->database : DEFAULT_DATABASE;
		if (parse_target(database, &t) < 0)
			return EXIT_USAGE;
		if (util_random_bytes(raw, sizeof(raw)) < 0) {
			ctl_err("no random bytes for the password");
			return EXIT_FAIL;
		}
		util_b64url_encode(raw, sizeof(raw), t.password);
		conninfo_value(quoted, sizeof(quoted), t.password);
		snprintf(conninfo, sizeof(conninfo), "%s password=%s", database, quoted);
		if (write_config(path, conninfo) < 0)
			return EXIT_FAIL;
		free(c->cfg->database);
		c->cfg->database = strdup(conninfo);
		if (!c->cfg->database)
			return EXIT_FAIL;
		wrote = 1;
	}
	if (c->opts & OPT_ADMIN) {
		snprintf(admin_conninfo, sizeof(admin_conninfo), "%s", c->admin);
	} else {
		char h[300] = "", p[40] = "";
		if (t.host[0]) {
			conninfo_value(quoted, sizeof(quoted), t.host);
			snprintf(h, sizeof(h), " host=%s", quoted);
		}
		if (t.port[0])
			snprintf(p, sizeof(p), " port=%s", t.port);
		snprintf(admin_conninfo, sizeof(admin_conninfo), "dbname=postgres%s%s", h, p);
	}
	/* without the rights, the role and database may exist already: go on and see */
	made = as_user("postgres", c, &t, make_role_and_db) == 0;
	if (as_user(t.role, c, &t, migrate_as_role) < 0) {
		if (!made)
			fprintf(stderr,
				"mjsctl: the role and the database need a PostgreSQL superuser. Run, then run mjsctl "
				"setup again:\n"
				"  sudo -u postgres psql -c \"CREATE ROLE %s LOGIN%s\"\n"
				"  sudo -u postgres createdb -O %s %s\n",
				t.role, wrote ? " PASSWORD '<the password in the database line of the configuration>'" : "",
				t.role, t.dbname);
		else
			ctl_err("the migrations failed (see above); fix it and run mjsctl setup again");
		return EXIT_FAIL;
	}
	printf("\nNext:\n"
	       "1. Set chat_url, chat_api_key and chat_model (and public_origin) in %s.\n"
	       "2. nginx: fill in the server block and load it (the server's name and certificate are yours):\n"
	       "     sed -e 's|@MJS_SERVER_NAME@|studio.example.org|' \\\n"
	       "         -e 's|@MJS_TLS_CERT@|/etc/ssl/certs/studio.pem|' -e 's|@MJS_TLS_KEY@|/etc/ssl/private/studio.key|' \\\n"
	       "         -e 's|@MJS_SOCK_DIR@|/run/mjs|' -e 's|@MJS_WEB_ROOT@|%s/web|' \\\n"
	       "         %s/nginx/mjs-production.conf > /etc/nginx/conf.d/mjs.conf\n"
	       "     usermod -aG mjs www-data && nginx -t && systemctl reload nginx\n"
	       "3. Start the services and check:\n"
	       "     systemctl enable --now mjs-api@1 mjs-api@2 mjs-worker\n"
	       "     mjsctl -c %s check\n", path, PKGDATADIR, PKGDATADIR, path);
	return EXIT_OK;
}
