/*
 * check_pace: worker/pace — when the worker's next flush starts and when it
 * reads its upstreams: at once when idle, never over a flush in flight, the
 * minimum gap between starts, flush_interval as the longest wait, urgent
 * buffers, the pause after a failed flush.
 */
#include "worker/pace.h"
#include "suites.h"

/* The defaults: flush_min_interval 5ms, flush_interval 30ms. */
static struct pace fresh(void)
{
	struct pace p;

	pace_init(&p, 5, 30);
	return p;
}

START_TEST(test_nothing_to_write_starts_no_flush)
{
	struct pace p = fresh();

	ck_assert(pace_next_flush(&p, 0, 0, 1000) == PACE_NEVER);
	pace_started(&p, 1000);
	ck_assert(pace_next_flush(&p, 0, 0, 5000) == PACE_NEVER);
}
END_TEST

START_TEST(test_idle_worker_flushes_at_once_when_text_arrives)
{
	struct pace p = fresh();

	/* the very first flush */
	ck_assert_int_eq(pace_next_flush(&p, 0, 1, 1000), 1000);
	pace_started(&p, 1000);
	/* answered long ago: a token read now goes now, not at the next 30 ms tick */
	ck_assert_int_eq(pace_next_flush(&p, 0, 1, 1017), 1017);
	ck_assert_int_eq(pace_next_flush(&p, 0, 1, 90000), 90000);
	/* and the read that brings it is not held back either */
	ck_assert(pace_next_read(&p, 0, 1016) <= 1017);
}
END_TEST

START_TEST(test_flush_in_flight_makes_the_next_wait_for_its_answer)
{
	struct pace p = fresh();

	pace_started(&p, 1000);
	/* however long the flush takes, and even past flush_interval or with an urgent buffer */
	ck_assert(pace_next_flush(&p, 1, 1, 1001) == PACE_NEVER);
	ck_assert(pace_next_flush(&p, 1, 1, 1100) == PACE_NEVER);
	pace_urgent(&p);
	ck_assert(pace_next_flush(&p, 1, 1, 1100) == PACE_NEVER);
	/* answered: what arrived meanwhile goes at once, the gap being over */
	ck_assert_int_eq(pace_next_flush(&p, 0, 1, 1100), 1100);
	/* meanwhile the upstreams are still read, every PACE_READ_MAX_GAP_MS */
	ck_assert_int_eq(pace_next_read(&p, 1, 1050), 1050 + PACE_READ_MAX_GAP_MS);
}
END_TEST

START_TEST(test_min_gap_between_flush_starts_is_respected)
{
	struct pace p = fresh();

	pace_started(&p, 1000);
	/* answered after 1 ms, news at once: waits until 5 ms after the last start */
	ck_assert_int_eq(pace_next_flush(&p, 0, 1, 1001), 1005);
	ck_assert_int_eq(pace_next_flush(&p, 0, 1, 1004), 1005);
	ck_assert_int_eq(pace_next_flush(&p, 0, 1, 1005), 1005);
	/* reading earlier than that brings no token sooner: the read waits too */
	ck_assert_int_eq(pace_next_read(&p, 0, 1001), 1005);
	/* so flushes start at most every 5 ms: 200 a second, however much arrives */
	for (int64_t t = 1005; t < 2000; t += 5) {
		ck_assert_int_eq(pace_next_flush(&p, 0, 1, t - 4), t);
		pace_started(&p, t);
	}
	/* no gap configured: at once after the answer, reads still at most every millisecond */
	pace_init(&p, 0, 30);
	pace_started(&p, 1000);
	ck_assert_int_eq(pace_next_flush(&p, 0, 1, 1000), 1000);
	ck_assert_int_eq(pace_next_read(&p, 0, 1000), 1000 + PACE_READ_MIN_GAP_MS);
}
END_TEST

START_TEST(test_max_wait_is_respected)
{
	struct pace p;

	/* a minimum gap above flush_interval is cut to flush_interval */
	pace_init(&p, 50, 30);
	pace_started(&p, 1000);
	ck_assert_int_eq(pace_next_flush(&p, 0, 1, 1001), 1030);
	ck_assert_int_eq(pace_next_flush(&p, 0, 1, 1029), 1030);
	/* a token read at any time after the last start waits at most flush_interval */
	for (int64_t arrived = 1000; arrived <= 1030; arrived++)
		ck_assert(pace_next_flush(&p, 0, 1, arrived) - arrived <= 30);
	/* and reads never wait longer than PACE_READ_MAX_GAP_MS, whatever the gap */
	ck_assert_int_eq(pace_next_read(&p, 0, 1001), 1001 + PACE_READ_MAX_GAP_MS);
}
END_TEST

START_TEST(test_a_full_buffer_skips_the_gap)
{
	struct pace p = fresh();

	pace_started(&p, 1000);
	pace_urgent(&p);
	ck_assert_int_eq(pace_next_flush(&p, 0, 1, 1001), 1001);
	pace_started(&p, 1001);
	/* once sent, the gap holds again */
	ck_assert_int_eq(pace_next_flush(&p, 0, 1, 1002), 1006);
}
END_TEST

START_TEST(test_a_failed_flush_is_retried_after_flush_interval)
{
	struct pace p = fresh();

	pace_started(&p, 1000);
	pace_failed(&p);
	ck_assert_int_eq(pace_next_flush(&p, 0, 1, 1002), 1030);
	ck_assert_int_eq(pace_next_read(&p, 0, 1025), 1030);
	/* the retry started: back to the minimum gap */
	pace_started(&p, 1030);
	ck_assert_int_eq(pace_next_flush(&p, 0, 1, 1031), 1035);
}
END_TEST

Suite *pace_suite(void)
{
	Suite *s = suite_create("pace");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_nothing_to_write_starts_no_flush);
	tcase_add_test(tc, test_idle_worker_flushes_at_once_when_text_arrives);
	tcase_add_test(tc, test_flush_in_flight_makes_the_next_wait_for_its_answer);
	tcase_add_test(tc, test_min_gap_between_flush_starts_is_respected);
	tcase_add_test(tc, test_max_wait_is_respected);
	tcase_add_test(tc, test_a_full_buffer_skips_the_gap);
	tcase_add_test(tc, test_a_failed_flush_is_retried_after_flush_interval);
	suite_add_tcase(s, tc);
	return s;
}
