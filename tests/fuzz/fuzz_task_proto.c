/*
 * fuzz_task_proto: an image or video upstream's answer (worker/task_proto),
 * any bytes. What reaches a task is safe to store: the reason is valid UTF-8
 * within its buffer, an upstream id is printable ASCII, a result URL is http(s)
 * printable ASCII, and a status is one of ours.
 */
#include "worker/task_proto.h"
#include "common/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_token(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	if (n == cap)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct task_reply r;
	enum task_reply_rc rc;
	const char *body;

	if (size == 0)
		return 0;
	body = (const char *)data + 1;
	switch (data[0] % 3) {
	case 0: rc = task_proto_mj_submit(body, size - 1, &r); break;
	case 1: rc = task_proto_mj_fetch(body, size - 1, &r); break;
	default: rc = task_proto_video(body, size - 1, "http://up/v1", &r); break;
	}
	if (rc != TASK_REPLY_OK && rc != TASK_REPLY_REJECTED && rc != TASK_REPLY_BAD)
		abort();
	if (strnlen(r.error, sizeof(r.error)) == sizeof(r.error) || !util_utf8_valid(r.error, strlen(r.error)))
		abort();
	check_token(r.upstream_id, sizeof(r.upstream_id));
	check_token(r.url, sizeof(r.url));
	if (r.url[0] && strncmp(r.url, "http://", 7) != 0 && strncmp(r.url, "https://", 8) != 0)
		abort();
	if (r.status && strcmp(r.status, "submitting") && strcmp(r.status, "processing") &&
	    strcmp(r.status, "succeeded") && strcmp(r.status, "failed"))
		abort();
	if (r.progress < -1 || r.progress > 100)
		abort();
	return 0;
}
