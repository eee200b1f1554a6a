/*
 * sse_decode: HTTP/1.1 body framing and text/event-stream (sse_decode.h).
 */
#include "sse_decode.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

void sse_decoder_start(struct sse_decoder *d, int chunked, int64_t content_length)
{
	sse_decoder_free(d);
	d->chunked = chunked;
	d->body_left = chunked ? -1 : content_length;
	d->ch = SSE_CH_SIZE;
	d->chunk_left = 0;
	d->chunk_digits = 0;
	d->trailer_line_len = 0;
	d->has_data = d->has_id = 0;
	d->ev_type[0] = 0;
	d->skip_lf = 0;
	d->retry_ms = 0;
}

void sse_decoder_free(struct sse_decoder *d)
{
	lbuf_free(&d->line);
	lbuf_free(&d->data);
}

static void dispatch(struct sse_decoder *d)
{
	struct sse_event ev = {
		.has_id = d->has_id, .id = d->ev_id, .type = d->ev_type[0] ? d->ev_type : "message",
		.has_data = d->has_data, .data = d->data.data ? d->data.data : "", .data_len = d->data.len,
	};

	if (d->on_event)
		d->on_event(d->ctx, &ev);
	d->has_data = d->has_id = 0;
	d->ev_type[0] = 0;
	lbuf_clear(&d->data);
}

static int field(struct sse_decoder *d, const char *s, size_t n)
{
	const char *colon, *v;
	size_t name_len, vlen;

	if (n == 0) {
		dispatch(d);
		return 0;
	}
	if (s[0] == ':') {
		if (d->on_comment)
			d->on_comment(d->ctx);
		return 0;
	}
	colon = memchr(s, ':', n);
	name_len = colon ? (size_t)(colon - s) : n;
	v = colon ? colon + 1 : s + n;
	vlen = (size_t)(s + n - v);
	if (vlen > 0 && *v == ' ') {
		v++;
		vlen--;
	}
	if (name_len == 4 && !memcmp(s, "data", 4)) {
		if (d->has_data && lbuf_append(&d->data, "\n", 1, SSE_LINE_MAX) < 0)
			return -1;
		if (lbuf_append(&d->data, v, vlen, SSE_LINE_MAX) < 0)
			return -1;
		d->has_data = 1;
	} else if (name_len == 5 && !memcmp(s, "event", 5)) {
		if (vlen >= SSE_TYPE_MAX)
			vlen = SSE_TYPE_MAX - 1;
		memcpy(d->ev_type, v, vlen);
		d->ev_type[vlen] = 0;
	} else if (name_len == 2 && !memcmp(s, "id", 2)) {
		/* mjs's ids are EPOCH.SEQ (mjs-events(7)); the seq is what orders a stream */
		const char *dot = memchr(v, '.', vlen);
		int64_t id = 0;
		size_t k, e = 0;

		if (dot) {
			e = (size_t)(dot - v);
			for (k = 0; k < e && isdigit((unsigned char)v[k]); k++)
				;
			if (k != e || e == 0 || e > 10)
				return 0;
			v += e + 1;
			vlen -= e + 1;
		}
		for (k = 0; k < vlen && k < 19 && isdigit((unsigned char)v[k]); k++)
			id = id * 10 + (v[k] - '0');
		if (k == vlen && k > 0) {
			d->ev_id = id;
			d->has_id = 1;
		}
	} else if (name_len == 5 && !memcmp(s, "retry", 5)) {
		int ms = 0;
		size_t k;

		for (k = 0; k < vlen && k < 7 && isdigit((unsigned char)v[k]); k++)
			ms = ms * 10 + (v[k] - '0');
		if (k == vlen && ms > 0 && ms < 600000)
			d->retry_ms = ms;
	}
	return 0;
}

/* Event-stream bytes: lines end in LF, CRLF or CR. */
static int feed(struct sse_decoder *d, const char *p, size_t n)
{
	while (n > 0) {
		const char *nl;
		size_t seg;

		if (d->skip_lf) {
			d->skip_lf = 0;
			if (*p == '\n') {
				p++;
				n--;
				continue;
			}
		}
		nl = p;
		while (nl < p + n && *nl != '\n' && *nl != '\r')
			nl++;
		seg = (size_t)(nl - p);
		if (nl == p + n)
			return lbuf_append(&d->line, p, seg, SSE_LINE_MAX);
		if (*nl == '\r')
			d->skip_lf = 1;
		if (d->line.len == 0) {
			if (field(d, p, seg) < 0)
				return -1;
		} else {
			if (lbuf_append(&d->line, p, seg, SSE_LINE_MAX) < 0)
				return -1;
			if (field(d, d->line.data, d->line.len) < 0)
				return -1;
			lbuf_clear(&d->line);
		}
		p += seg + 1;
		n -= seg + 1;
	}
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The end of a chunk-size line: the next state. */
static int size_line_end(struct sse_decoder *d)
{
	if (!d->chunk_digits)
		return -1;
	d->ch = d->chunk_left ? SSE_CH_DATA : SSE_CH_TRAILER;
	d->trailer_line_len = 0;
	return 0;
}

static int chunked(struct sse_decoder *d, const char *p, size_t n)
{
	while (n > 0) {
		switch (d->ch) {
		case SSE_CH_SIZE: {
			int h = hexval((unsigned char)*p);
			if (h >= 0) {
				if (d->chunk_left >> 56)
					return -1;
				d->chunk_left = d->chunk_left * 16 + (uint64_t)h;
				d->chunk_digits++;
			} else if (*p == ';' || *p == ' ' || *p == '\t') {
				d->ch = SSE_CH_EXT;
			} else if (*p == '\n') {
				if (size_line_end(d) < 0)
					return -1;
			} else if (*p != '\r') {
				return -1;
			}
			p++;
			n--;
			break;
		}
		case SSE_CH_EXT:
			if (*p == '\n' && size_line_end(d) < 0)
				return -1;
			p++;
			n--;
			break;
		case SSE_CH_DATA: {
			size_t take = n < d->chunk_left ? n : (size_t)d->chunk_left;
			if (feed(d, p, take) < 0)
				return -1;
			p += take;
			n -= take;
			d->chunk_left -= take;
			if (d->chunk_left == 0)
				d->ch = SSE_CH_DATA_END;
			break;
		}
		case SSE_CH_DATA_END:
			if (*p == '\n') {
				d->ch = SSE_CH_SIZE;
				d->chunk_digits = 0;
			} else if (*p != '\r') {
				return -1;
			}
			p++;
			n--;
			break;
		case SSE_CH_TRAILER:
			if (*p == '\n') {
				if (d->trailer_line_len == 0) {
					d->ch = SSE_CH_DONE;
					return 1;
				}
				d->trailer_line_len = 0;
			} else if (*p != '\r') {
				d->trailer_line_len++;
			}
			p++;
			n--;
			break;
		case SSE_CH_DONE:
			return 1;
		}
	}
	return d->ch == SSE_CH_DONE;
}

int sse_decoder_body(struct sse_decoder *d, const char *p, size_t n)
{
	if (d->chunked)
		return chunked(d, p, n);
	if (d->body_left >= 0 && (int64_t)n > d->body_left)
		n = (size_t)d->body_left;
	if (feed(d, p, n) < 0)
		return -1;
	if (d->body_left >= 0) {
		d->body_left -= (int64_t)n;
		if (d->body_left == 0)
			return 1;
	}
	return 0;
}
