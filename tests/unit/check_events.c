/*
 * check_events: common/events — parsing of the mjs_events NOTIFY payload
 * "<user uuid> <seq> <type> <data>" that mjs.emit() sends (data may be empty
 * when it did not fit; the hub then reads the row).
 */
#include <string.h>

#include "common/events.h"
#include "suites.h"

#define USER "0b5e5a4c-6f1d-4c7e-9a3b-2d1f0e9c8b7a"

START_TEST(test_parse_notify_with_data)
{
	static const char payload[] = USER " 42 message.delta {\"id\":\"x\",\"text\":\"a b\"}";
	struct event_note n;

	memset(&n, 0, sizeof(n));
	ck_assert_int_eq(events_parse_notify(payload, &n), 0);
	ck_assert_str_eq(n.user_id, USER);
	ck_assert_int_eq(n.seq, 42);
	ck_assert_uint_eq(n.type_len, strlen("message.delta"));
	ck_assert_mem_eq(n.type, "message.delta", n.type_len);
	ck_assert_ptr_eq(n.type, payload + 37 + 3);	/* points into the payload */
	ck_assert_uint_eq(n.data_len, strlen("{\"id\":\"x\",\"text\":\"a b\"}"));
	ck_assert_str_eq(n.data, "{\"id\":\"x\",\"text\":\"a b\"}");
}
END_TEST

START_TEST(test_parse_notify_with_empty_data)
{
	static const char payload[] = USER " 7 conversation.updated ";
	struct event_note n;

	ck_assert_int_eq(events_parse_notify(payload, &n), 0);
	ck_assert_str_eq(n.user_id, USER);
	ck_assert_int_eq(n.seq, 7);
	ck_assert_uint_eq(n.type_len, strlen("conversation.updated"));
	ck_assert_mem_eq(n.type, "conversation.updated", n.type_len);
	ck_assert_uint_eq(n.data_len, 0);
	ck_assert_str_eq(n.data, "");
}
END_TEST

START_TEST(test_parse_notify_takes_uppercase_uuid_and_large_seq)
{
	struct event_note n;

	ck_assert_int_eq(events_parse_notify("0B5E5A4C-6F1D-4C7E-9A3B-2D1F0E9C8B7A 1234567890123 t {}", &n), 0);
	ck_assert_str_eq(n.user_id, "0B5E5A4C-6F1D-4C7E-9A3B-2D1F0E9C8B7A");
	ck_assert_int_eq(n.seq, 1234567890123LL);
	ck_assert_uint_eq(n.type_len, 1);
	ck_assert_str_eq(n.data, "{}");
}
END_TEST

START_TEST(test_parse_notify_keeps_spaces_inside_data)
{
	struct event_note n;

	ck_assert_int_eq(events_parse_notify(USER " 1 a  {\"x\": 1} ", &n), 0);
	ck_assert_uint_eq(n.type_len, 1);
	ck_assert_str_eq(n.data, " {\"x\": 1} ");
}
END_TEST

START_TEST(test_parse_notify_rejects_malformed_payloads)
{
	static const char *const bad[] = {
		"",
		USER,
		USER " ",
		"0b5e5a4c-6f1d-4c7e-9a3b-2d1f0e9c8b7g 1 t {}",		/* bad uuid */
		"0b5e5a4c-6f1d-4c7e-9a3b-2d1f0e9c8b7 1 t {}",		/* short uuid */
		"0b5e5a4c6f1d4c7e9a3b2d1f0e9c8b7a1234 1 t {}",
		"not-a-uuid 1 t {}",
		USER " 0 t {}",						/* seq 0 */
		USER " 00 t {}",
		USER " -1 t {}",
		USER " +1 t {}",
		USER " x t {}",						/* non-digit seq */
		USER " 1x t {}",
		USER " 1.5 t {}",
		USER " 99999999999999999999 t {}",			/* overflow */
		USER " 18446744073709551617 t {}",
		USER " 1",						/* missing type */
		USER " 1 ",
		USER " 1 t",						/* missing space after type */
		USER " 1  {}",						/* empty type */
		USER "  1 t {}",					/* missing / extra spaces */
		USER "1 t {}",
		USER " 1t {}",
		USER "\t1 t {}",
	};
	struct event_note n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(events_parse_notify(bad[i], &n) == -1, "\"%s\" was accepted", bad[i]);
}
END_TEST

Suite *events_suite(void)
{
	Suite *s = suite_create("events");
	TCase *tc = tcase_create("notify");

	tcase_add_test(tc, test_parse_notify_with_data);
	tcase_add_test(tc, test_parse_notify_with_empty_data);
	tcase_add_test(tc, test_parse_notify_takes_uppercase_uuid_and_large_seq);
	tcase_add_test(tc, test_parse_notify_keeps_spaces_inside_data);
	tcase_add_test(tc, test_parse_notify_rejects_malformed_payloads);
	suite_add_tcase(s, tc);
	return s;
}
