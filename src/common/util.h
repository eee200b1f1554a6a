/*
 * util: small pure helpers shared by every program: growable byte buffers,
 * random tokens, base64url, UUID syntax, clocks.
 */
#ifndef MJS_COMMON_UTIL_H
#define MJS_COMMON_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer; data is always NUL-terminated for convenience. */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};

int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *data, size_t len);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_consume(struct buf *b, size_t n);	/* drops n bytes from the front */
void buf_reset(struct buf *b);			/* empties, keeps memory */
void buf_free(struct buf *b);			/* empties and frees */

/*
 * A PostgreSQL array literal ("{a,b,c}") built in an empty b, for one
 * parameter in place of many: buf_array_add appends an item that needs no
 * quoting (a UUID, a number); buf_array_end closes it ("{}" when empty) and
 * returns b->data.
 */
int buf_array_add(struct buf *b, const char *item);
const char *buf_array_end(struct buf *b);

/* Fills out with n bytes from getrandom(2). Returns 0 or -1. */
int util_random_bytes(void *out, size_t n);

/* base64url without padding; out must hold util_b64url_len(n) + 1 bytes. */
size_t util_b64url_len(size_t n);
void util_b64url_encode(const unsigned char *in, size_t n, char *out);

/* Is s (exactly len bytes) a UUID in canonical 8-4-4-4-12 hex form? */
int util_is_uuid(const char *s, size_t len);

/* Parses a non-negative decimal int64 occupying the whole string. */
int util_parse_i64(const char *s, int64_t *out);

int64_t util_now_ms(void);	/* CLOCK_MONOTONIC in ms */
int64_t util_now_us(void);	/* CLOCK_MONOTONIC in µs */

/* Is s valid UTF-8 (no overlongs, no surrogates)? */
int util_utf8_valid(const char *s, size_t len);

/* Length of s[0..len) without a trailing incomplete UTF-8 sequence. */
size_t util_utf8_trim(const char *s, size_t len);

/* Replaces every byte that is not part of valid UTF-8, and NUL, with '?'. */
void util_utf8_sanitize(char *s, size_t len);

/*
 * Copies text from outside (an upstream's words) into out: at most outlen - 1
 * bytes, cut at a character boundary, invalid UTF-8 replaced (util_utf8_sanitize),
 * NUL-terminated. Returns the length copied.
 */
size_t util_utf8_copy(char *out, size_t outlen, const char *s);

/* FNV-1a of a NUL-terminated string: for hash tables keyed by ids. */
unsigned util_hash(const char *s);

#endif
