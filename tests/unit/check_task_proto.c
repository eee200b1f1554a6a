/*
 * check_task_proto: the image and video upstream answers turned into a task's
 * status, progress, result and error, and the request bodies.
 */
#include <check.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "worker/task_proto.h"
#include "suites.h"

static enum task_reply_rc mj_fetch(const char *body, struct task_reply *r)
{
	return task_proto_mj_fetch(body, strlen(body), r);
}

static enum task_reply_rc video(const char *body, struct task_reply *r)
{
	return task_proto_video(body, strlen(body), "http://up/v1/", r);
}

START_TEST(test_progress_parses_percentages_and_rejects_the_rest)
{
	ck_assert_int_eq(task_proto_progress("0%"), 0);
	ck_assert_int_eq(task_proto_progress("7%"), 7);
	ck_assert_int_eq(task_proto_progress("42%"), 42);
	ck_assert_int_eq(task_proto_progress("100%"), 100);
	ck_assert_int_eq(task_proto_progress("55"), 55);
	ck_assert_int_eq(task_proto_progress("12.5%"), 12);
	ck_assert_int_eq(task_proto_progress(" 30% "), 30);
	ck_assert_int_eq(task_proto_progress("101%"), -1);
	ck_assert_int_eq(task_proto_progress("99999999999999999999%"), -1);
	ck_assert_int_eq(task_proto_progress("%"), -1);
	ck_assert_int_eq(task_proto_progress(""), -1);
	ck_assert_int_eq(task_proto_progress("-5%"), -1);
	ck_assert_int_eq(task_proto_progress("5%%"), -1);
	ck_assert_int_eq(task_proto_progress("1.%"), -1);
	ck_assert_int_eq(task_proto_progress("abc"), -1);
	ck_assert_int_eq(task_proto_progress(NULL), -1);
}
END_TEST

START_TEST(test_status_maps_follow_the_issue)
{
	ck_assert_str_eq(task_proto_mj_status("NOT_START"), "submitting");
	ck_assert_str_eq(task_proto_mj_status("SUBMITTED"), "processing");
	ck_assert_str_eq(task_proto_mj_status("IN_PROGRESS"), "processing");
	ck_assert_str_eq(task_proto_mj_status("SUCCESS"), "succeeded");
	ck_assert_str_eq(task_proto_mj_status("FAILURE"), "failed");
	ck_assert_ptr_null(task_proto_mj_status("success"));
	ck_assert_ptr_null(task_proto_mj_status(""));
	ck_assert_ptr_null(task_proto_mj_status(NULL));
	ck_assert_str_eq(task_proto_video_status("queued"), "submitting");
	ck_assert_str_eq(task_proto_video_status("in_progress"), "processing");
	ck_assert_str_eq(task_proto_video_status("completed"), "succeeded");
	ck_assert_str_eq(task_proto_video_status("failed"), "failed");
	ck_assert_ptr_null(task_proto_video_status("QUEUED"));
}
END_TEST

START_TEST(test_mj_submit_gives_the_id_or_the_reason)
{
	struct task_reply r;
	const char *ok = "{\"code\":1,\"description\":\"Submit success\",\"result\":\"1712345678901\"}";
	const char *queued = "{\"code\":22,\"description\":\"queued\",\"result\":1712345678902}";
	const char *banned = "{\"code\":24,\"description\":\"banned prompt\",\"result\":null}";
	const char *full = "{\"code\":23,\"description\":\"queue full\"}";

	ck_assert_int_eq(task_proto_mj_submit(ok, strlen(ok), &r), TASK_REPLY_OK);
	ck_assert_str_eq(r.upstream_id, "1712345678901");
	ck_assert_int_eq(task_proto_mj_submit(queued, strlen(queued), &r), TASK_REPLY_OK);
	ck_assert_str_eq(r.upstream_id, "1712345678902");
	ck_assert_int_eq(task_proto_mj_submit(banned, strlen(banned), &r), TASK_REPLY_REJECTED);
	ck_assert_str_eq(r.status, "failed");
	ck_assert_ptr_nonnull(strstr(r.error, "banned prompt"));
	ck_assert_int_eq(task_proto_mj_submit(full, strlen(full), &r), TASK_REPLY_BAD);
	ck_assert_ptr_nonnull(strstr(r.error, "queue is full"));
	ck_assert_int_eq(task_proto_mj_submit("<html>502</html>", 16, &r), TASK_REPLY_BAD);
	ck_assert_int_eq(task_proto_mj_submit("{\"code\":1,\"result\":\"a b\"}", 25, &r), TASK_REPLY_BAD);
	ck_assert_int_eq(task_proto_mj_submit("{\"code\":1}", 10, &r), TASK_REPLY_BAD);
	ck_assert_int_eq(task_proto_mj_submit("[1]", 3, &r), TASK_REPLY_BAD);
}
END_TEST

START_TEST(test_mj_fetch_maps_status_progress_url_and_reason)
{
	struct task_reply r;

	ck_assert_int_eq(mj_fetch("{\"status\":\"NOT_START\",\"progress\":\"0%\"}", &r), TASK_REPLY_OK);
	ck_assert_str_eq(r.status, "submitting");
	ck_assert_int_eq(r.progress, 0);
	ck_assert_int_eq(mj_fetch("{\"status\":\"IN_PROGRESS\",\"progress\":\"63%\",\"imageUrl\":null}", &r),
			 TASK_REPLY_OK);
	ck_assert_str_eq(r.status, "processing");
	ck_assert_int_eq(r.progress, 63);
	ck_assert_int_eq(mj_fetch("{\"status\":\"IN_PROGRESS\"}", &r), TASK_REPLY_OK);
	ck_assert_int_eq(r.progress, -1);
	ck_assert_int_eq(mj_fetch("{\"status\":\"SUCCESS\",\"progress\":\"100%\",\"imageUrl\":\"https://cdn/x.png\"}", &r),
			 TASK_REPLY_OK);
	ck_assert_str_eq(r.status, "succeeded");
	ck_assert_str_eq(r.url, "https://cdn/x.png");
	ck_assert_int_eq(r.progress, 100);
	ck_assert_int_eq(mj_fetch("{\"status\":\"SUCCESS\",\"imageUrl\":\"\"}", &r), TASK_REPLY_BAD);
	ck_assert_int_eq(mj_fetch("{\"status\":\"FAILURE\",\"failReason\":\"banned\\nword\"}", &r), TASK_REPLY_OK);
	ck_assert_str_eq(r.status, "failed");
	ck_assert_str_eq(r.error, "the image upstream failed the task: banned word");
	ck_assert_int_eq(mj_fetch("{\"status\":\"FAILURE\"}", &r), TASK_REPLY_OK);
	ck_assert_ptr_nonnull(strstr(r.error, "no reason given"));
	ck_assert_int_eq(mj_fetch("{\"status\":\"WAT\"}", &r), TASK_REPLY_BAD);
	ck_assert_ptr_nonnull(strstr(r.error, "WAT"));
	ck_assert_int_eq(mj_fetch("{\"status\":\"SUCCESS\"", &r), TASK_REPLY_BAD);
	ck_assert_int_eq(mj_fetch("", &r), TASK_REPLY_BAD);
}
END_TEST

START_TEST(test_video_answers_map_and_complete_with_a_content_url)
{
	struct task_reply r;

	ck_assert_int_eq(video("{\"id\":\"video_1\",\"status\":\"queued\",\"progress\":0}", &r), TASK_REPLY_OK);
	ck_assert_str_eq(r.upstream_id, "video_1");
	ck_assert_str_eq(r.status, "submitting");
	ck_assert_int_eq(r.progress, 0);
	ck_assert_int_eq(video("{\"id\":\"video_1\",\"status\":\"in_progress\",\"progress\":37.9}", &r), TASK_REPLY_OK);
	ck_assert_str_eq(r.status, "processing");
	ck_assert_int_eq(r.progress, 37);
	ck_assert_int_eq(video("{\"id\":\"video_1\",\"status\":\"in_progress\",\"progress\":250}", &r), TASK_REPLY_OK);
	ck_assert_int_eq(r.progress, 100);
	ck_assert_int_eq(video("{\"id\":\"video_1\",\"status\":\"completed\"}", &r), TASK_REPLY_OK);
	ck_assert_str_eq(r.status, "succeeded");
	ck_assert_str_eq(r.url, "http://up/v1/videos/video_1/content");
	ck_assert_int_eq(r.private_url, 1);	/* needs the key: served through the API */
	ck_assert_int_eq(video("{\"id\":\"video_1\",\"status\":\"completed\",\"url\":\"https://cdn/v.mp4\"}", &r),
			 TASK_REPLY_OK);
	ck_assert_str_eq(r.url, "https://cdn/v.mp4");
	ck_assert_int_eq(r.private_url, 0);
	/* a URL of its own on the upstream's origin would show the configured base */
	ck_assert_int_eq(video("{\"id\":\"video_1\",\"status\":\"completed\",\"url\":\"http://UP/files/v.mp4\"}", &r),
			 TASK_REPLY_OK);
	ck_assert_int_eq(r.private_url, 1);
	ck_assert_int_eq(video("{\"id\":\"video_1\",\"status\":\"failed\",\"error\":{\"message\":\"nope\"}}", &r),
			 TASK_REPLY_OK);
	ck_assert_str_eq(r.error, "the video upstream failed the job: nope");
	ck_assert_int_eq(video("{\"status\":\"queued\"}", &r), TASK_REPLY_BAD);
	ck_assert_int_eq(video("{\"id\":\"v\",\"status\":\"paused\"}", &r), TASK_REPLY_BAD);
}
END_TEST

START_TEST(test_same_origin_compares_scheme_host_and_port)
{
	ck_assert_int_eq(task_proto_same_origin("http://up/v1/videos/x/content", "http://up/v1/"), 1);
	ck_assert_int_eq(task_proto_same_origin("https://Up.Example:8443/x", "https://up.example:8443"), 1);
	ck_assert_int_eq(task_proto_same_origin("http://up?x", "http://up/v1"), 1);
	ck_assert_int_eq(task_proto_same_origin("http://up.evil/x", "http://up/v1"), 0);	/* a longer host */
	ck_assert_int_eq(task_proto_same_origin("http://up:81/x", "http://up/v1"), 0);
	ck_assert_int_eq(task_proto_same_origin("https://up/x", "http://up/v1"), 0);
	ck_assert_int_eq(task_proto_same_origin("http://upx/x", "http://up"), 0);
	ck_assert_int_eq(task_proto_same_origin("http://up/x", ""), 0);
	ck_assert_int_eq(task_proto_same_origin("http://up/x", NULL), 0);
	ck_assert_int_eq(task_proto_same_origin("ftp://up/x", "ftp://up/"), 0);
}
END_TEST

START_TEST(test_request_bodies_carry_prompt_and_options)
{
	char *mj = task_proto_mj_submit_body_new("a \"cat\"", "t-1");
	char *v = task_proto_video_submit_body_new("waves", "{\"model\":\"m\",\"seconds\":4,\"size\":\"1280x720\"}");
	char *plain = task_proto_video_submit_body_new("waves", "{}");

	ck_assert_str_eq(mj, "{\"prompt\":\"a \\\"cat\\\"\",\"state\":\"t-1\"}");
	ck_assert_str_eq(v, "{\"prompt\":\"waves\",\"model\":\"m\",\"seconds\":\"4\",\"size\":\"1280x720\"}");
	ck_assert_str_eq(plain, "{\"prompt\":\"waves\"}");
	free(mj);
	free(v);
	free(plain);
}
END_TEST

/* An answer whose every text field is hostile: what reaches the task is valid UTF-8. */
START_TEST(test_hostile_answers_give_valid_utf8_or_bad)
{
	struct task_reply r;
	char body[4096];
	struct buf cjk = { 0 };

	/* a CJK reason far longer than the error: cut at a character, never inside one */
	for (int i = 0; i < 400; i++)
		buf_puts(&cjk, "\xe5\x86\x99");
	snprintf(body, sizeof(body), "{\"status\":\"FAILURE\",\"failReason\":\"%s\"}", cjk.data);
	ck_assert_int_eq(mj_fetch(body, &r), TASK_REPLY_OK);
	ck_assert_int_eq(util_utf8_valid(r.error, strlen(r.error)), 1);
	ck_assert_uint_gt(strlen(r.error), 250);
	/* raw bytes that are not UTF-8, in a reason and in a status */
	ck_assert_int_eq(mj_fetch("{\"status\":\"FAILURE\",\"failReason\":\"bad \xff\xfe\xc0\x80 bytes\"}", &r),
			 TASK_REPLY_OK);
	ck_assert_int_eq(util_utf8_valid(r.error, strlen(r.error)), 1);
	ck_assert_ptr_nonnull(strstr(r.error, "bad ?"));
	snprintf(body, sizeof(body), "{\"status\":\"%.37s\xe5\x86\x99\xe5\x86\x99\"}", "WAT_WAT_WAT_WAT_WAT_WAT_WAT_WAT_WAT_WA");
	ck_assert_int_eq(mj_fetch(body, &r), TASK_REPLY_BAD);
	ck_assert_int_eq(util_utf8_valid(r.error, strlen(r.error)), 1);
	ck_assert_int_eq(video("{\"id\":\"v\",\"status\":\"failed\",\"error\":\"\\ud800 lone \xf0\x9f\"}", &r),
			 TASK_REPLY_OK);
	ck_assert_int_eq(util_utf8_valid(r.error, strlen(r.error)), 1);
	/* ids and URLs: printable ASCII, and a URL is http(s) with a host */
	ck_assert_int_eq(video("{\"id\":\"v\xe5\x86\x99\",\"status\":\"queued\"}", &r), TASK_REPLY_BAD);
	ck_assert_int_eq(mj_fetch("{\"status\":\"SUCCESS\",\"imageUrl\":\"javascript:alert(1)\"}", &r), TASK_REPLY_BAD);
	ck_assert_int_eq(mj_fetch("{\"status\":\"SUCCESS\",\"imageUrl\":\"ftp://cdn/x.png\"}", &r), TASK_REPLY_BAD);
	ck_assert_int_eq(mj_fetch("{\"status\":\"SUCCESS\",\"imageUrl\":\"https:///x.png\"}", &r), TASK_REPLY_BAD);
	ck_assert_int_eq(mj_fetch("{\"status\":\"SUCCESS\",\"imageUrl\":\"https://cdn/\xe5\x86\x99.png\"}", &r),
			 TASK_REPLY_BAD);
	ck_assert_int_eq(video("{\"id\":\"v\",\"status\":\"completed\",\"url\":\"data:video/mp4;base64,AAAA\"}", &r),
			 TASK_REPLY_BAD);
	ck_assert_int_eq(mj_fetch("{\"status\":\"SUCCESS\",\"imageUrl\":\"http://cdn:8080/a.png?x=1\"}", &r), TASK_REPLY_OK);
	/* numbers that are not numbers: no progress, nothing converted */
	ck_assert_int_eq(video("{\"id\":\"v\",\"status\":\"in_progress\",\"progress\":NaN}", &r), TASK_REPLY_OK);
	ck_assert_int_eq(r.progress, -1);
	ck_assert_int_eq(video("{\"id\":\"v\",\"status\":\"in_progress\",\"progress\":-Infinity}", &r), TASK_REPLY_OK);
	ck_assert_int_eq(r.progress, -1);
	ck_assert_int_eq(video("{\"id\":\"v\",\"status\":\"in_progress\",\"progress\":1e999}", &r), TASK_REPLY_OK);
	ck_assert_int_eq(r.progress, -1);
	buf_free(&cjk);
}
END_TEST

Suite *task_proto_suite(void)
{
	Suite *s = suite_create("task_proto");
	TCase *tc = tcase_create("answers");

	tcase_add_test(tc, test_progress_parses_percentages_and_rejects_the_rest);
	tcase_add_test(tc, test_status_maps_follow_the_issue);
	tcase_add_test(tc, test_mj_submit_gives_the_id_or_the_reason);
	tcase_add_test(tc, test_mj_fetch_maps_status_progress_url_and_reason);
	tcase_add_test(tc, test_video_answers_map_and_complete_with_a_content_url);
	tcase_add_test(tc, test_same_origin_compares_scheme_host_and_port);
	tcase_add_test(tc, test_request_bodies_carry_prompt_and_options);
	tcase_add_test(tc, test_hostile_answers_give_valid_utf8_or_bad);
	suite_add_tcase(s, tc);
	return s;
}
