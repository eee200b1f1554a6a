/*
 * lbuf: the bounded byte buffers of bench/sse_load (named apart from
 * src/common/util.h's struct buf, which the bench does not link).
 */
#ifndef MJS_BENCH_LBUF_H
#define MJS_BENCH_LBUF_H

#include <stddef.h>

struct lbuf {
	char *data;
	size_t len, cap;
};

/* Appends n bytes; -1 (nothing appended) when it would pass max bytes or out of memory. */
int lbuf_append(struct lbuf *b, const char *p, size_t n, size_t max);
/* Empties b; gives the memory back when a big event made it large. */
void lbuf_clear(struct lbuf *b);
void lbuf_free(struct lbuf *b);

#endif
