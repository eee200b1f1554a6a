/*
 * suites: one Check suite per pure module. check_main.c runs them all in one
 * SRunner. A test case tagged KNOWN_BUG_TAG asserts the documented contract
 * where the code does not yet keep it: it fails until src/ is fixed, and
 * CK_EXCLUDE_TAGS=known_bug skips those cases while working on something else.
 */
#ifndef MJS_CHECK_SUITES_H
#define MJS_CHECK_SUITES_H

#include <check.h>

#define KNOWN_BUG_TAG "known_bug"

Suite *config_suite(void);
Suite *router_suite(void);
Suite *json_suite(void);
Suite *sse_suite(void);
Suite *http_suite(void);
Suite *util_suite(void);
Suite *events_suite(void);
Suite *api_suite(void);
Suite *upstream_sse_suite(void);

#endif
