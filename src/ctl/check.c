/*
 * check: mjsctl check, what a deployment step or a monitor asks before
 * trusting an installation: the config loads (it did, or mjsctl would have
 * exited 2), the database answers, every migration this mjsctl knows is
 * applied and unchanged, every function, view and trigger is as its file and
 * the last migrate made it (no drift), and each configured upstream answers HTTP within a
 * short timeout. Any HTTP status counts as reachable (a base URL often
 * answers 404); a refused connection, a DNS failure or a timeout does not.
 */
#include "ctl/ctl.h"
#include "common/db.h"

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
	check_upstream(&r, "chat_url", c->cfg->chat_url);
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
