/*
 * auth: register, login, logout, me, and the session lookup every protected route
 * goes through.
 */
#include "api/auth.h"
#include "common/db.h"
#include "common/json.h"
#include "common/log.h"
#include "common/password.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define USERNAME_MIN 3
#define USERNAME_MAX 32

void auth_cookie_value(char *out, size_t outlen, const char *token, long long max_age_s, int secure)
{
	snprintf(out, outlen, "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Lax%s",
		 secure ? AUTH_COOKIE_SECURE : AUTH_COOKIE, token, max_age_s, secure ? "; Secure" : "");
}

int auth_cookie_secure(int setting, const char *public_origin, int https)
{
	if (setting != CONFIG_AUTO)
		return setting;
	if (public_origin && *public_origin)
		return strncasecmp(public_origin, "http://", 7) != 0;
	return https;
}

static int call_cookie_secure(const struct call *c)
{
	return auth_cookie_secure(c->app->cfg->cookie_secure, c->app->cfg->public_origin, c->req->https);
}

const char AUTH_SQL_CHECK[] = "SELECT user_id, session_id, left_ms FROM mjs.session_check($1, $2)";

static int is_b64url(const char *p, int n)
{
	for (int i = 0; i < n; i++) {
		char ch = p[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      ch == '-' || ch == '_'))
			return 0;
	}
	return 1;
}

/* Reads the session token from the cookie into token (AUTH_TOKEN_MAX + 1 bytes); returns its length or -1. */
static int session_token(struct call *c, char *token, size_t len)
{
	int n;

	if (!c->req->cookie)
		return -1;
	/* only the name this site sets: a Secure site takes no cookie an insecure origin could plant */
	n = http_cookie_get(c->req->cookie, call_cookie_secure(c) ? AUTH_COOKIE_SECURE : AUTH_COOKIE, token, len);
	if (n == AUTH_TOKEN_LEN && util_is_uuid(token, 36) && token[36] == '.' && is_b64url(token + 37, AUTH_SECRET_LEN))
		return n;
	if (n == AUTH_SECRET_LEN && is_b64url(token, n))
		return n;
	return -1;
}

int auth_require_session(struct call *c)
{
	int n = session_token(c, c->token, sizeof(c->token));

	if (n < 0) {
		http_error(c->resp, 401, "unauthorized", "log in first");
		return -1;
	}
	c->auth_pending = 1;
	if (n == AUTH_TOKEN_LEN) {
		/* not trusted yet: the check runs in the same transaction as the first statement it is given to */
		memcpy(c->user_id, c->token, 36);
		c->user_id[36] = '\0';
		return 0;
	}
	return call_session(c);
}

void auth_session_checked(struct call *c, const PGresult *res)
{
	memcpy(c->user_id, PQgetvalue(res, 0, 0), 36);
	c->user_id[36] = '\0';
	c->session_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	c->session_left_ms = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	c->auth_pending = 0;
}

/* Reads and checks username and password of a register/login body. */
static int read_credentials(struct call *c, char **username, char **password)
{
	char err[160];
	enum json_field_rc rc;

	rc = json_field_string_dup(c->body, "username", USERNAME_MIN, USERNAME_MAX, JSON_FIELD_SINGLE_LINE,
				   username, err, sizeof(err));
	if (rc == JSON_FIELD_ABSENT)
		snprintf(err, sizeof(err), "username is required");
	if (rc != JSON_FIELD_OK)
		goto invalid;
	for (const char *p = *username; *p; p++) {
		char ch = *p;
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      ch == '_' || ch == '.' || ch == '-')) {
			snprintf(err, sizeof(err), "username may contain only letters, digits, '_', '.' and '-'");
			goto invalid;
		}
	}
	rc = json_field_string_dup(c->body, "password", 1, PASSWORD_MAX, 0, password, err, sizeof(err));
	if (rc == JSON_FIELD_ABSENT)
		snprintf(err, sizeof(err), "password is required");
	if (rc != JSON_FIELD_OK)
		goto invalid;
	/* the hash takes bytes, and bytes are what the limit protects */
	if (strlen(*password) > PASSWORD_MAX) {
		snprintf(err, sizeof(err), "password must be at most %d bytes", PASSWORD_MAX);
		free(*password);
		*password = NULL;
		goto invalid;
	}
	return 0;
invalid:
	free(*username);
	*username = NULL;
	call_invalid(c, err);
	return -1;
}

static const char SQL_REGISTER[] =
	"INSERT INTO mjs.users AS u (username, password_hash) VALUES ($1, $2) "
	"ON CONFLICT ((lower(username))) DO NOTHING RETURNING mjs.user_json(u)::text";

void auth_register(struct call *c)
{
	char *username = NULL, *password = NULL, hash[256];
	const char *params[2] = { NULL, hash };
	PGresult *res;

	if (!c->app->cfg->allow_registration) {
		http_error(c->resp, 403, "registration_disabled", "registration is disabled on this server");
		return;
	}
	if (read_credentials(c, &username, &password) < 0)
		return;
	if (strlen(password) < PASSWORD_MIN) {
		call_invalid(c, "password must be at least 8 characters");
		goto out;
	}
	if (password_hash(password, hash, sizeof(hash)) < 0) {
		log_error("password hashing failed");
		http_error(c->resp, 500, "internal", "could not hash the password");
		goto out;
	}
	params[0] = username;
	res = call_exec(c, SQL_REGISTER, 2, params);
	if (!res)
		goto out;
	if (PQntuples(res) == 0)
		http_error(c->resp, 409, "conflict", "that username is taken");
	else {
		http_json(c->resp, 201, PQgetvalue(res, 0, 0));
		log_info("user registered username=%s", username);
	}
	PQclear(res);
out:
	free(username);
	if (password)
		explicit_bzero(password, strlen(password));
	free(password);
}

/*
 * One row whether the user exists or not (so both take the same path): the
 * user, and the seconds the name is still blocked after failed logins
 * (sql/functions/login_failed.sql), and whether it has failures to forget on success.
 */
static const char SQL_LOGIN_USER[] =
	"SELECT u.id, u.password_hash, u.disabled, mjs.user_json(u)::text, "
	"  ceil(extract(epoch FROM f.blocked_until - now()))::integer, f.username IS NOT NULL "
	"FROM (SELECT lower($1) AS name) n "
	"LEFT JOIN mjs.users u ON lower(u.username) = n.name "
	"LEFT JOIN mjs.login_failures f ON f.username = n.name";

static const char SQL_LOGIN_FAILED[] =
	"SELECT mjs.login_failed($1, $2, make_interval(secs => $3::double precision))";

static const char SQL_LOGIN_FORGET[] = "DELETE FROM mjs.login_failures WHERE username = lower($1)";

static const char SQL_LOGIN_SESSION[] =
	"INSERT INTO mjs.sessions (token_hash, user_id, expires_at, user_agent, remote_addr) "
	"VALUES (sha256(convert_to($1, 'UTF8')), $2, now() + make_interval(secs => $3::double precision), "
	"left($4, 200), left($5, 64))";

void auth_login(struct call *c)
{
	char *username = NULL, *password = NULL;
	unsigned char raw[AUTH_TOKEN_BYTES];
	char token[AUTH_TOKEN_LEN + 1], ttl[24], cookie[256], agent[801];
	const char *user;
	PGresult *res = NULL;
	int ok;

	if (read_credentials(c, &username, &password) < 0)
		return;
	{
		const char *params[1] = { username };
		res = call_read(c, SQL_LOGIN_USER, 1, params);
	}
	if (!res)
		goto out;
	if (!PQgetisnull(res, 0, 4) && atoi(PQgetvalue(res, 0, 4)) > 0) {
		/* blocked after failed logins: answered before any hashing, for any name alike */
		int secs = atoi(PQgetvalue(res, 0, 4));
		char msg[160];
		snprintf(msg, sizeof(msg), "too many failed logins for this username; try again in %d s", secs);
		http_error(c->resp, 429, "too_many_failures", msg);
		http_header(c->resp, "Retry-After: %d", secs);
		log_info("login refused username=%s reason=\"blocked after failed logins\" retry_s=%d", username, secs);
		goto out;
	}
	if (PQgetisnull(res, 0, 0)) {
		password_waste(password);
		ok = 0;
	} else {
		ok = password_check(password, PQgetvalue(res, 0, 1)) && PQgetvalue(res, 0, 2)[0] == 'f';
	}
	if (!ok) {
		char free_s[16], max_s[24];
		const char *params[3] = { username, free_s, max_s };
		PGresult *f;
		snprintf(free_s, sizeof(free_s), "%d", c->app->cfg->login_failures_free);
		snprintf(max_s, sizeof(max_s), "%.3f", c->app->cfg->login_block_max_ms / 1000.0);
		f = call_exec(c, SQL_LOGIN_FAILED, 3, params);
		if (!f)
			goto out;
		log_info("login failed username=%s remote=%s blocked_s=%s", username,
			 c->req->remote_addr ? c->req->remote_addr : "-", PQgetvalue(f, 0, 0));
		PQclear(f);
		http_error(c->resp, 401, "invalid_credentials", "wrong username or password");
		goto out;
	}
	if (PQgetvalue(res, 0, 5)[0] == 't') {
		const char *params[1] = { username };
		if (db_command(c->db, SQL_LOGIN_FORGET, 1, params) < 0)
			goto out;
	}
	if (util_random_bytes(raw, sizeof(raw)) < 0) {
		http_error(c->resp, 500, "internal", "no randomness available");
		goto out;
	}
	user = PQgetvalue(res, 0, 0);
	memcpy(token, user, 36);
	token[36] = '.';
	util_b64url_encode(raw, sizeof(raw), token + 37);
	snprintf(ttl, sizeof(ttl), "%lld", (long long)c->app->cfg->session_ttl_s);
	/* a browser's words: any bytes; stored as text, so valid UTF-8 (200 characters at most) */
	util_utf8_copy(agent, sizeof(agent), c->req->user_agent ? c->req->user_agent : "");
	{
		const char *params[5] = { token, user, ttl, agent,
					  c->req->remote_addr ? c->req->remote_addr : "" };
		PGresult *ins = call_exec(c, SQL_LOGIN_SESSION, 5, params);
		if (!ins)
			goto out;
		PQclear(ins);
	}
	auth_cookie_value(cookie, sizeof(cookie), token, (long long)c->app->cfg->session_ttl_s,
			  call_cookie_secure(c));
	http_header(c->resp, "Set-Cookie: %s", cookie);
	http_json(c->resp, 200, PQgetvalue(res, 0, 3));
	log_info("login username=%s user=%s", username, PQgetvalue(res, 0, 0));
out:
	PQclear(res);
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(token, sizeof(token));
	free(username);
	if (password)
		explicit_bzero(password, strlen(password));
	free(password);
}

static const char SQL_LOGOUT[] = "DELETE FROM mjs.sessions WHERE token_hash = sha256(convert_to($1, 'UTF8'))";

void auth_logout(struct call *c)
{
	char token[AUTH_TOKEN_MAX + 1], cookie[256];

	if (session_token(c, token, sizeof(token)) >= 0) {
		const char *params[1] = { token };
		PGresult *res = call_exec(c, SQL_LOGOUT, 1, params);
		if (!res)
			return;
		PQclear(res);
	}
	auth_cookie_value(cookie, sizeof(cookie), "", 0, call_cookie_secure(c));
	http_header(c->resp, "Set-Cookie: %s", cookie);
	c->resp->status = 204;
}

/* event_id: the SSE id of the user's last event (epoch of its row, or the current one) */
static const char SQL_ME[] =
	"SELECT row_to_json(r)::text, r.event_seq FROM (SELECT u.id, u.username, "
	"mjs.rfc3339(u.created_at) AS created_at, u.event_seq, "
	"coalesce((SELECT e.epoch FROM mjs.events e WHERE e.user_id = u.id AND e.seq = u.event_seq), mjs.epoch())"
	" || '.' || u.event_seq AS event_id FROM mjs.users u WHERE u.id = $1) r";

void auth_me(struct call *c)
{
	const char *params[1] = { c->user_id };
	PGresult *res = call_exec(c, SQL_ME, 1, params);

	if (!res)
		return;
	if (PQntuples(res) == 1) {
		http_json(c->resp, 200, PQgetvalue(res, 0, 0));
		http_event_seq(c->resp, PQgetvalue(res, 0, 1));
	} else {
		http_error(c->resp, 401, "unauthorized", "log in first");
	}
	PQclear(res);
}
