/*
 * check_main: the unit test runner. Every suite of suites.h runs in one SRunner
 * (each test in its own forked process unless CK_FORK=no); the exit status is
 * non-zero when any test fails, so `make check` fails with it.
 */
#include <stdlib.h>

#include "suites.h"

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_add_suite(sr, router_suite());
	srunner_add_suite(sr, json_suite());
	srunner_add_suite(sr, sse_suite());
	srunner_add_suite(sr, http_suite());
	srunner_add_suite(sr, util_suite());
	srunner_add_suite(sr, events_suite());
	srunner_add_suite(sr, api_suite());
	srunner_add_suite(sr, upstream_sse_suite());
	srunner_add_suite(sr, task_proto_suite());
	srunner_add_suite(sr, delivery_suite());
	srunner_add_suite(sr, gen_suite());
	srunner_add_suite(sr, pace_suite());
	srunner_add_suite(sr, bench_suite());
	srunner_add_suite(sr, proto_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
