/*
 * lbuf: bounded buffers (lbuf.h).
 */
#include "lbuf.h"

#include <stdlib.h>
#include <string.h>

int lbuf_append(struct lbuf *b, const char *p, size_t n, size_t max)
{
	if (b->len + n > max)
		return -1;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *d;

		while (cap < b->len + n)
			cap *= 2;
		if (cap > max)
			cap = max;
		d = realloc(b->data, cap);
		if (!d)
			return -1;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void lbuf_clear(struct lbuf *b)
{
	b->len = 0;
	if (b->cap > 64 * 1024) {
		free(b->data);
		b->data = NULL;
		b->cap = 0;
	}
}

void lbuf_free(struct lbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
