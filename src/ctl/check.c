/*
 * check: mjsctl check, what a deployment step or a monitor asks before
 * trusting an installation: the config loads (it did, or mjsctl would have
 * exited 2), the database answers, every migration this mjsctl knows is
 * applied and unchanged, every function, view and trigger is as its file and
 * the last migrate made it (no drift), and each configured upstream answers
 * within a short timeout. A chat upstream is asked for its models list, in its
 * protocol and with its key: a list, or a 404 (some servers have none), is
 * fine; a refused key (401, 403), a 5xx, a refused connection, a DNS failure
 * or a timeout is not. The image and video upstreams' base URLs may answer
 * any HTTP status.
 */
#include "ctl/ctl.h"
#include "common/db.h"
#include "worker/proto.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#define UPSTREAM_CONNECT_TIMEOUT_MS 3000L
#define UPSTREAM_TIMEOUT_MS 5000L

struct report {
	const struct ctl *c;
	struct json_object *checks;
	int failed;
};

static void result(struct report *r, const char *name, int ok, const char *detail)
{
	if (r->c->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(name));
		json_object_object_add(o, "ok", json_object_new_boolean(ok));
		json_object_object_add(o, "detail", json_object_new_string(detail));
		json_object_array_add(r->checks, o);
	} else {
		printf("%-4s %-10s %s\n", ok ? "ok" : "FAIL", name, detail);
	}
	if (!ok)
		r->failed = 1;
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void)ptr;
	(void)userdata;
	return size * nmemb;
}

#define ANSWER_MAX (1 << 20)

static size_t keep(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct buf *b = userdata;

	if (b->len + size * nmemb > ANSWER_MAX || buf_append(b, ptr, size * nmemb) < 0)
		return 0;
	return size * nmemb;
}

/* A chat upstream: its models list, asked in its protocol with its key. */
static void check_chat_upstream(struct report *r, const struct config_upstream *u)
{
	char name[64], detail[CURL_ERROR_SIZE + 1024], errbuf[CURL_ERROR_SIZE] = "", key[1024], msg[200];
	struct proto_request req;
	struct curl_slist *headers = NULL;
	struct buf answer = { 0 };
	CURLcode cc;
	long status = 0;
	CURL *h;

	snprintf(name, sizeof(name), "upstream:%s", u->name);
	if (config_upstream_key(u, key, sizeof(key), detail, sizeof(detail)) < 0) {
		result(r, name, 0, detail);
		return;
	}
	if (proto_models_request(u->protocol, u->url, key, &req) < 0 || !(h = curl_easy_init())) {
		result(r, name, 0, "out of memory");
		return;
	}
	for (int i = 0; i < req.nheaders; i++)
		headers = curl_slist_append(headers, req.headers[i]);
	curl_easy_setopt(h, CURLOPT_URL, req.url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, UPSTREAM_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, UPSTREAM_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "mjsctl-check");
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (cc != CURLE_OK) {
		snprintf(detail, sizeof(detail), "%s (%s) unreachable: %s", req.url, config_protocol_name(u->protocol),
			 errbuf[0] ? errbuf : curl_easy_strerror(cc));
		result(r, name, 0, detail);
	} else if (status >= 200 && status < 300) {
		int n = proto_models_count(answer.data ? answer.data : "", answer.len);
		snprintf(detail, sizeof(detail), "%s (%s) answers: %s%d models listed", req.url,
			 config_protocol_name(u->protocol), n < 0 ? "no list, " : "", n < 0 ? 0 : n);
		result(r, name, 1, detail);
	} else if (status == 404 || status == 405) {
		snprintf(detail, sizeof(detail), "%s (%s) answers HTTP %ld: it lists no models", req.url,
			 config_protocol_name(u->protocol), status);
		result(r, name, 1, detail);
	} else {
		upstream_error_message(answer.data ? answer.data : "", answer.len, msg, sizeof(msg));
		snprintf(detail, sizeof(detail), "%s (%s) answers HTTP %ld%s: %s", req.url,
			 config_protocol_name(u->protocol), status,
			 status == 401 || status == 403 ? " (the key is refused)" : "", msg);
		result(r, name, 0, detail);
	}
	curl_slist_free_all(headers);
	curl_easy_cleanup(h);
	buf_free(&answer);
	proto_request_free(&req);
}

static void check_upstream(struct report *r, const char *name, const char *url)
{
	char detail[CURL_ERROR_SIZE + 512], errbuf[CURL_ERROR_SIZE] = "";
	CURL *h;
	CURLcode cc;
	long status = 0;

	if (!url[0]) {
		result(r, name, 1, "not configured");
		return;
	}
	h = curl_easy_init();
	if (!h) {
		result(r, name, 0, "curl_easy_init failed");
		return;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, UPSTREAM_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, UPSTREAM_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "mjsctl-check");
	cc = curl_easy_perform(h);
	if (cc == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		snprintf(detail, sizeof(detail), "%s answers (HTTP %ld)", url, status);
		result(r, name, 1, detail);
	} else {
		snprintf(detail, sizeof(detail), "%s unreachable: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
		result(r, name, 0, detail);
	}
	curl_easy_cleanup(h);
}

int ctl_check(struct ctl *c)
{
	struct report r = { c, json_object_new_array(), 0 };
	char detail[1024];
	int applied, pending, rc;

	if (c->config_path)
		snprintf(detail, sizeof(detail), "%s loaded", c->config_path);
	else
		snprintf(detail, sizeof(detail), "no config file, every key has its default");
	result(&r, "config", 1, detail);
	if (!ctl_db(c)) {
		char shown[400];
		snprintf(detail, sizeof(detail), "cannot connect (database = %s)",
			 ctl_conninfo_shown(c->cfg->database, shown, sizeof(shown)));
		result(&r, "database", 0, detail);
		rc = EXIT_NODB;
		goto out;
	}
	snprintf(detail, sizeof(detail), "connected, server %d", PQserverVersion(c->db));
	result(&r, "database", 1, detail);
	if (ctl_migrations_state(c, &applied, &pending, 0) < 0) {
		result(&r, "migrations", 0, "cannot be checked (see above)");
	} else {
		snprintf(detail, sizeof(detail), "%d applied, %d pending%s", applied, pending,
			 pending ? ": run mjsctl migrate" : "");
		result(&r, "migrations", pending == 0, detail);
	}
	{
		struct definitions_state st;

		if (ctl_definitions_state(c, &st, 0) < 0)
			result(&r, "definitions", 0, "cannot be checked (see above)");
		else if (st.pending)
			snprintf(detail, sizeof(detail), "%d of %d not applied (%s%s): run mjsctl migrate", st.pending,
				 st.applied + st.pending, st.first_pending, st.pending > 1 ? ", ..." : "");
		else if (st.drift)
			snprintf(detail, sizeof(detail), "%d applied; drift: %s%s (mjsctl migrate --status lists it all)",
				 st.applied, st.first_drift, st.drift > 1 ? ", ..." : "");
		else
			snprintf(detail, sizeof(detail), "%d applied, no drift", st.applied);
		if (st.applied + st.pending + st.drift)
			result(&r, "definitions", !st.pending && !st.drift, detail);
	}
	if (c->cfg->nupstreams == 0)
		result(&r, "upstreams", 1, "no chat upstream configured");
	for (int i = 0; i < c->cfg->nupstreams; i++)
		check_chat_upstream(&r, &c->cfg->upstreams[i]);
	check_upstream(&r, "image_url", c->cfg->image_url);
	check_upstream(&r, "video_url", c->cfg->video_url);
	rc = r.failed ? EXIT_FAIL : EXIT_OK;
out:
	if (c->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "ok", json_object_new_boolean(!r.failed));
		json_object_object_add(o, "checks", json_object_get(r.checks));
		ctl_print_json(o);
	}
	json_object_put(r.checks);
	return rc;
}
