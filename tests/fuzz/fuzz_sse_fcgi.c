/*
 * fuzz_sse_fcgi: the framing of an open stream (api/sse), as a round trip. Any
 * seq, type and one-line data are formatted as an SSE event and wrapped in
 * FastCGI STDOUT records the way the hub writes them; reading the records back
 * (version 1, STDOUT, the request id, content within 65535 bytes, then END
 * REQUEST) and the event back (the HTML standard's field rules) gives exactly
 * what went in.
 */
#include "api/sse.h"
#include "common/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The STDOUT content of records in b[0..len) for request id; aborts on a bad record. */
static void unwrap(const unsigned char *b, size_t len, uint16_t id, struct buf *out, int want_end)
{
	size_t at = 0;
	int ended = 0;

	while (at < len) {
		size_t clen, plen;
		if (len - at < FCGI_HEADER_LEN || b[at] != 1 || ((b[at + 2] << 8) | b[at + 3]) != id || ended)
			abort();
		clen = (size_t)(b[at + 4] << 8 | b[at + 5]);
		plen = b[at + 6];
		if (len - at - FCGI_HEADER_LEN < clen + plen)
			abort();
		if (b[at + 1] == 6)
			buf_append(out, (const char *)b + at + FCGI_HEADER_LEN, clen);
		else if (b[at + 1] == 3)
			ended = 1;
		else
			abort();
		at += FCGI_HEADER_LEN + clen + plen;
	}
	if (ended != want_end)
		abort();
}

/* The value of field name in one SSE event text, per the standard's line rules. */
static const char *field(const char *text, const char *name, size_t *len)
{
	size_t nl = strlen(name);

	for (const char *line = text; *line && *line != '\n'; line = strchr(line, '\n') + 1) {
		const char *end = strchr(line, '\n');
		if (!end)
			abort();
		if ((size_t)(end - line) > nl && !strncmp(line, name, nl) && line[nl] == ':') {
			const char *v = line + nl + 1;
			if (*v == ' ')
				v++;
			*len = (size_t)(end - v);
			return v;
		}
	}
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf text = { 0 }, wire = { 0 }, back = { 0 };
	char type[65], *line;
	size_t type_len = 0, len;
	uint64_t seq = 0;
	int32_t epoch;
	struct sse_id parsed;
	char idtext[48];
	uint16_t id;
	const char *v;

	if (size < 11)
		return 0;
	for (int i = 0; i < 8; i++)
		seq = seq << 8 | data[i];
	seq &= (uint64_t)INT64_MAX;
	epoch = (int32_t)(seq >> 32 & 0x7fffffff) | 1;
	id = (uint16_t)(data[8] << 8 | data[9]) | 1;
	/* the type: event names are [a-z.]; the data: one line (as PostgreSQL's JSON is) */
	for (size_t i = 0; i < (size_t)(data[10] % 40); i++)
		type[type_len++] = "abcdefghijklmnopqrstuvwxyz."[data[10 + i % (size - 10)] % 27];
	type[type_len] = '\0';
	line = malloc(size - 11 + 1);
	if (!line)
		return 0;
	memcpy(line, data + 11, size - 11);
	len = size - 11;
	for (size_t i = 0; i < len; i++)
		if (line[i] == '\n' || line[i] == '\r' || line[i] == '\0')
			line[i] = ' ';
	line[len] = '\0';
	if (type_len == 0)
		memcpy(type, "message.delta", (type_len = 13) + 1);

	if (sse_format_event(&text, epoch, (int64_t)seq, type, type_len, line, len) < 0 ||
	    sse_fcgi_stdout(&wire, id, text.data, text.len) < 0 || sse_fcgi_end(&wire, id) < 0)
		abort();
	unwrap((const unsigned char *)wire.data, wire.len, id, &back, 1);
	if (back.len != text.len || memcmp(back.data, text.data, text.len) != 0)
		abort();
	/* the event: id, event and data fields with what went in, then a blank line */
	if (back.len < 2 || back.data[back.len - 1] != '\n' || back.data[back.len - 2] != '\n')
		abort();
	v = field(back.data, "id", &len);
	if (!v || len >= sizeof(idtext))
		abort();
	memcpy(idtext, v, len);
	idtext[len] = '\0';
	if (sse_parse_id(idtext, &parsed) < 0 || parsed.epoch != epoch || parsed.seq != (int64_t)seq)
		abort();
	v = field(back.data, "event", &len);
	if (!v || len != type_len || memcmp(v, type, len) != 0)
		abort();
	v = field(back.data, "data", &len);
	if (!v || len != strlen(line) || memcmp(v, line, len) != 0)
		abort();
	buf_free(&text);
	buf_free(&wire);
	buf_free(&back);
	free(line);
	return 0;
}
