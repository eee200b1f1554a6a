/*
 * check_config: common/config — the defaults, every value type of config_set,
 * and config_load on real files (each test writes its own temp file and removes
 * it before asserting, so a failing test leaves nothing behind).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "suites.h"

/* Writes text to a new temp file; its path goes into path (PATH_MAX bytes). */
static void write_temp_config(char *path, const char *text)
{
	const char *dir = getenv("TMPDIR");
	FILE *f;
	int fd;

	snprintf(path, PATH_MAX, "%s/check_config.XXXXXX", dir && *dir ? dir : "/tmp");
	fd = mkstemp(path);
	ck_assert_msg(fd >= 0, "mkstemp %s failed", path);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

/* config_load of text in a fresh temp file, removed again before returning. */
static int load_text(struct config *cfg, const char *text, char *path, char *err, size_t errlen)
{
	int rc;

	write_temp_config(path, text);
	rc = config_load(cfg, path, 1, err, errlen);
	unlink(path);
	return rc;
}

/* Expects config_set(key, value) to fail with a message naming key. */
static void assert_rejected(const char *key, const char *value)
{
	struct config cfg;
	char err[256] = "";

	config_defaults(&cfg);
	ck_assert_msg(config_set(&cfg, key, value, err, sizeof(err)) == -1,
		      "%s = \"%s\" was accepted", key, value);
	ck_assert_msg(strstr(err, key) != NULL, "message \"%s\" does not name %s", err, key);
	config_free(&cfg);
}

START_TEST(test_defaults_match_the_key_table)
{
	struct config cfg;

	config_defaults(&cfg);
	ck_assert_str_eq(cfg.database, "dbname=mjs");
	ck_assert_str_eq(cfg.log_level, "info");
	ck_assert_str_eq(cfg.listen, "/run/mjs/api.sock");
	ck_assert_int_eq(cfg.socket_mode, 0660);
	ck_assert_int_eq(cfg.listen_backlog, 1024);
	ck_assert_int_eq(cfg.threads, 16);
	ck_assert_int_eq(cfg.db_pool_size, 8);
	ck_assert_uint_eq(cfg.max_body_size, 1024 * 1024);
	ck_assert_int_eq(cfg.keepalive_interval_ms, 15000);
	ck_assert_int_eq(cfg.sse_retry_ms, 2000);
	ck_assert_uint_eq(cfg.stream_queue_max, 256 * 1024);
	ck_assert_int_eq(cfg.stream_stall_timeout_ms, 30000);
	ck_assert_int_eq(cfg.max_streams, 20000);
	ck_assert_int_eq(cfg.replay_batch, 500);
	ck_assert_int_eq(cfg.session_ttl_s, 30 * 86400);
	ck_assert_int_eq(cfg.cookie_secure, CONFIG_AUTO);
	ck_assert_int_eq(cfg.max_streams_per_user, 32);
	ck_assert_int_eq(cfg.max_replies_per_user, 10);
	ck_assert_int_eq(cfg.max_tasks_per_user, 10);
	ck_assert_int_eq(cfg.delta_retention_ms, 600000);
	ck_assert_int_eq(cfg.event_retention_s, 1800);
	ck_assert_int_eq(cfg.event_keep, 100);
	ck_assert_int_eq(cfg.allow_registration, 1);
	ck_assert_int_eq(cfg.login_failures_free, 5);
	ck_assert_int_eq(cfg.login_block_max_ms, 900000);
	ck_assert_str_eq(cfg.public_origin, "");
	ck_assert_str_eq(cfg.chat_url, "");
	ck_assert_str_eq(cfg.chat_api_key, "");
	ck_assert_str_eq(cfg.chat_model, "");
	ck_assert_str_eq(cfg.image_url, "");
	ck_assert_str_eq(cfg.image_secret, "");
	ck_assert_str_eq(cfg.video_url, "");
	ck_assert_str_eq(cfg.video_api_key, "");
	ck_assert_int_eq(cfg.flush_interval_ms, 30);
	ck_assert_int_eq(cfg.flush_min_interval_ms, 5);
	ck_assert_uint_eq(cfg.flush_max_bytes, 16 * 1024);
	ck_assert_int_eq(cfg.max_generations, 500);
	ck_assert_int_eq(cfg.lease_time_ms, 30000);
	ck_assert_int_eq(cfg.connect_timeout_ms, 10000);
	ck_assert_int_eq(cfg.first_token_timeout_ms, 60000);
	ck_assert_int_eq(cfg.idle_timeout_ms, 60000);
	ck_assert_int_eq(cfg.shutdown_grace_ms, 10000);
	ck_assert_int_eq(cfg.max_attempts, 3);
	ck_assert_int_eq(cfg.context_messages, 50);
	ck_assert_uint_eq(cfg.context_max_bytes, 512 * 1024);
	ck_assert_int_eq(cfg.reply_max_chars, 200000);
	ck_assert_int_eq(cfg.reply_max_duration_ms, 600000);
	ck_assert_int_eq(cfg.reply_max_tokens, 0);
	ck_assert_str_eq(cfg.worker_name, "");
	config_free(&cfg);
	ck_assert_ptr_null(cfg.database);
	ck_assert_ptr_null(cfg.worker_name);
}
END_TEST

START_TEST(test_set_string_copies_and_replaces_the_value)
{
	struct config cfg;
	char value[32] = "host=/tmp dbname=a";
	char err[256];

	config_defaults(&cfg);
	ck_assert_int_eq(config_set(&cfg, "database", value, err, sizeof(err)), 0);
	value[0] = 'X';		/* cfg holds its own copy */
	ck_assert_str_eq(cfg.database, "host=/tmp dbname=a");
	ck_assert_int_eq(config_set(&cfg, "database", "dbname=b", err, sizeof(err)), 0);
	ck_assert_str_eq(cfg.database, "dbname=b");
	ck_assert_int_eq(config_set(&cfg, "chat_url", "", err, sizeof(err)), 0);
	ck_assert_str_eq(cfg.chat_url, "");
	config_free(&cfg);
}
END_TEST

START_TEST(test_set_int_accepts_decimal_within_bounds)
{
	struct config cfg;
	char err[256];

	config_defaults(&cfg);
	ck_assert_int_eq(config_set(&cfg, "threads", "1", err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.threads, 1);
	ck_assert_int_eq(config_set(&cfg, "threads", "1024", err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.threads, 1024);
	ck_assert_int_eq(config_set(&cfg, "max_streams", "1000000", err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.max_streams, 1000000);
	ck_assert_int_eq(config_set(&cfg, "replay_batch", "010", err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.replay_batch, 10);	/* decimal, not octal */
	config_free(&cfg);
}
END_TEST

START_TEST(test_set_int_rejects_out_of_range_and_malformed_naming_the_key)
{
	struct config cfg;
	char err[256];

	config_defaults(&cfg);
	ck_assert_int_eq(config_set(&cfg, "threads", "0", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "threads: 0 is out of range");
	ck_assert_int_eq(config_set(&cfg, "threads", "abc", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "threads: expected an integer, got \"abc\"");
	ck_assert_int_eq(cfg.threads, 16);	/* a rejected value changes nothing */
	config_free(&cfg);

	assert_rejected("threads", "1025");
	assert_rejected("threads", "-1");
	assert_rejected("threads", "");
	assert_rejected("threads", "12x");
	assert_rejected("threads", "1.5");
	assert_rejected("threads", "0x10");
	assert_rejected("threads", "99999999999999999999");
	assert_rejected("listen_backlog", "65536");
	assert_rejected("max_attempts", "101");
}
END_TEST

START_TEST(test_set_bool_accepts_the_usual_words)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	struct config cfg;
	char err[256];

	config_defaults(&cfg);
	for (size_t i = 0; i < 4; i++) {
		cfg.cookie_secure = 0;
		ck_assert_int_eq(config_set(&cfg, "cookie_secure", yes[i], err, sizeof(err)), 0);
		ck_assert_msg(cfg.cookie_secure == 1, "%s is not true", yes[i]);
		ck_assert_int_eq(config_set(&cfg, "cookie_secure", no[i], err, sizeof(err)), 0);
		ck_assert_msg(cfg.cookie_secure == 0, "%s is not false", no[i]);
	}
	ck_assert_int_eq(config_set(&cfg, "cookie_secure", "auto", err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.cookie_secure, CONFIG_AUTO);
	config_free(&cfg);
	assert_rejected("cookie_secure", "maybe");
	assert_rejected("allow_registration", "auto");
	assert_rejected("allow_registration", "");
	assert_rejected("allow_registration", "2");
}
END_TEST

START_TEST(test_parse_duration_knows_every_unit_and_bare_seconds)
{
	int ms = -1;

	ck_assert_int_eq(config_parse_duration_ms("250ms", &ms), 0);
	ck_assert_int_eq(ms, 250);
	ck_assert_int_eq(config_parse_duration_ms("15s", &ms), 0);
	ck_assert_int_eq(ms, 15000);
	ck_assert_int_eq(config_parse_duration_ms("15", &ms), 0);
	ck_assert_int_eq(ms, 15000);
	ck_assert_int_eq(config_parse_duration_ms("2m", &ms), 0);
	ck_assert_int_eq(ms, 120000);
	ck_assert_int_eq(config_parse_duration_ms("3h", &ms), 0);
	ck_assert_int_eq(ms, 3 * 3600000);
	ck_assert_int_eq(config_parse_duration_ms("1d", &ms), 0);
	ck_assert_int_eq(ms, 86400000);
	ck_assert_int_eq(config_parse_duration_ms("0ms", &ms), 0);
	ck_assert_int_eq(ms, 0);
}
END_TEST

START_TEST(test_parse_duration_rejects_malformed_and_overflow)
{
	static const char *const bad[] = {
		"", "s", "ms", "-5s", "+5s", " 5s", "5 s", "1.5s", "5sec", "5w", "5S", "5sx",
		"99999999999999999999", "9223372036854775807d",
		"25d",	/* 2 160 000 000 ms does not fit an int */
	};
	int ms = 42;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(config_parse_duration_ms(bad[i], &ms) == -1, "\"%s\" was accepted", bad[i]);
	ck_assert_int_eq(ms, 42);
}
END_TEST

START_TEST(test_set_duration_stores_ms_or_seconds_within_bounds)
{
	struct config cfg;
	char err[256];

	config_defaults(&cfg);
	ck_assert_int_eq(config_set(&cfg, "keepalive_interval", "1m", err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.keepalive_interval_ms, 60000);
	ck_assert_int_eq(config_set(&cfg, "flush_interval", "5ms", err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.flush_interval_ms, 5);
	ck_assert_int_eq(config_set(&cfg, "flush_min_interval", "0", err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.flush_min_interval_ms, 0);
	ck_assert_int_eq(config_set(&cfg, "shutdown_grace", "0", err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.shutdown_grace_ms, 0);
	ck_assert_int_eq(config_set(&cfg, "lease_time", "1h", err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.lease_time_ms, 3600000);
	/* session_ttl is kept in seconds */
	ck_assert_int_eq(config_set(&cfg, "session_ttl", "7d", err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.session_ttl_s, 7 * 86400);
	ck_assert_int_eq(config_set(&cfg, "session_ttl", "3600", err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.session_ttl_s, 3600);
	ck_assert_int_eq(config_set(&cfg, "session_ttl", "3650d", err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.session_ttl_s, 3650 * 86400);

	ck_assert_int_eq(config_set(&cfg, "keepalive_interval", "500ms", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "keepalive_interval: 500ms is out of range");
	ck_assert_int_eq(config_set(&cfg, "keepalive_interval", "15 s", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "keepalive_interval: expected a duration like 15s or 30ms, got \"15 s\"");
	ck_assert_int_eq(cfg.keepalive_interval_ms, 60000);
	config_free(&cfg);

	assert_rejected("keepalive_interval", "2h");
	assert_rejected("flush_interval", "0");
	assert_rejected("flush_min_interval", "11s");
	assert_rejected("lease_time", "2999ms");
	assert_rejected("session_ttl", "59s");
	assert_rejected("session_ttl", "500ms");
	assert_rejected("session_ttl", "3651d");
	assert_rejected("sse_retry", "fast");
	assert_rejected("idle_timeout", "9223372036854775807d");
}
END_TEST

START_TEST(test_parse_size_knows_k_m_g_and_bare_bytes)
{
	static const char *const bad[] = {
		"", "k", "-1k", "+1k", "1.5M", "1 M", "1m", "1T", "1kB", "99999999999G",
	};
	size_t sz = 0;

	ck_assert_int_eq(config_parse_size("512", &sz), 0);
	ck_assert_uint_eq(sz, 512);
	ck_assert_int_eq(config_parse_size("16k", &sz), 0);
	ck_assert_uint_eq(sz, 16384);
	ck_assert_int_eq(config_parse_size("16K", &sz), 0);
	ck_assert_uint_eq(sz, 16384);
	ck_assert_int_eq(config_parse_size("3M", &sz), 0);
	ck_assert_uint_eq(sz, 3u << 20);
	ck_assert_int_eq(config_parse_size("2G", &sz), 0);
	ck_assert_uint_eq(sz, (size_t)2 << 30);
	sz = 7;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(config_parse_size(bad[i], &sz) == -1, "\"%s\" was accepted", bad[i]);
	ck_assert_uint_eq(sz, 7);
}
END_TEST

START_TEST(test_set_size_stores_bytes_within_bounds)
{
	struct config cfg;
	char err[256];

	config_defaults(&cfg);
	ck_assert_int_eq(config_set(&cfg, "max_body_size", "64M", err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg.max_body_size, 64u << 20);
	ck_assert_int_eq(config_set(&cfg, "max_body_size", "1k", err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg.max_body_size, 1024);
	ck_assert_int_eq(config_set(&cfg, "stream_queue_max", "1048576", err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg.stream_queue_max, 1u << 20);
	ck_assert_int_eq(config_set(&cfg, "max_body_size", "65M", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "max_body_size: 65M is out of range");
	ck_assert_int_eq(config_set(&cfg, "max_body_size", "lots", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "max_body_size: expected a size like 1M or 256k, got \"lots\"");
	ck_assert_uint_eq(cfg.max_body_size, 1024);
	config_free(&cfg);

	assert_rejected("max_body_size", "1023");
	assert_rejected("max_body_size", "1G");
	assert_rejected("stream_queue_max", "16383");
	assert_rejected("flush_max_bytes", "2M");
}
END_TEST

START_TEST(test_set_mode_reads_octal)
{
	struct config cfg;
	char err[256];

	config_defaults(&cfg);
	ck_assert_int_eq(config_set(&cfg, "socket_mode", "0600", err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.socket_mode, 0600);
	ck_assert_int_eq(config_set(&cfg, "socket_mode", "0777", err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.socket_mode, 0777);
	ck_assert_int_eq(config_set(&cfg, "socket_mode", "0", err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.socket_mode, 0);
	ck_assert_int_eq(config_set(&cfg, "socket_mode", "0680", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "socket_mode: expected an octal mode, got \"0680\"");
	ck_assert_int_eq(cfg.socket_mode, 0);
	config_free(&cfg);

	assert_rejected("socket_mode", "01000");
	assert_rejected("socket_mode", "-1");
	assert_rejected("socket_mode", "rw-rw----");
	assert_rejected("socket_mode", "");
}
END_TEST

START_TEST(test_set_unknown_key_is_rejected)
{
	struct config cfg;
	char err[256];

	config_defaults(&cfg);
	ck_assert_int_eq(config_set(&cfg, "no_such_key", "1", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "unknown key \"no_such_key\"");
	ck_assert_int_eq(config_set(&cfg, "Threads", "4", err, sizeof(err)), -1);	/* case matters */
	ck_assert_int_eq(config_set(&cfg, "", "4", err, sizeof(err)), -1);
	ck_assert_int_eq(cfg.threads, 16);
	config_free(&cfg);
}
END_TEST

START_TEST(test_load_reads_comments_blank_lines_and_quoted_values)
{
	static const char text[] =
		"# mjs.conf for a test\n"
		"\n"
		"   \n"
		"database = \"host=/tmp dbname=t\"\n"
		"log_level='debug'\n"
		"threads=4\n"
		"  chat_url   =   http://127.0.0.1:9/v1   \n"
		"\t# an indented comment\n"
		"cookie_secure = yes\n"
		"public_origin = \"\"\n"
		"chat_model = \"half quoted\n"
		"image_secret = a=b\n"
		"session_ttl = 1d\n"
		"max_body_size = 2M";	/* last line without a newline */
	struct config cfg;
	char path[PATH_MAX], err[512] = "";

	config_defaults(&cfg);
	ck_assert_msg(load_text(&cfg, text, path, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(cfg.database, "host=/tmp dbname=t");
	ck_assert_str_eq(cfg.log_level, "debug");
	ck_assert_int_eq(cfg.threads, 4);
	ck_assert_str_eq(cfg.chat_url, "http://127.0.0.1:9/v1");
	ck_assert_int_eq(cfg.cookie_secure, 1);
	ck_assert_str_eq(cfg.public_origin, "");
	ck_assert_str_eq(cfg.chat_model, "\"half quoted");
	ck_assert_str_eq(cfg.image_secret, "a=b");
	ck_assert_int_eq(cfg.session_ttl_s, 86400);
	ck_assert_uint_eq(cfg.max_body_size, 2u << 20);
	ck_assert_int_eq(cfg.db_pool_size, 8);	/* untouched keys keep their defaults */
	config_free(&cfg);
}
END_TEST

START_TEST(test_load_later_lines_override_earlier_ones)
{
	struct config cfg;
	char path[PATH_MAX], err[512] = "";

	config_defaults(&cfg);
	ck_assert_msg(load_text(&cfg, "threads = 4\nworker_name = a\nthreads = 8\nworker_name = b\n",
				path, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(cfg.threads, 8);
	ck_assert_str_eq(cfg.worker_name, "b");
	config_free(&cfg);
}
END_TEST

START_TEST(test_load_error_names_path_and_line)
{
	struct config cfg;
	char path[PATH_MAX], err[512] = "", want[PATH_MAX + 128];

	config_defaults(&cfg);
	ck_assert_int_eq(load_text(&cfg, "# ok\nthreads = 4\n\nthreads = many\nthreads = 5\n", path, err,
				   sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:4: threads: expected an integer, got \"many\"", path);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(cfg.threads, 4);	/* stops at the bad line */

	ck_assert_int_eq(load_text(&cfg, "threads = 2\ntreads = 4\n", path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2: unknown key \"treads\"", path);
	ck_assert_str_eq(err, want);

	ck_assert_int_eq(load_text(&cfg, "\n\nthreads 4\n", path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:3: expected \"key = value\"", path);
	ck_assert_str_eq(err, want);

	ck_assert_int_eq(load_text(&cfg, "session_ttl = 10s\n", path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:1: session_ttl: 10s is out of range", path);
	ck_assert_str_eq(err, want);
	config_free(&cfg);
}
END_TEST

START_TEST(test_load_rejects_an_overlong_line)
{
	struct config cfg;
	char path[PATH_MAX], err[512] = "", want[PATH_MAX + 64];
	static const char head[] = "threads = 4\nworker_name = ";
	size_t n = 5000, hlen = sizeof(head) - 1;
	char *text = malloc(hlen + n + 2);

	ck_assert_ptr_nonnull(text);
	memcpy(text, head, hlen);
	memset(text + hlen, 'w', n);
	strcpy(text + hlen + n, "\n");
	config_defaults(&cfg);
	ck_assert_int_eq(load_text(&cfg, text, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2: line too long", path);
	ck_assert_str_eq(err, want);
	free(text);
	config_free(&cfg);
}
END_TEST

START_TEST(test_load_missing_file_is_fine_unless_required)
{
	const char *tmp = getenv("TMPDIR");
	char dir[PATH_MAX], path[PATH_MAX + 32], err[PATH_MAX + 128] = "";
	struct config cfg;
	int rc_optional, rc_required;

	snprintf(dir, sizeof(dir), "%s/check_config.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/absent.conf", dir);
	config_defaults(&cfg);
	rc_optional = config_load(&cfg, path, 0, err, sizeof(err));
	rc_required = config_load(&cfg, path, 1, err, sizeof(err));
	rmdir(dir);
	ck_assert_int_eq(rc_optional, 0);
	ck_assert_int_eq(cfg.threads, 16);
	ck_assert_int_eq(rc_required, -1);
	ck_assert_msg(strncmp(err, path, strlen(path)) == 0, "\"%s\" does not start with the path", err);
	ck_assert_ptr_nonnull(strstr(err, "No such file"));
	config_free(&cfg);
}
END_TEST

START_TEST(test_named_upstreams_and_the_model_each_serves)
{
	struct config cfg;
	char path[64], err[256] = "", key[64];
	const struct config_upstream *u;

	config_defaults(&cfg);
	ck_assert_int_eq(load_text(&cfg,
		"upstream.openai.url = https://api.openai.com/v1\n"
		"upstream.openai.key = sk-1\n"
		"upstream.openai.models = gpt-4o, gpt-4o-mini o*\n"
		"upstream.claude.protocol = anthropic\n"
		"upstream.claude.url = https://api.anthropic.com\n"
		"upstream.claude.key_file = /nonexistent/claude.key\n"
		"upstream.claude.models = claude-sonnet-4-5 gpt-4o\n"
		"chat_url = http://127.0.0.1:9/v1\n", path, err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.nupstreams, 3);
	ck_assert_str_eq(cfg.upstreams[0].name, "openai");
	ck_assert_int_eq(cfg.upstreams[0].protocol, PROTO_OPENAI_CHAT);	/* the default protocol */
	ck_assert_int_eq(cfg.upstreams[0].nmodels, 3);
	ck_assert_int_eq(cfg.upstreams[1].protocol, PROTO_ANTHROPIC);
	ck_assert_int_eq(cfg.upstreams[2].legacy, 1);
	ck_assert_str_eq(cfg.upstreams[2].name, "default");
	/* an exact name first, in file order; then patterns; then chat_url's, which takes anything */
	ck_assert_str_eq(config_model_upstream(&cfg, "gpt-4o")->name, "openai");
	ck_assert_str_eq(config_model_upstream(&cfg, "claude-sonnet-4-5")->name, "claude");
	ck_assert_str_eq(config_model_upstream(&cfg, "o3")->name, "openai");
	ck_assert_str_eq(config_model_upstream(&cfg, "anything")->name, "default");
	u = config_model_upstream(&cfg, "gpt-4o-mini");
	ck_assert_int_eq(config_upstream_key(u, key, sizeof(key), err, sizeof(err)), 0);
	ck_assert_str_eq(key, "sk-1");
	ck_assert_int_eq(config_upstream_key(&cfg.upstreams[1], key, sizeof(key), err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "upstream.claude.key_file"));
	config_free(&cfg);

	/* without chat_url, a model no upstream lists is not served */
	config_defaults(&cfg);
	ck_assert_int_eq(load_text(&cfg, "upstream.g.protocol = gemini\nupstream.g.url = https://x.example\n"
					 "upstream.g.models = gemini-2.5-flash\n", path, err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.nupstreams, 1);
	ck_assert_ptr_null(config_model_upstream(&cfg, "gpt-4o"));
	ck_assert_ptr_null(config_model_upstream(&cfg, "default"));
	config_free(&cfg);
}
END_TEST

START_TEST(test_bad_upstreams_are_errors_that_say_which)
{
	static const struct {
		const char *text, *says;
	} cases[] = {
		{ "upstream.x.url = https://a\n", "upstream.x.models" },
		{ "upstream.x.models = m\n", "upstream.x.url" },
		{ "upstream.x.models = m\nupstream.x.url = ftp://a\n", "upstream.x.url" },
		{ "upstream.x.protocol = openai\n", "upstream.x.protocol" },
		{ "upstream.X.url = https://a\n", "upstream.X.url" },
		{ "upstream.x.colour = red\n", "upstream.x.colour" },
		{ "upstream.x = 1\n", "upstream.x" },
		{ "upstream.x.models = a*b\n", "upstream.x.models" },
		{ "upstream.x.reasoning = maybe\n", "upstream.x.reasoning" },
		{ "upstream.x.url = https://a\nupstream.x.models = m\nupstream.x.key = k\nupstream.x.key_file = /k\n",
		  "key and key_file" },
		{ "upstream.default.url = https://a\nupstream.default.models = m\n", "upstream.default" },
	};
	char path[64], err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		config_defaults(&cfg);
		err[0] = '\0';
		ck_assert_msg(load_text(&cfg, cases[i].text, path, err, sizeof(err)) == -1, "accepted: %s", cases[i].text);
		ck_assert_msg(strstr(err, cases[i].says) != NULL, "%s: \"%s\" does not say %s", cases[i].text, err,
			      cases[i].says);
		config_free(&cfg);
	}
}
END_TEST

Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *set = tcase_create("set");
	TCase *load = tcase_create("load");

	tcase_add_test(set, test_defaults_match_the_key_table);
	tcase_add_test(set, test_set_string_copies_and_replaces_the_value);
	tcase_add_test(set, test_set_int_accepts_decimal_within_bounds);
	tcase_add_test(set, test_set_int_rejects_out_of_range_and_malformed_naming_the_key);
	tcase_add_test(set, test_set_bool_accepts_the_usual_words);
	tcase_add_test(set, test_parse_duration_knows_every_unit_and_bare_seconds);
	tcase_add_test(set, test_parse_duration_rejects_malformed_and_overflow);
	tcase_add_test(set, test_set_duration_stores_ms_or_seconds_within_bounds);
	tcase_add_test(set, test_parse_size_knows_k_m_g_and_bare_bytes);
	tcase_add_test(set, test_set_size_stores_bytes_within_bounds);
	tcase_add_test(set, test_set_mode_reads_octal);
	tcase_add_test(set, test_set_unknown_key_is_rejected);
	suite_add_tcase(s, set);

	tcase_add_test(load, test_load_reads_comments_blank_lines_and_quoted_values);
	tcase_add_test(load, test_load_later_lines_override_earlier_ones);
	tcase_add_test(load, test_load_error_names_path_and_line);
	tcase_add_test(load, test_load_rejects_an_overlong_line);
	tcase_add_test(load, test_load_missing_file_is_fine_unless_required);
	tcase_add_test(load, test_named_upstreams_and_the_model_each_serves);
	tcase_add_test(load, test_bad_upstreams_are_errors_that_say_which);
	suite_add_tcase(s, load);
	return s;
}
