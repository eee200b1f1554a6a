/*
 * check_router: api/router — every route of the table is reachable with its
 * method, {id} takes only canonical UUIDs, a known path with another method is a
 * 405 with the right Allow list, and anything else is a 404.
 */
#include <stdio.h>
#include <string.h>

#include "api/router.h"
#include "suites.h"

#define UUID_A "0b5e5a4c-6f1d-4c7e-9a3b-2d1f0e9c8b7a"
#define UUID_UPPER "0B5E5A4C-6F1D-4C7E-9A3B-2D1F0E9C8B7A"

struct want_route {
	const char *method;
	const char *path;
	void (*handler)(struct call *c);
	int flags;
	const char *param;	/* the {id} the match must yield, or NULL */
};

static const struct want_route table[] = {
	{ "GET", "/api/healthz", health_check, 0, NULL },
	{ "POST", "/api/auth/register", auth_register, ROUTE_BODY, NULL },
	{ "POST", "/api/auth/login", auth_login, ROUTE_BODY, NULL },
	{ "POST", "/api/auth/logout", auth_logout, 0, NULL },
	{ "GET", "/api/me", auth_me, ROUTE_AUTH, NULL },
	{ "GET", "/api/models", models_list, ROUTE_AUTH, NULL },
	{ "GET", "/api/conversations", conversations_list, ROUTE_AUTH, NULL },
	{ "POST", "/api/conversations", conversations_create, ROUTE_AUTH | ROUTE_BODY, NULL },
	{ "PATCH", "/api/conversations/" UUID_A, conversations_update, ROUTE_AUTH | ROUTE_BODY, UUID_A },
	{ "DELETE", "/api/conversations/" UUID_A, conversations_delete, ROUTE_AUTH, UUID_A },
	{ "GET", "/api/conversations/" UUID_A "/messages", messages_list, ROUTE_AUTH, UUID_A },
	{ "POST", "/api/conversations/" UUID_A "/messages", messages_send, ROUTE_AUTH | ROUTE_BODY, UUID_A },
	{ "PATCH", "/api/messages/" UUID_A, messages_update, ROUTE_AUTH | ROUTE_BODY, UUID_A },
	{ "DELETE", "/api/messages/" UUID_A, messages_delete, ROUTE_AUTH, UUID_A },
	{ "POST", "/api/messages/" UUID_A "/stop", messages_stop, ROUTE_AUTH, UUID_A },
	{ "GET", "/api/events", events_get, ROUTE_AUTH, NULL },
};
#define NTABLE ((int)(sizeof(table) / sizeof(table[0])))

static int match(const char *method, const char *path, const struct route **out,
		 char params[CALL_MAX_PARAMS][37], char *allow, size_t allowlen)
{
	*out = NULL;
	memset(params, 'Z', CALL_MAX_PARAMS * 37);
	return router_match(method, path, out, params, allow, allowlen);
}

START_TEST(test_every_route_matches_its_method)
{
	const struct want_route *w = &table[_i];
	const struct route *r;
	char params[CALL_MAX_PARAMS][37], allow[64];

	ck_assert_int_eq(match(w->method, w->path, &r, params, allow, sizeof(allow)), 200);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->method, w->method);
	ck_assert_msg(r->handler == w->handler, "%s %s went to the wrong handler", w->method, w->path);
	ck_assert_int_eq(r->flags, w->flags);
	if (w->param)
		ck_assert_str_eq(params[0], w->param);
}
END_TEST

START_TEST(test_id_accepts_an_uppercase_uuid_as_given)
{
	const struct route *r;
	char params[CALL_MAX_PARAMS][37], allow[64];

	ck_assert_int_eq(match("PATCH", "/api/conversations/" UUID_UPPER, &r, params, allow, sizeof(allow)), 200);
	ck_assert_str_eq(params[0], UUID_UPPER);
	ck_assert_int_eq(match("POST", "/api/messages/" UUID_UPPER "/stop", &r, params, allow, sizeof(allow)), 200);
	ck_assert_msg(r->handler == messages_stop, "wrong handler");
	ck_assert_str_eq(params[0], UUID_UPPER);
}
END_TEST

START_TEST(test_id_rejects_non_canonical_uuids_with_404)
{
	static const char *const bad[] = {
		"/api/conversations/0b5e5a4c-6f1d-4c7e-9a3b-2d1f0e9c8b7",	/* 35 chars */
		"/api/conversations/0b5e5a4c-6f1d-4c7e-9a3b-2d1f0e9c8b7aa",	/* 37 chars */
		"/api/conversations/0b5e5a4c-6f1d-4c7e-9a3b-2d1f0e9c8b7g",	/* not hex */
		"/api/conversations/0b5e5a4c6f1d4c7e9a3b2d1f0e9c8b7a",		/* no dashes */
		"/api/conversations/0b5e5a4c-6f1d4-c7e-9a3b-2d1f0e9c8b7a",	/* dash moved */
		"/api/conversations/{0b5e5a4c-6f1d-4c7e-9a3b-2d1f0e9c8b7a}",
		"/api/conversations/" UUID_A "/",				/* trailing slash */
		"/api/conversations//messages",
		"/api/conversations/%30b5e5a4c-6f1d-4c7e-9a3b-2d1f0e9c8b7a",
		"/api/conversations/new",
		"/api/messages/" UUID_A "/stop/",
		"/api/messages/1",
	};
	const struct route *r;
	char params[CALL_MAX_PARAMS][37], allow[64];
	const char *methods[] = { "GET", "POST", "PATCH", "DELETE" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		for (size_t m = 0; m < 4; m++)
			ck_assert_msg(match(methods[m], bad[i], &r, params, allow, sizeof(allow)) == 404,
				      "%s %s is not a 404", methods[m], bad[i]);
}
END_TEST

struct want_405 {
	const char *method;
	const char *path;
	const char *allow;
};

static const struct want_405 not_allowed[] = {
	{ "PUT", "/api/conversations", "GET, POST" },
	{ "DELETE", "/api/conversations", "GET, POST" },
	{ "GET", "/api/conversations/" UUID_A, "PATCH, DELETE" },
	{ "PUT", "/api/conversations/" UUID_A, "PATCH, DELETE" },
	{ "DELETE", "/api/conversations/" UUID_A "/messages", "GET, POST" },
	{ "POST", "/api/messages/" UUID_A, "PATCH, DELETE" },
	{ "GET", "/api/messages/" UUID_A "/stop", "POST" },
	{ "GET", "/api/auth/login", "POST" },
	{ "GET", "/api/auth/register", "POST" },
	{ "GET", "/api/auth/logout", "POST" },
	{ "POST", "/api/healthz", "GET" },
	{ "POST", "/api/me", "GET" },
	{ "POST", "/api/events", "GET" },
	{ "HEAD", "/api/healthz", "GET" },
	{ "get", "/api/healthz", "GET" },	/* methods are case-sensitive */
};
#define N405 ((int)(sizeof(not_allowed) / sizeof(not_allowed[0])))

START_TEST(test_known_path_with_other_method_is_405_with_allow)
{
	const struct want_405 *w = &not_allowed[_i];
	const struct route *r;
	char params[CALL_MAX_PARAMS][37], allow[64];

	ck_assert_int_eq(match(w->method, w->path, &r, params, allow, sizeof(allow)), 405);
	ck_assert_ptr_null(r);
	ck_assert_str_eq(allow, w->allow);
}
END_TEST

START_TEST(test_allow_list_never_overflows_a_short_buffer)
{
	const struct route *r;
	char params[CALL_MAX_PARAMS][37];
	char allow[16];

	for (size_t len = 1; len <= sizeof(allow); len++) {
		memset(allow, 'Q', sizeof(allow));
		ck_assert_int_eq(match("PUT", "/api/conversations/" UUID_A, &r, params, allow, len), 405);
		ck_assert_msg(memchr(allow, '\0', len) != NULL, "allow not terminated within %zu", len);
		ck_assert_msg(strlen(allow) == 0 || strncmp(allow, "PATCH", 5) == 0, "allow \"%s\"", allow);
		for (size_t i = len; i < sizeof(allow); i++)
			ck_assert_msg(allow[i] == 'Q', "byte %zu written with allowlen %zu", i, len);
	}
	ck_assert_int_eq(match("PUT", "/api/conversations/" UUID_A, &r, params, allow, 0), 405);
}
END_TEST

START_TEST(test_unknown_paths_are_404)
{
	static const char *const paths[] = {
		"", "/", "/api", "/api/", "/api/conversation", "/api/conversationsx",
		"/api/conversations/", "/api/healthz/", "/API/healthz", "/api/healthz?x=1",
		"api/healthz", "//api/healthz", "/api/auth", "/api/auth/", "/api/messages",
		"/api/messages/" UUID_A "/stopx", "/api/conversations/" UUID_A "/messages/" UUID_A,
		"/api/conversations/" UUID_A "/messagesx", "/api/events/1",
	};
	const struct route *r;
	char params[CALL_MAX_PARAMS][37], allow[64];

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		strcpy(allow, "junk");
		ck_assert_msg(match("GET", paths[i], &r, params, allow, sizeof(allow)) == 404,
			      "GET \"%s\" is not a 404", paths[i]);
		ck_assert_ptr_null(r);
		ck_assert_str_eq(allow, "");
	}
}
END_TEST

START_TEST(test_params_are_filled_in_order_and_replaced_per_match)
{
	static const char other[] = "ffffffff-0000-1111-2222-333333333333";
	const struct route *r;
	char params[CALL_MAX_PARAMS][37], allow[64];

	/* "/api/conversations/{id}" is tried first and fails after taking the id */
	ck_assert_int_eq(match("GET", "/api/conversations/" UUID_A "/messages", &r, params, allow,
			       sizeof(allow)), 200);
	ck_assert_str_eq(params[0], UUID_A);
	ck_assert_int_eq(router_match("DELETE", "/api/messages/ffffffff-0000-1111-2222-333333333333", &r,
				      params, allow, sizeof(allow)), 200);
	ck_assert_str_eq(params[0], other);
	ck_assert_uint_eq(strlen(params[0]), 36);
}
END_TEST

Suite *router_suite(void)
{
	Suite *s = suite_create("router");
	TCase *tc = tcase_create("match");

	tcase_add_loop_test(tc, test_every_route_matches_its_method, 0, NTABLE);
	tcase_add_test(tc, test_id_accepts_an_uppercase_uuid_as_given);
	tcase_add_test(tc, test_id_rejects_non_canonical_uuids_with_404);
	tcase_add_loop_test(tc, test_known_path_with_other_method_is_405_with_allow, 0, N405);
	tcase_add_test(tc, test_allow_list_never_overflows_a_short_buffer);
	tcase_add_test(tc, test_unknown_paths_are_404);
	tcase_add_test(tc, test_params_are_filled_in_order_and_replaced_per_match);
	suite_add_tcase(s, tc);
	return s;
}
