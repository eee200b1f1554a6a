/*
 * suites: one Check suite per pure module. check_main.c runs them all in one
 * SRunner (CK_RUN_SUITE=name runs one of them).
 */
#ifndef MJS_CHECK_SUITES_H
#define MJS_CHECK_SUITES_H

#include <check.h>

Suite *config_suite(void);
Suite *router_suite(void);
Suite *json_suite(void);
Suite *sse_suite(void);
Suite *http_suite(void);
Suite *util_suite(void);
Suite *events_suite(void);
Suite *api_suite(void);
Suite *upstream_sse_suite(void);
Suite *task_proto_suite(void);
Suite *delivery_suite(void);
Suite *gen_suite(void);
Suite *pace_suite(void);
Suite *bench_suite(void);
Suite *proto_suite(void);

#endif
