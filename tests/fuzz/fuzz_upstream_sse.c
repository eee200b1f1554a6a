/*
 * fuzz_upstream_sse: the upstream chat stream parser (worker/upstream_sse and
 * the protocols of worker/proto_*.c) fed arbitrary bytes in arbitrary splits,
 * as any of the four protocols. Whatever arrives, the text it hands on (answer
 * and reasoning) and the error it reports are valid UTF-8 without NUL, and the
 * parser never reads or grows past its bounds.
 */
#include "worker/upstream_sse.h"
#include "common/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct upstream_sse p;
	size_t at = 0, step;

	if (size == 0)
		return 0;
	/* the first byte: the protocol (low two bits) and how big the pieces are (1 = byte by byte) */
	step = (size_t)(data[0] >> 2) % 17 + 1;
	upstream_sse_init(&p);
	p.proto = (enum upstream_protocol)(data[0] & 3);
	data++;
	size--;
	while (at < size && !p.failed) {
		size_t n = size - at < step ? size - at : step;
		upstream_sse_feed(&p, (const char *)data + at, n);
		at += n;
		step = step * 3 % 29 + 1;	/* pieces of changing size */
	}
	if (!p.failed)
		upstream_sse_finish(&p);
	if (p.content.len && (!util_utf8_valid(p.content.data, p.content.len) ||
			      memchr(p.content.data, '\0', p.content.len)))
		abort();
	if (p.reasoning.len && (!util_utf8_valid(p.reasoning.data, p.reasoning.len) ||
				memchr(p.reasoning.data, '\0', p.reasoning.len)))
		abort();
	if (!util_utf8_valid(p.error, strlen(p.error)) || !util_utf8_valid(p.finish_reason, strlen(p.finish_reason)))
		abort();
	upstream_sse_free(&p);
	return 0;
}
