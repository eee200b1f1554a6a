/*
 * content: GET /api/tasks/{id}/content, a task result that only the upstream's
 * key can fetch (mjs.tasks.content_url): the file is fetched from mjs.tasks.content_url with
 * video_api_key and passed to the client as it arrives, for the task's owner
 * only. A Range header goes upstream and 206/416 come back, so a video player
 * can seek. nginx buffers the answer, so a REST thread is held for as long as
 * the upstream takes, not the client; at most half the REST threads fetch at
 * once (503 with Retry-After beyond), so REST requests always find a thread.
 *
 * Everything the upstream says is untrusted: only a 200, 206 or 416 is passed
 * on, and only Content-Type (a video type or a raster image type, else
 * application/octet-stream: never a document the browser would run on our
 * origin, and sandboxed by CSP anyway), Content-Length, Content-Range and
 * Accept-Ranges, each checked for what it may hold; any other answer is our
 * own JSON error. A transfer slower than CONTENT_MIN_RATE bytes/s for
 * CONTENT_STALL_S (the head included) ends, so a silent or trickling upstream
 * cannot hold a thread; nginx does not retry this route on another responder.
 * Like events_get, this handler writes to the connection itself once the
 * upstream answered, and then leaves c->resp->status at 0.
 */
#include "config.h"
#include "api/handlers.h"
#include "common/db.h"
#include "common/log.h"
#include "common/util.h"

#include <ctype.h>
#include <curl/curl.h>
#include <fcgiapp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONTENT_RETRY_S 5
#define CONTENT_STALL_S 20	/* below CONTENT_MIN_RATE for this long: the transfer ends */
#define CONTENT_MIN_RATE 1024L	/* bytes per second */

static atomic_int fetching;

struct fetch {
	struct call *c;
	CURL *easy;
	long status;			/* of the last response head */
	char type[128];
	char length[24];
	char range[96];
	int ranges;			/* Accept-Ranges: bytes */
	int started;			/* our head is written */
	long long bytes;
};

/* Copies a header value made only of chars in allowed into out; "" when it holds others. */
static void take_value(char *out, size_t outlen, const char *v, size_t n, const char *allowed)
{
	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	while (n > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	out[0] = '\0';
	if (n == 0 || n >= outlen)
		return;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)v[i]) && !strchr(allowed, v[i]))
			return;
	memcpy(out, v, n);
	out[n] = '\0';
}

static int header_is(const char *line, size_t n, const char *name, const char **value, size_t *vlen)
{
	size_t k = strlen(name);

	if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0)
		return 0;
	*value = line + k + 1;
	*vlen = n - k - 1;
	return 1;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *arg)
{
	struct fetch *f = arg;
	size_t n = size * nmemb;
	const char *v;
	size_t vn;

	if (n >= 5 && !strncmp(line, "HTTP/", 5)) {
		/* a new response (after a redirect): forget the previous one's headers */
		f->type[0] = f->length[0] = f->range[0] = '\0';
		f->ranges = 0;
		f->status = 0;
	} else if (header_is(line, n, "Content-Type", &v, &vn)) {
		take_value(f->type, sizeof(f->type), v, vn, "/.+-_;= ");
	} else if (header_is(line, n, "Content-Length", &v, &vn)) {
		take_value(f->length, sizeof(f->length), v, vn, "");
	} else if (header_is(line, n, "Content-Range", &v, &vn)) {
		take_value(f->range, sizeof(f->range), v, vn, " -/*");
	} else if (header_is(line, n, "Accept-Ranges", &v, &vn)) {
		char r[16];
		take_value(r, sizeof(r), v, vn, "");
		f->ranges = !strcasecmp(r, "bytes");
	}
	return n;
}

/* Types a browser only displays: video types, and image types other than SVG (a document). */
static int media_type(const char *type)
{
	if (!strncasecmp(type, "video/", 6))
		return 1;
	return !strncasecmp(type, "image/", 6) && strncasecmp(type + 6, "svg", 3) != 0;
}

/* Our head, once: the upstream's status and the headers that passed the checks. */
static void start(struct fetch *f)
{
	FCGX_Request *fr = f->c->fcgi;
	long status = f->status;

	if (f->started)
		return;
	f->started = 1;
	FCGX_FPrintF(fr->out, "Status: %ld %s\r\n", status, http_status_text((int)status));
	FCGX_FPrintF(fr->out, "Content-Type: %s\r\n", media_type(f->type) ? f->type : "application/octet-stream");
	FCGX_FPrintF(fr->out, "Content-Security-Policy: sandbox\r\n");
	if (f->length[0])
		FCGX_FPrintF(fr->out, "Content-Length: %s\r\n", f->length);
	if (f->range[0] && status != 200)
		FCGX_FPrintF(fr->out, "Content-Range: %s\r\n", f->range);
	if (f->ranges)
		FCGX_FPrintF(fr->out, "Accept-Ranges: bytes\r\n");
	FCGX_FPrintF(fr->out, "Cache-Control: %s\r\n\r\n", status == 416 ? "no-store" : "private, max-age=3600");
	f->c->resp->status = 0;	/* answered here */
}

static int passed_on(long status)
{
	return status == 200 || status == 206 || status == 416;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct fetch *f = arg;
	size_t n = size * nmemb;

	if (!f->status)
		curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &f->status);
	if (!passed_on(f->status))
		return n;	/* an error body is read and dropped; we answer our own */
	start(f);
	if (FCGX_PutStr(data, (int)n, ((FCGX_Request *)f->c->fcgi)->out) < 0)
		return 0;	/* the client went away: end the transfer */
	f->bytes += (long long)n;
	return n;
}

static const char SQL_CONTENT[] =
	"SELECT content_url FROM mjs.tasks WHERE id = $2 AND user_id = $1 AND status = 'succeeded' "
	"AND content_url IS NOT NULL";

void tasks_content(struct call *c)
{
	const struct config *cfg = c->app->cfg;
	const char *params[2] = { c->user_id, c->params[0] };
	char *url, *auth = NULL, range[128];
	struct curl_slist *headers = NULL;
	struct fetch f = { .c = c };
	int limit = cfg->threads / 2 > 0 ? cfg->threads / 2 : 1;
	PGresult *res;
	CURLcode rc;
	CURL *easy;

	res = call_exec(c, SQL_CONTENT, 2, params);
	if (!res)
		return;
	if (PQntuples(res) == 0) {
		PQclear(res);
		http_error(c->resp, 404, "not_found", "no such task, or it has no file to fetch");
		return;
	}
	url = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	/* the transfer may take long: give the connection back first */
	db_pool_put(c->app->pool, c->db);
	c->db = NULL;
	if (!url) {
		http_error(c->resp, 500, "internal", "out of memory");
		return;
	}
	if (atomic_fetch_add(&fetching, 1) >= limit) {
		atomic_fetch_sub(&fetching, 1);
		free(url);
		http_error(c->resp, 503, "unavailable", "too many files are being fetched right now; retry shortly");
		http_header(c->resp, "Retry-After: %d", CONTENT_RETRY_S);
		return;
	}
	easy = curl_easy_init();
	if (!easy) {
		atomic_fetch_sub(&fetching, 1);
		free(url);
		http_error(c->resp, 500, "internal", "cannot start the transfer");
		return;
	}
	if (cfg->video_api_key[0]) {
		if (asprintf(&auth, "Authorization: Bearer %s", cfg->video_api_key) < 0)
			auth = NULL;	/* its contents are undefined then */
		else
			headers = curl_slist_append(headers, auth);
	}
	if (c->req->range && c->req->range[0]) {
		take_value(range, sizeof(range), c->req->range, strlen(c->req->range), "=-, ");
		if (range[0] && !strncmp(range, "bytes=", 6)) {
			char line[160];
			snprintf(line, sizeof(line), "Range: %s", range);
			headers = curl_slist_append(headers, line);
		}
	}
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);	/* the key is not sent to another host */
	curl_easy_setopt(easy, CURLOPT_MAXREDIRS, 3L);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, &f);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, &f);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms);
	curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, CONTENT_MIN_RATE);
	curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, (long)CONTENT_STALL_S);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "mjs-api/" PACKAGE_VERSION);
	f.easy = easy;
	rc = curl_easy_perform(easy);
	if (rc == CURLE_OK)
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &f.status);
	if (f.started) {
		if (rc == CURLE_WRITE_ERROR)	/* the client went away: players do, to seek */
			log_debug("content ended by the client task=%s bytes=%lld", c->params[0], f.bytes);
		else if (rc != CURLE_OK)
			log_warn("content cut task=%s user=%s bytes=%lld reason=\"%s\"", c->params[0], c->user_id,
				 f.bytes, curl_easy_strerror(rc));
	} else if (rc == CURLE_OK && passed_on(f.status)) {
		start(&f);	/* an empty body */
	} else if (rc != CURLE_OK) {
		log_warn("content failed task=%s user=%s reason=\"%s\"", c->params[0], c->user_id,
			 curl_easy_strerror(rc));
		http_error(c->resp, 502, "upstream_error", "the file could not be fetched from the upstream");
	} else if (f.status == 404 || f.status == 410) {
		http_error(c->resp, 404, "not_found", "the upstream no longer has this file");
	} else {
		log_warn("content failed task=%s user=%s upstream_status=%ld", c->params[0], c->user_id, f.status);
		http_error(c->resp, 502, "upstream_error", "the upstream refused to give the file");
	}
	curl_easy_cleanup(easy);
	curl_slist_free_all(headers);
	free(auth);
	free(url);
	atomic_fetch_sub(&fetching, 1);
}
