/*
 * config: table-driven parser for mjs.conf. Every key lives in keys[] below with its
 * type, default and bounds; mjs.conf(5) documents the same table.
 */
#include "common/config.h"
#include "common/log.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum key_type { T_STRING, T_INT, T_BOOL, T_BOOL_AUTO, T_DURATION, T_DURATION_S, T_SIZE, T_MODE };

struct key {
	const char *name;
	enum key_type type;
	size_t offset;
	const char *def;
	long long min, max;	/* for ints (units), durations (ms) and sizes (bytes) */
};

#define OFF(f) offsetof(struct config, f)
static const struct key keys[] = {
	{ "database", T_STRING, OFF(database), "dbname=mjs", 0, 0 },
	{ "log_level", T_STRING, OFF(log_level), "info", 0, 0 },
	{ "listen", T_STRING, OFF(listen), "/run/mjs/api.sock", 0, 0 },
	{ "socket_mode", T_MODE, OFF(socket_mode), "0660", 0, 0777 },
	{ "listen_backlog", T_INT, OFF(listen_backlog), "1024", 1, 65535 },
	{ "threads", T_INT, OFF(threads), "16", 1, 1024 },
	{ "db_pool_size", T_INT, OFF(db_pool_size), "8", 1, 256 },
	{ "max_body_size", T_SIZE, OFF(max_body_size), "1M", 1024, 64LL << 20 },
	{ "keepalive_interval", T_DURATION, OFF(keepalive_interval_ms), "15s", 1000, 3600000 },
	{ "sse_retry", T_DURATION, OFF(sse_retry_ms), "2s", 100, 600000 },
	{ "stream_queue_max", T_SIZE, OFF(stream_queue_max), "256k", 16384, 64LL << 20 },
	{ "stream_stall_timeout", T_DURATION, OFF(stream_stall_timeout_ms), "30s", 1000, 3600000 },
	{ "max_streams", T_INT, OFF(max_streams), "20000", 1, 1000000 },
	{ "max_streams_per_user", T_INT, OFF(max_streams_per_user), "32", 1, 1000000 },
	{ "max_replies_per_user", T_INT, OFF(max_replies_per_user), "10", 1, 100000 },
	{ "max_tasks_per_user", T_INT, OFF(max_tasks_per_user), "10", 1, 100000 },
	{ "replay_batch", T_INT, OFF(replay_batch), "500", 10, 100000 },
	{ "session_ttl", T_DURATION_S, OFF(session_ttl_s), "30d", 60, 10LL * 365 * 86400 },
	{ "cookie_secure", T_BOOL_AUTO, OFF(cookie_secure), "auto", 0, 0 },
	{ "allow_registration", T_BOOL, OFF(allow_registration), "yes", 0, 0 },
	{ "login_failures_free", T_INT, OFF(login_failures_free), "5", 1, 1000 },
	{ "login_block_max", T_DURATION, OFF(login_block_max_ms), "15min", 1000, 86400000 },
	{ "public_origin", T_STRING, OFF(public_origin), "", 0, 0 },
	{ "chat_url", T_STRING, OFF(chat_url), "", 0, 0 },
	{ "chat_api_key", T_STRING, OFF(chat_api_key), "", 0, 0 },
	{ "chat_model", T_STRING, OFF(chat_model), "", 0, 0 },
	{ "image_url", T_STRING, OFF(image_url), "", 0, 0 },
	{ "image_secret", T_STRING, OFF(image_secret), "", 0, 0 },
	{ "video_url", T_STRING, OFF(video_url), "", 0, 0 },
	{ "video_api_key", T_STRING, OFF(video_api_key), "", 0, 0 },
	{ "flush_interval", T_DURATION, OFF(flush_interval_ms), "30ms", 1, 10000 },
	{ "flush_min_interval", T_DURATION, OFF(flush_min_interval_ms), "5ms", 0, 10000 },
	{ "flush_max_bytes", T_SIZE, OFF(flush_max_bytes), "16k", 256, 1 << 20 },
	{ "max_generations", T_INT, OFF(max_generations), "500", 1, 100000 },
	{ "lease_time", T_DURATION, OFF(lease_time_ms), "30s", 3000, 3600000 },
	{ "connect_timeout", T_DURATION, OFF(connect_timeout_ms), "10s", 100, 600000 },
	{ "first_token_timeout", T_DURATION, OFF(first_token_timeout_ms), "60s", 100, 3600000 },
	{ "idle_timeout", T_DURATION, OFF(idle_timeout_ms), "60s", 100, 3600000 },
	{ "shutdown_grace", T_DURATION, OFF(shutdown_grace_ms), "10s", 0, 600000 },
	{ "max_attempts", T_INT, OFF(max_attempts), "3", 1, 100 },
	{ "context_messages", T_INT, OFF(context_messages), "50", 1, 10000 },
	{ "context_max_bytes", T_SIZE, OFF(context_max_bytes), "512k", 1024, 64LL << 20 },
	{ "reply_max_chars", T_INT, OFF(reply_max_chars), "200000", 1, 4000000 },
	{ "reply_max_duration", T_DURATION, OFF(reply_max_duration_ms), "10min", 1000, 86400000 },
	{ "reply_max_tokens", T_INT, OFF(reply_max_tokens), "0", 0, 10000000 },
	{ "worker_name", T_STRING, OFF(worker_name), "", 0, 0 },
	{ "delta_retention", T_DURATION, OFF(delta_retention_ms), "10min", 60000, 7LL * 86400000 },
	{ "event_retention", T_DURATION_S, OFF(event_retention_s), "30min", 600, 3650LL * 86400 },
	{ "event_keep", T_INT, OFF(event_keep), "100", 0, 1000000 },
	{ "max_tasks", T_INT, OFF(max_tasks), "200", 1, 100000 },
	{ "task_poll_interval", T_DURATION, OFF(task_poll_interval_ms), "2s", 10, 3600000 },
	{ "task_backoff_max", T_DURATION, OFF(task_backoff_max_ms), "60s", 10, 3600000 },
	{ "task_upstream_grace", T_DURATION, OFF(task_upstream_grace_ms), "10m", 0, 86400000 },
	{ "task_deadline", T_DURATION, OFF(task_deadline_ms), "1h", 1000, 7LL * 86400000 },
	{ "task_request_timeout", T_DURATION, OFF(task_request_timeout_ms), "30s", 100, 600000 },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

int config_parse_bool(const char *s, int *out)
{
	if (!strcmp(s, "yes") || !strcmp(s, "true") || !strcmp(s, "on") || !strcmp(s, "1"))
		*out = 1;
	else if (!strcmp(s, "no") || !strcmp(s, "false") || !strcmp(s, "off") || !strcmp(s, "0"))
		*out = 0;
	else
		return -1;
	return 0;
}

/* Parses "<digits><unit>"; returns the number and points *unit at the rest. */
static int parse_number(const char *s, long long *num, const char **unit)
{
	char *end;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	*num = strtoll(s, &end, 10);
	if (errno)
		return -1;
	*unit = end;
	return 0;
}

static int parse_duration(const char *s, long long *out);

int config_parse_duration_ms(const char *s, int *out)
{
	long long ms;

	if (parse_duration(s, &ms) < 0 || ms > INT_MAX)
		return -1;
	*out = (int)ms;
	return 0;
}

/* Parses a duration with its unit into milliseconds (no int limit). */
static int parse_duration(const char *s, long long *out)
{
	long long n, mult;
	const char *u;

	if (parse_number(s, &n, &u) < 0)
		return -1;
	if (!strcmp(u, "ms"))
		mult = 1;
	else if (!strcmp(u, "s") || !*u)
		mult = 1000;
	else if (!strcmp(u, "m") || !strcmp(u, "min"))
		mult = 60000;
	else if (!strcmp(u, "h"))
		mult = 3600000;
	else if (!strcmp(u, "d"))
		mult = 86400000;
	else
		return -1;
	if (n > LLONG_MAX / mult)
		return -1;
	*out = n * mult;
	return 0;
}

int config_parse_size(const char *s, size_t *out)
{
	long long n, mult;
	const char *u;

	if (parse_number(s, &n, &u) < 0)
		return -1;
	if (!*u || !strcmp(u, "B"))
		mult = 1;
	else if (!strcmp(u, "k") || !strcmp(u, "K") || !strcmp(u, "KiB"))
		mult = 1024;
	else if (!strcmp(u, "M") || !strcmp(u, "MiB"))
		mult = 1024 * 1024;
	else if (!strcmp(u, "G") || !strcmp(u, "GiB"))
		mult = 1024LL * 1024 * 1024;
	else
		return -1;
	if (n > LLONG_MAX / mult)
		return -1;
	*out = (size_t)(n * mult);
	return 0;
}

static int set_key(struct config *cfg, const struct key *k, const char *value, char *err, size_t errlen)
{
	char *base = (char *)cfg;
	long long v = 0;
	char *end;

	switch (k->type) {
	case T_STRING: {
		char **slot = (char **)(base + k->offset);
		char *dup = strdup(value);
		if (!dup) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		free(*slot);
		*slot = dup;
		return 0;
	}
	case T_BOOL_AUTO:
		if (!strcmp(value, "auto")) {
			*(int *)(base + k->offset) = CONFIG_AUTO;
			return 0;
		}
		/* fall through */
	case T_BOOL: {
		int b;
		if (config_parse_bool(value, &b) < 0) {
			if (k->type == T_BOOL_AUTO) {
				snprintf(err, errlen, "%s: expected yes, no or auto, got \"%s\"", k->name, value);
				return -1;
			}
			snprintf(err, errlen, "%s: expected yes or no, got \"%s\"", k->name, value);
			return -1;
		}
		*(int *)(base + k->offset) = b;
		return 0;
	}
	case T_INT:
	case T_MODE:
		errno = 0;
		v = strtoll(value, &end, k->type == T_MODE ? 8 : 10);
		if (errno || end == value || *end) {
			snprintf(err, errlen, "%s: expected %s, got \"%s\"", k->name,
				 k->type == T_MODE ? "an octal mode" : "an integer", value);
			return -1;
		}
		break;
	case T_DURATION:
	case T_DURATION_S: {
		long long ms;
		if (parse_duration(value, &ms) < 0) {
			snprintf(err, errlen, "%s: expected a duration like 15s or 30ms, got \"%s\"", k->name, value);
			return -1;
		}
		v = k->type == T_DURATION_S ? ms / 1000 : ms;
		break;
	}
	case T_SIZE: {
		size_t sz;
		if (config_parse_size(value, &sz) < 0) {
			snprintf(err, errlen, "%s: expected a size like 1M or 256k, got \"%s\"", k->name, value);
			return -1;
		}
		v = (long long)sz;
		break;
	}
	}
	if (v < k->min || v > k->max) {
		snprintf(err, errlen, "%s: %s is out of range", k->name, value);
		return -1;
	}
	if (k->type == T_SIZE)
		*(size_t *)(base + k->offset) = (size_t)v;
	else
		*(int *)(base + k->offset) = (int)v;
	return 0;
}

static const char *const PROTOCOL_NAMES[] = {
	[PROTO_OPENAI_CHAT] = "openai-chat",
	[PROTO_OPENAI_RESPONSES] = "openai-responses",
	[PROTO_ANTHROPIC] = "anthropic",
	[PROTO_GEMINI] = "gemini",
};
#define NPROTOCOLS (sizeof(PROTOCOL_NAMES) / sizeof(PROTOCOL_NAMES[0]))

int config_protocol_parse(const char *name, enum upstream_protocol *out)
{
	for (size_t i = 0; i < NPROTOCOLS; i++) {
		if (!strcmp(name, PROTOCOL_NAMES[i])) {
			*out = (enum upstream_protocol)i;
			return 0;
		}
	}
	return -1;
}

const char *config_protocol_name(enum upstream_protocol protocol)
{
	return (size_t)protocol < NPROTOCOLS ? PROTOCOL_NAMES[protocol] : "?";
}

static void upstream_free(struct config_upstream *u)
{
	free(u->url);
	free(u->key);
	free(u->key_file);
	for (int i = 0; i < u->nmodels; i++)
		free(u->models[i]);
	memset(u, 0, sizeof(*u));
}

static int valid_upstream_name(const char *s, size_t n)
{
	if (n == 0 || n > CONFIG_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return 0;
	return 1;
}

/* "a b, c": the models, each a name of up to 200 printable bytes, or "prefix*". */
static int set_models(struct config_upstream *u, const char *key, const char *value, char *err, size_t errlen)
{
	const char *p = value;

	for (int i = 0; i < u->nmodels; i++)
		free(u->models[i]);
	u->nmodels = 0;
	while (*p) {
		size_t n;
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		for (n = 0; p[n] && p[n] != ' ' && p[n] != '\t' && p[n] != ','; n++)
			if ((unsigned char)p[n] < 0x21 || (p[n] == '*' && p[n + 1] && p[n + 1] != ' ' && p[n + 1] != ','))
				break;
		if (n == 0)
			break;
		if ((p[n] && p[n] != ' ' && p[n] != '\t' && p[n] != ',') || n > 200) {
			snprintf(err, errlen, "%s: a model is a name of at most 200 characters, with * only at its end",
				 key);
			return -1;
		}
		if (u->nmodels == CONFIG_MODELS_MAX) {
			snprintf(err, errlen, "%s: at most %d models", key, CONFIG_MODELS_MAX);
			return -1;
		}
		if (!(u->models[u->nmodels] = strndup(p, n))) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		u->nmodels++;
		p += n;
	}
	return 0;
}

/* upstream.NAME.FIELD = value */
static int set_upstream(struct config *cfg, const char *key, const char *value, char *err, size_t errlen)
{
	const char *name = key + strlen("upstream."), *dot = strchr(name, '.'), *field;
	struct config_upstream *u = NULL;
	char **slot = NULL;

	if (!dot || !valid_upstream_name(name, (size_t)(dot - name))) {
		snprintf(err, errlen, "\"%s\": expected upstream.NAME.FIELD, NAME of 1 to %d of a-z 0-9 _ -", key,
			 CONFIG_NAME_MAX);
		return -1;
	}
	field = dot + 1;
	for (int i = 0; i < cfg->nupstreams; i++)
		if (strlen(cfg->upstreams[i].name) == (size_t)(dot - name) &&
		    !strncmp(cfg->upstreams[i].name, name, (size_t)(dot - name)))
			u = &cfg->upstreams[i];
	if (!u) {
		if (cfg->nupstreams == CONFIG_UPSTREAMS_MAX) {
			snprintf(err, errlen, "at most %d upstreams", CONFIG_UPSTREAMS_MAX);
			return -1;
		}
		u = &cfg->upstreams[cfg->nupstreams++];
		memset(u, 0, sizeof(*u));
		memcpy(u->name, name, (size_t)(dot - name));
	}
	if (!strcmp(field, "protocol")) {
		if (config_protocol_parse(value, &u->protocol) < 0) {
			snprintf(err, errlen, "%s: expected openai-chat, openai-responses, anthropic or gemini, got \"%s\"",
				 key, value);
			return -1;
		}
		return 0;
	}
	if (!strcmp(field, "models"))
		return set_models(u, key, value, err, errlen);
	if (!strcmp(field, "reasoning")) {
		if (config_parse_bool(value, &u->reasoning) < 0) {
			snprintf(err, errlen, "%s: expected yes or no, got \"%s\"", key, value);
			return -1;
		}
		return 0;
	}
	if (!strcmp(field, "url"))
		slot = &u->url;
	else if (!strcmp(field, "key"))
		slot = &u->key;
	else if (!strcmp(field, "key_file"))
		slot = &u->key_file;
	if (!slot) {
		snprintf(err, errlen, "\"%s\": an upstream has protocol, url, key, key_file, models and reasoning", key);
		return -1;
	}
	free(*slot);
	if (!(*slot = strdup(value))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/*
 * After a file is read: every named upstream complete, and the legacy one made
 * from chat_url.
 */
static int finish_upstreams(struct config *cfg, char *err, size_t errlen)
{
	struct config_upstream *u;

	for (int i = 0; i < cfg->nupstreams; i++) {
		u = &cfg->upstreams[i];
		if (u->legacy) {	/* from an earlier load: made again below */
			upstream_free(u);
			cfg->nupstreams--;
			break;
		}
		if (!strcmp(u->name, CONFIG_LEGACY_UPSTREAM)) {
			snprintf(err, errlen, "upstream.%s: the name is the one chat_url's upstream has; choose another",
				 u->name);
			return -1;
		}
		if (!u->url || (strncmp(u->url, "http://", 7) && strncmp(u->url, "https://", 8))) {
			snprintf(err, errlen, "upstream.%s.url: an http:// or https:// base URL is required", u->name);
			return -1;
		}
		if (u->nmodels == 0) {
			snprintf(err, errlen, "upstream.%s.models: at least one model is required", u->name);
			return -1;
		}
		if (u->key && u->key_file) {
			snprintf(err, errlen, "upstream.%s: key and key_file both set; keep one", u->name);
			return -1;
		}
	}
	if (!cfg->chat_url[0])
		return 0;
	u = &cfg->upstreams[cfg->nupstreams++];
	memset(u, 0, sizeof(*u));
	snprintf(u->name, sizeof(u->name), "%s", CONFIG_LEGACY_UPSTREAM);
	u->legacy = 1;
	u->protocol = PROTO_OPENAI_CHAT;
	u->url = strdup(cfg->chat_url);
	u->key = strdup(cfg->chat_api_key);
	u->models[u->nmodels++] = strdup(cfg->chat_model[0] ? cfg->chat_model : "default");
	u->models[u->nmodels++] = strdup("*");
	for (int i = 0; i < u->nmodels; i++)
		if (!u->models[i] || !u->url || !u->key) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	return 0;
}

const struct config_upstream *config_model_upstream(const struct config *cfg, const char *model)
{
	for (int i = 0; i < cfg->nupstreams; i++)
		for (int k = 0; k < cfg->upstreams[i].nmodels; k++)
			if (!strcmp(cfg->upstreams[i].models[k], model))
				return &cfg->upstreams[i];
	for (int i = 0; i < cfg->nupstreams; i++) {
		for (int k = 0; k < cfg->upstreams[i].nmodels; k++) {
			const char *m = cfg->upstreams[i].models[k];
			size_t n = strlen(m);
			if (n > 0 && m[n - 1] == '*' && !strncmp(m, model, n - 1))
				return &cfg->upstreams[i];
		}
	}
	return NULL;
}

int config_upstream_key(const struct config_upstream *u, char *out, size_t len, char *err, size_t errlen)
{
	FILE *f;
	size_t n;

	out[0] = '\0';
	if (!u->key_file) {
		snprintf(out, len, "%s", u->key ? u->key : "");
		return 0;
	}
	f = fopen(u->key_file, "r");
	if (!f) {
		snprintf(err, errlen, "upstream.%s.key_file %s: %s", u->name, u->key_file, strerror(errno));
		return -1;
	}
	if (!fgets(out, (int)len, f))
		out[0] = '\0';
	fclose(f);
	n = strlen(out);
	while (n > 0 && isspace((unsigned char)out[n - 1]))
		out[--n] = '\0';
	return 0;
}

int config_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen)
{
	if (!strncmp(key, "upstream.", 9))
		return set_upstream(cfg, key, value, err, errlen);
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcmp(keys[i].name, key))
			return set_key(cfg, &keys[i], value, err, errlen);
	snprintf(err, errlen, "unknown key \"%s\"", key);
	return -1;
}

void config_defaults(struct config *cfg)
{
	char err[256];

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < NKEYS; i++)
		if (set_key(cfg, &keys[i], keys[i].def, err, sizeof(err)) < 0)
			abort();	/* a bad default is a programmer error */
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int config_load(struct config *cfg, const char *path, int must_exist, char *err, size_t errlen)
{
	char line[4096], msg[512];
	int lineno = 0, rc = 0;
	FILE *f = fopen(path, "r");

	if (!f) {
		if (!must_exist && errno == ENOENT)
			return finish_upstreams(cfg, err, errlen);
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *p, *eq, *key, *value;

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line too long", path, lineno);
			rc = -1;
			break;
		}
		p = trim(line);
		if (!*p || *p == '#')
			continue;
		eq = strchr(p, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%d: expected \"key = value\"", path, lineno);
			rc = -1;
			break;
		}
		*eq = '\0';
		key = trim(p);
		value = trim(eq + 1);
		if (strlen(value) >= 2 && (value[0] == '"' || value[0] == '\'') &&
		    value[strlen(value) - 1] == value[0]) {
			value[strlen(value) - 1] = '\0';
			value++;
		}
		if (config_set(cfg, key, value, msg, sizeof(msg)) < 0) {
			snprintf(err, errlen, "%s:%d: %s", path, lineno, msg);
			rc = -1;
			break;
		}
	}
	fclose(f);
	if (rc == 0)
		rc = finish_upstreams(cfg, err, errlen);
	return rc;
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if (keys[i].type == T_STRING) {
			char **slot = (char **)((char *)cfg + keys[i].offset);
			free(*slot);
			*slot = NULL;
		}
	}
	for (int i = 0; i < cfg->nupstreams; i++)
		upstream_free(&cfg->upstreams[i]);
	cfg->nupstreams = 0;
}

void config_reload_log_level(const char *path, int must_exist)
{
	struct config fresh;
	char err[512];

	config_defaults(&fresh);
	if (config_load(&fresh, path, must_exist, err, sizeof(err)) < 0)
		log_error("SIGHUP: config not reloaded: %s", err);
	else if (log_set_level_name(fresh.log_level) < 0)
		log_error("SIGHUP: config not reloaded: log_level must be debug, info, warn or error");
	else
		log_info("SIGHUP: reloaded log_level=%s (other keys apply on restart)", fresh.log_level);
	config_free(&fresh);
}
