/*
 * sse: event text and FastCGI record framing, no I/O.
 * FastCGI record header: version 1, type, request id (2 bytes), content length
 * (2 bytes), padding length, reserved. We send no padding (allowed by the spec).
 */
#include "api/sse.h"

#include <stdio.h>
#include <string.h>

#include "common/util.h"

#define FCGI_VERSION_1 1
#define FCGI_END_REQUEST 3
#define FCGI_STDOUT 6

int sse_parse_id(const char *text, struct sse_id *out)
{
	const char *dot = strchr(text, '.');
	char epoch[12];
	int64_t e = 0, seq;

	if (dot) {
		size_t n = (size_t)(dot - text);
		if (n == 0 || n >= sizeof(epoch))
			return -1;
		memcpy(epoch, text, n);
		epoch[n] = '\0';
		if (util_parse_i64(epoch, &e) < 0 || e < 1 || e > INT32_MAX)
			return -1;
		text = dot + 1;
	}
	if (util_parse_i64(text, &seq) < 0)
		return -1;
	out->epoch = (int32_t)e;
	out->seq = seq;
	return 0;
}

int sse_format_event(struct buf *out, int32_t epoch, int64_t seq, const char *type, size_t type_len,
		     const char *data, size_t data_len)
{
	char head[64];
	int n = epoch > 0 ? snprintf(head, sizeof(head), "id: %d.%lld\nevent: ", (int)epoch, (long long)seq)
			  : snprintf(head, sizeof(head), "id: %lld\nevent: ", (long long)seq);

	if (buf_reserve(out, (size_t)n + type_len + data_len + 16) < 0)
		return -1;
	buf_append(out, head, (size_t)n);
	buf_append(out, type, type_len);
	buf_append(out, "\ndata: ", 7);
	buf_append(out, data, data_len);
	buf_append(out, "\n\n", 2);
	return 0;
}

int sse_format_id(struct buf *out, int32_t epoch, int64_t seq)
{
	if (epoch <= 0)
		return buf_printf(out, "id: %lld\n\n", (long long)seq);
	return buf_printf(out, "id: %d.%lld\n\n", (int)epoch, (long long)seq);
}

int sse_format_open(struct buf *out, int retry_ms)
{
	return buf_printf(out,
			  "Status: 200 OK\r\n"
			  "Content-Type: text/event-stream; charset=utf-8\r\n"
			  "Cache-Control: no-store\r\n"
			  "X-Accel-Buffering: no\r\n"
			  "\r\n"
			  "retry: %d\n\n", retry_ms);
}

static void record_header(unsigned char *h, int type, uint16_t request_id, size_t len)
{
	h[0] = FCGI_VERSION_1;
	h[1] = (unsigned char)type;
	h[2] = (unsigned char)(request_id >> 8);
	h[3] = (unsigned char)(request_id & 0xff);
	h[4] = (unsigned char)(len >> 8);
	h[5] = (unsigned char)(len & 0xff);
	h[6] = 0;
	h[7] = 0;
}

int sse_fcgi_stdout(struct buf *out, uint16_t request_id, const char *text, size_t len)
{
	size_t records = len / FCGI_MAX_CONTENT + 1;

	if (buf_reserve(out, len + records * FCGI_HEADER_LEN) < 0)
		return -1;
	while (len > 0) {
		unsigned char h[FCGI_HEADER_LEN];
		size_t n = len > FCGI_MAX_CONTENT ? FCGI_MAX_CONTENT : len;

		record_header(h, FCGI_STDOUT, request_id, n);
		buf_append(out, h, sizeof(h));
		buf_append(out, text, n);
		text += n;
		len -= n;
	}
	return 0;
}

int sse_fcgi_end(struct buf *out, uint16_t request_id)
{
	unsigned char r[2 * FCGI_HEADER_LEN + 8];

	record_header(r, FCGI_STDOUT, request_id, 0);
	record_header(r + FCGI_HEADER_LEN, FCGI_END_REQUEST, request_id, 8);
	memset(r + 2 * FCGI_HEADER_LEN, 0, 8);	/* appStatus 0, FCGI_REQUEST_COMPLETE */
	return buf_append(out, r, sizeof(r));
}
