/*
 * config: the one table of every configuration key of every mjs program.
 * File format: "key = value" lines, '#' comments, blank lines. Unknown keys and bad
 * values are errors with the line number, so a typo never silently means a default.
 * Durations take a unit (ms, s, m, h, d; bare numbers are seconds), sizes take
 * k, M or G (bare numbers are bytes).
 */
#ifndef MJS_COMMON_CONFIG_H
#define MJS_COMMON_CONFIG_H

#include <stddef.h>

#define CONFIG_DEFAULT_PATH SYSCONFDIR "/mjs/mjs.conf"
#define CONFIG_AUTO (-1)	/* a T_BOOL_AUTO key set to "auto" */

/* The chat protocols an upstream may speak (DESIGN.md "Upstreams"; worker/proto_*.c). */
enum upstream_protocol {
	PROTO_OPENAI_CHAT = 0,
	PROTO_OPENAI_RESPONSES,
	PROTO_ANTHROPIC,
	PROTO_GEMINI,
};

#define CONFIG_UPSTREAMS_MAX 32
#define CONFIG_MODELS_MAX 64
#define CONFIG_NAME_MAX 32	/* an upstream's name: [a-z0-9_-] */
#define CONFIG_LEGACY_UPSTREAM "default"

/*
 * A chat upstream: upstream.NAME.protocol, .url, .key or .key_file, .models.
 * The old chat_url, chat_api_key and chat_model keys make one more, named
 * "default", of protocol openai-chat, taking any model (as they always did).
 */
struct config_upstream {
	char name[CONFIG_NAME_MAX + 1];
	enum upstream_protocol protocol;
	char *url;
	char *key;		/* NULL when none (or from key_file) */
	char *key_file;		/* read when the key is needed (config_upstream_key) */
	char *models[CONFIG_MODELS_MAX];	/* exact names, or "prefix*" */
	int nmodels;
	int reasoning;		/* ask for the models' reasoning in the protocol's way (upstream.NAME.reasoning) */
	int legacy;		/* made from chat_url, chat_api_key, chat_model */
};

struct config {
	/* every program */
	char *database;
	char *log_level;
	/* mjs-api */
	char *listen;
	int socket_mode;
	int listen_backlog;
	int threads;
	int db_pool_size;
	size_t max_body_size;
	int keepalive_interval_ms;
	int sse_retry_ms;
	size_t stream_queue_max;
	int stream_stall_timeout_ms;
	int max_streams;
	int max_streams_per_user;	/* per responder (api/seats.c) */
	int max_replies_per_user;	/* queued plus running replies */
	int max_tasks_per_user;		/* tasks submitting or processing */
	int replay_batch;
	int session_ttl_s;
	int cookie_secure;		/* 0, 1 or CONFIG_AUTO (auth.c decides per request) */
	int allow_registration;
	int login_failures_free;	/* failed logins in a row before a name is blocked */
	int login_block_max_ms;
	char *public_origin;
	/* mjs-worker */
	char *chat_url;
	char *chat_api_key;
	char *chat_model;
	char *image_url;
	char *image_secret;
	char *video_url;
	char *video_api_key;
	int flush_interval_ms;		/* the longest a token waits for its flush (worker/pace.h) */
	int flush_min_interval_ms;	/* the shortest gap between the starts of two flushes */
	size_t flush_max_bytes;
	int max_generations;
	int lease_time_ms;
	int connect_timeout_ms;
	int first_token_timeout_ms;
	int idle_timeout_ms;
	int shutdown_grace_ms;
	int max_attempts;
	int context_messages;
	size_t context_max_bytes;
	int reply_max_chars;
	int reply_max_duration_ms;
	int reply_max_tokens;		/* max_tokens sent upstream; 0: not sent */
	char *worker_name;
	int delta_retention_ms;		/* retention (worker/retention.c, sql/functions/retain.sql) */
	int event_retention_s;
	int event_keep;
	/* mjs-worker: image and video tasks */
	int max_tasks;
	int task_poll_interval_ms;
	int task_backoff_max_ms;
	int task_upstream_grace_ms;
	int task_deadline_ms;
	int task_request_timeout_ms;
	/* chat upstreams, in file order; the legacy one (chat_url) last */
	struct config_upstream upstreams[CONFIG_UPSTREAMS_MAX + 1];
	int nupstreams;
};

/* Fills cfg with the defaults. Strings are owned by cfg: free with config_free(). */
void config_defaults(struct config *cfg);

/*
 * Reads a config file over cfg. With must_exist == 0 a missing file is not an error
 * (the default path need not exist). On error writes a message naming the file and
 * line into err and returns -1; cfg may be partly updated.
 */
int config_load(struct config *cfg, const char *path, int must_exist, char *err, size_t errlen);

/* Applies one "key = value" setting (the parser's core; also used for tests). */
int config_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen);

int config_parse_duration_ms(const char *s, int *out);
int config_parse_size(const char *s, size_t *out);
int config_parse_bool(const char *s, int *out);

void config_free(struct config *cfg);

int config_protocol_parse(const char *name, enum upstream_protocol *out);
const char *config_protocol_name(enum upstream_protocol protocol);

/*
 * The upstream that serves model: an exact name first (in file order), then a
 * "prefix*" pattern, then the legacy upstream (any model). NULL when none:
 * the model is not offered (422).
 */
const struct config_upstream *config_model_upstream(const struct config *cfg, const char *model);

/*
 * The upstream's key: upstream.NAME.key, or the first line of key_file, into out
 * ("" when it has none). Returns 0, or -1 with why in err (a file it cannot read).
 */
int config_upstream_key(const struct config_upstream *u, char *out, size_t len, char *err, size_t errlen);

/*
 * SIGHUP in a daemon: reads path again and applies its log_level; every other
 * key needs a restart. A bad file changes nothing. Logs what it did.
 */
void config_reload_log_level(const char *path, int must_exist);

#endif
