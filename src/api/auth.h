/*
 * auth: accounts and sessions. Passwords are hashed by common/password; the session cookie is its user's id
 * and 32 random bytes from getrandom(), and only its SHA-256 is stored.
 */
#ifndef MJS_API_AUTH_H
#define MJS_API_AUTH_H

#include <stddef.h>

#include "api/handlers.h"

#define AUTH_COOKIE "mjs_session"
/* the name of a Secure session cookie: browsers take it only with Secure, Path=/ and no Domain */
#define AUTH_COOKIE_SECURE "__Host-mjs_session"
/*
 * A session token is "USER-ID.SECRET": the user's id, so the request's own
 * statement can be sent with the session check in one round trip (call.c), and
 * base64url of AUTH_TOKEN_BYTES random bytes. Tokens of the older form, the
 * secret alone, are still taken; their check runs before the request's work.
 */
#define AUTH_TOKEN_BYTES 32
#define AUTH_SECRET_LEN 43	/* base64url of 32 bytes */
#define AUTH_TOKEN_LEN (36 + 1 + AUTH_SECRET_LEN)
#define AUTH_TOKEN_MAX AUTH_TOKEN_LEN

/* The session check (sql/functions/session_check.sql): $1 the token, $2 the user it names or NULL. */
extern const char AUTH_SQL_CHECK[];

/*
 * Reads the request's session cookie. A token that names its user sets
 * c->user_id and leaves the check pending, to lead the request's first statement;
 * an older one is checked at once. Returns 0, or -1 after setting the response
 * (401 without a valid session, 503 without a database).
 */
int auth_require_session(struct call *c);

/* Takes the session check's row: c's user, session and time left; the check is no longer pending. */
void auth_session_checked(struct call *c, const PGresult *res);

/*
 * Builds the Set-Cookie value for a token (max_age_s 0 clears the cookie): named
 * AUTH_COOKIE_SECURE and marked Secure when secure, else AUTH_COOKIE.
 */
void auth_cookie_value(char *out, size_t outlen, const char *token, long long max_age_s, int secure);

/*
 * Whether the session cookie is Secure for a request: cookie_secure when yes or
 * no; with auto (CONFIG_AUTO), yes unless public_origin is http://, and when
 * public_origin is unset, whether the request came over HTTPS.
 */
int auth_cookie_secure(int setting, const char *public_origin, int https);

#endif
