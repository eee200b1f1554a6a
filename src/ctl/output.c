/*
 * output: how mjsctl prints rows and reports, plus the small argument checks
 * every command group uses. Values reach JSON through json-c only.
 */
#include "ctl/ctl.h"
#include "common/db.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* type oids from PostgreSQL's pg_type.dat: stable across versions */
#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_JSON 114
#define OID_FLOAT4 700
#define OID_FLOAT8 701
#define OID_NUMERIC 1700
#define OID_JSONB 3802

void ctl_err(const char *fmt, ...)
{
	va_list ap;

	fputs("mjsctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

const char *ctl_conninfo_shown(const char *conninfo, char *out, size_t len)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	size_t n = 0;

	out[0] = '\0';
	if (!opts) {
		snprintf(out, len, "(not a valid connection string)");
		return out;
	}
	for (PQconninfoOption *o = opts; o->keyword && n < len; o++) {
		if (!o->val || !*o->val)
			continue;
		n += (size_t)snprintf(out + n, len - n, "%s%s=%s", n ? " " : "", o->keyword,
				      !strcmp(o->keyword, "password") ? "***" : o->val);
	}
	PQconninfoFree(opts);
	return out;
}

PGconn *ctl_db(struct ctl *c)
{
	char shown[512];

	if (c->db)
		return c->db;
	c->db = db_connect(c->cfg->database);
	if (!c->db)
		ctl_err("cannot connect to the database (database = %s)",
			ctl_conninfo_shown(c->cfg->database, shown, sizeof(shown)));
	return c->db;
}

struct json_object *ctl_json_value(PGresult *res, int row, int col)
{
	const char *v = PQgetvalue(res, row, col);
	char *end;

	if (PQgetisnull(res, row, col))
		return NULL;
	switch (PQftype(res, col)) {
	case OID_BOOL:
		return json_object_new_boolean(v[0] == 't');
	case OID_INT2:
	case OID_INT4:
	case OID_INT8:
		return json_object_new_int64(strtoll(v, NULL, 10));
	case OID_NUMERIC:
	case OID_FLOAT4:
	case OID_FLOAT8: {
		long long i;
		errno = 0;
		i = strtoll(v, &end, 10);
		if (!errno && *end == '\0')
			return json_object_new_int64(i);
		/* a plain decimal prints as PostgreSQL wrote it (0.7, not 0.69999999999999996) */
		if (isdigit((unsigned char)v[v[0] == '-']) && strspn(v, "-0123456789.") == strlen(v))
			return json_object_new_double_s(strtod(v, NULL), v);
		return json_object_new_double(strtod(v, NULL));
	}
	case OID_JSON:
	case OID_JSONB: {
		struct json_object *j = json_tokener_parse(v);
		if (j)
			return j;
		break;
	}
	}
	return json_object_new_string_len(v, PQgetlength(res, row, col));
}

void ctl_print_json(struct json_object *obj)
{
	puts(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(obj);
}

/* One table cell; control characters (a newline in an error, say) print as spaces. */
static void print_cell(const char *v, int width, int last)
{
	int n = 0;

	for (; *v; v++, n++)
		putchar((unsigned char)*v < ' ' ? ' ' : *v);
	if (last)
		putchar('\n');
	else
		printf("%*s", width - n + 2, "");
}

void ctl_print_rows(const struct ctl *c, PGresult *res)
{
	int rows = PQntuples(res), cols = PQnfields(res);
	int *width;

	if (c->json) {
		for (int r = 0; r < rows; r++) {
			struct json_object *o = json_object_new_object();
			for (int k = 0; k < cols; k++)
				json_object_object_add(o, PQfname(res, k), ctl_json_value(res, r, k));
			ctl_print_json(o);
		}
		return;
	}
	width = calloc((size_t)cols, sizeof(*width));
	if (!width)
		return;
	for (int k = 0; k < cols; k++) {
		width[k] = (int)strlen(PQfname(res, k));
		for (int r = 0; r < rows; r++)
			if (PQgetlength(res, r, k) > width[k])
				width[k] = PQgetlength(res, r, k);
	}
	for (int k = 0; k < cols; k++)
		print_cell(PQfname(res, k), width[k], k + 1 == cols);
	for (int r = 0; r < rows; r++)
		for (int k = 0; k < cols; k++)
			print_cell(PQgetisnull(res, r, k) ? "-" : PQgetvalue(res, r, k), width[k], k + 1 == cols);
	free(width);
}

int ctl_is_uuid(const char *s)
{
	if (strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

#define USERNAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"

int ctl_username_ok(const char *name)
{
	size_t n = strlen(name);

	if (n >= 3 && n <= 32 && strspn(name, USERNAME_CHARS) == n)
		return 1;
	ctl_err("bad user name \"%.64s\": a user name is 3 to 32 letters, digits, '_', '.' or '-'", name);
	return 0;
}

static const char SQL_USER_EXISTS[] = "SELECT 1 FROM mjs.users WHERE lower(username) = lower($1)";

int ctl_user_exists(struct ctl *c, const char *name)
{
	const char *params[1] = { name };
	PGresult *res = db_exec(c->db, SQL_USER_EXISTS, 1, params);
	int n;

	if (!res)
		return -1;
	n = PQntuples(res);
	PQclear(res);
	if (!n)
		ctl_err("no such user: %s", name);
	return n > 0;
}

int ctl_parse_duration_s(const char *s, long long *out)
{
	long long n, mult;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno)
		return -1;
	if (!*end || !strcmp(end, "s"))
		mult = 1;
	else if (!strcmp(end, "m") || !strcmp(end, "min"))
		mult = 60;
	else if (!strcmp(end, "h"))
		mult = 3600;
	else if (!strcmp(end, "d"))
		mult = 86400;
	else if (!strcmp(end, "w"))
		mult = 7 * 86400;
	else
		return -1;
	if (n > LLONG_MAX / mult / 1000)
		return -1;
	*out = n * mult;
	return 0;
}
