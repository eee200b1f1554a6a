/*
 * http: response building and request header helpers.
 */
#include "api/http.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

const char *http_status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

void http_error(struct http_response *resp, int status, const char *code, const char *message)
{
	struct json_object *err = json_object_new_object(), *inner = json_object_new_object();

	json_object_object_add(inner, "code", json_object_new_string(code));
	json_object_object_add(inner, "message", json_object_new_string(message));
	json_object_object_add(err, "error", inner);
	resp->status = status;
	resp->event_seq[0] = '\0';
	buf_reset(&resp->body);
	buf_puts(&resp->body, json_object_to_json_string_ext(err, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(err);
}

void http_json(struct http_response *resp, int status, const char *json)
{
	resp->status = status;
	buf_reset(&resp->body);
	buf_puts(&resp->body, json);
}

void http_event_seq(struct http_response *resp, const char *seq)
{
	size_t n = strspn(seq, "0123456789");

	if (n == 0 || n > 19 || seq[n] != '\0')
		return;
	memcpy(resp->event_seq, seq, n + 1);
}

void http_header(struct http_response *resp, const char *fmt, ...)
{
	va_list ap;
	char line[1024];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		return;
	buf_append(&resp->headers, line, (size_t)n);
	buf_puts(&resp->headers, "\r\n");
}

void http_response_free(struct http_response *resp)
{
	buf_free(&resp->headers);
	buf_free(&resp->body);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The first "name=value" or bare "name" segment of query, or NULL; *seglen its length. */
static const char *query_segment(const char *query, const char *name, size_t *seglen)
{
	size_t nlen = strlen(name);

	for (const char *p = query; p && *p;) {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len >= nlen && strncmp(p, name, nlen) == 0 && (len == nlen || p[nlen] == '=')) {
			*seglen = len;
			return p;
		}
		p = end ? end + 1 : NULL;
	}
	return NULL;
}

int http_query_has(const char *query, const char *name)
{
	size_t seglen;

	return query_segment(query, name, &seglen) != NULL;
}

int http_query_param(const char *query, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name), seglen, o = 0;
	const char *p = query_segment(query, name, &seglen);

	if (!p || outlen == 0)
		return -1;
	for (size_t i = nlen + 1; i < seglen; i++) {
		char c = p[i];
		if (c == '%') {
			int hi, lo;
			if (i + 2 >= seglen)
				return -1;
			hi = hexval(p[i + 1]);
			lo = hexval(p[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi << 4 | lo);
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (o + 1 >= outlen)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	return (int)o;
}

int http_cookie_get(const char *header, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name);
	const char *p = header;

	while (p && *p) {
		while (*p == ' ' || *p == ';')
			p++;
		const char *end = strchr(p, ';');
		size_t seglen = end ? (size_t)(end - p) : strlen(p);
		if (seglen > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			const char *v = p + nlen + 1;
			size_t vlen = seglen - nlen - 1;
			while (vlen > 0 && v[vlen - 1] == ' ')
				vlen--;
			if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
				v++;
				vlen -= 2;
			}
			if (vlen + 1 > outlen)
				return -1;
			memcpy(out, v, vlen);
			out[vlen] = '\0';
			return (int)vlen;
		}
		p = end ? end + 1 : NULL;
	}
	return -1;
}

int http_is_json_type(const char *ct)
{
	static const char want[] = "application/json";
	size_t n = sizeof(want) - 1;

	if (!ct)
		return 0;
	while (*ct == ' ')
		ct++;
	if (strncasecmp(ct, want, n) != 0)
		return 0;
	ct += n;
	while (*ct == ' ')
		ct++;
	return *ct == '\0' || *ct == ';';
}

int http_origin_allowed(const char *origin, const char *public_origin, const char *host, int https)
{
	char self[600];

	if (!origin || !*origin)
		return 1;
	if (public_origin && *public_origin)
		return strcmp(origin, public_origin) == 0;
	if (!host || !*host)
		return 0;
	snprintf(self, sizeof(self), "%s://%s", https ? "https" : "http", host);
	return strcasecmp(origin, self) == 0;
}
