/*
 * mjs-api: the FastCGI responder. A pool of REST threads accepts requests from
 * the listening socket (libfcgi, FCGX_Accept_r); GET /api/events requests are
 * handed to the hub thread after authentication, so open streams never hold a
 * REST thread. SIGTERM/SIGINT: stop accepting, finish requests in flight, end
 * the open streams (browsers reconnect elsewhere), exit 0. SIGHUP: re-read the
 * config file and apply log_level (the one key that can change in a running
 * process; the others need a restart). Every HEARTBEAT_S the main thread
 * upserts this process's row in mjs.responders with its open stream count, for
 * mjsctl stats and the mjs.open_streams view; the row is deleted on exit.
 *
 * Descriptors: stream fds live at 1024 and above (hub.h), so max_streams is
 * clamped at start to what RLIMIT_NOFILE leaves above 1024. A failed accept
 * (out of descriptors or memory) backs off and retries: a REST thread ends
 * only when the process stops.
 */
#include "config.h"
#include "api/call.h"
#include "api/handlers.h"
#include "api/hub.h"
#include "common/config.h"
#include "common/db.h"
#include "common/log.h"
#include "common/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcgiapp.h>
#include <stdatomic.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HEARTBEAT_S 5
#define ACCEPT_RETRY_MS 10	/* after a failed accept, doubling */
#define ACCEPT_RETRY_MAX_MS 1000

static atomic_int stopping;		/* set before the listener is shut down */
static atomic_llong accept_logged_ms;	/* last "accept failed" line, one per second for all threads */

struct worker_arg {
	struct app *app;
	int listen_fd;
};

static void *rest_thread(void *arg)
{
	struct worker_arg *wa = arg;
	FCGX_Request fr;

	if (FCGX_InitRequest(&fr, wa->listen_fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		log_error("FCGX_InitRequest failed");
		return NULL;
	}
	for (int retry_ms = 0;;) {
		int rc = FCGX_Accept_r(&fr);
		if (rc == 0) {
			retry_ms = 0;
			call_serve(wa->app, &fr);
			FCGX_Finish_r(&fr);
			continue;
		}
		if (atomic_load(&stopping))
			break;
		/* EMFILE, ENFILE, ENOMEM, ENOBUFS...: wait for descriptors or memory to come back */
		retry_ms = retry_ms ? (retry_ms * 2 > ACCEPT_RETRY_MAX_MS ? ACCEPT_RETRY_MAX_MS : retry_ms * 2)
				    : ACCEPT_RETRY_MS;
		{
			long long now = (long long)util_now_ms(), last = atomic_load(&accept_logged_ms);
			if (now - last >= 1000 && atomic_compare_exchange_strong(&accept_logged_ms, &last, now))
				log_warn("accept failed: %s; retrying in %d ms", strerror(rc < -1 ? -rc : errno),
					 retry_ms);
		}
		usleep((useconds_t)retry_ms * 1000);
	}
	FCGX_Free(&fr, 1);
	return NULL;
}

/*
 * Raises the soft limit of open files to the hard one and clamps max_streams
 * to the descriptors it leaves for streams (those at HUB_STREAM_FD_FLOOR and up).
 */
static void fit_fd_limit(struct config *cfg)
{
	struct rlimit rl;
	long long room;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY)
		return;
	room = (long long)rl.rlim_cur - HUB_STREAM_FD_FLOOR;
	if (room < cfg->max_streams) {
		log_warn("max_streams clamped to %lld: RLIMIT_NOFILE is %llu and stream descriptors start at %d "
			 "(raise LimitNOFILE to allow %d)", room < 0 ? 0 : room, (unsigned long long)rl.rlim_cur,
			 HUB_STREAM_FD_FLOOR, cfg->max_streams);
		cfg->max_streams = room < 0 ? 0 : (int)room;
	}
}

struct heartbeat {
	char name[128];
	char host[64];
	char pid[16];
};

static const char SQL_HEARTBEAT[] =
	"INSERT INTO mjs.responders (name, host, pid, listen, streams, capped_users) "
	"VALUES ($1, $2, $3, $4, $5, $6) "
	"ON CONFLICT (name) DO UPDATE SET listen = EXCLUDED.listen, streams = EXCLUDED.streams, "
	"capped_users = EXCLUDED.capped_users, heartbeat_at = now()";
#define HEARTBEAT_CAPPED_MAX 100	/* users at max_streams_per_user listed per heartbeat */
static const char SQL_HEARTBEAT_GONE[] = "DELETE FROM mjs.responders WHERE name = $1";
/* rows of responders that died long ago; a live one rewrites its row every HEARTBEAT_S */
static const char SQL_HEARTBEAT_SWEEP[] =
	"DELETE FROM mjs.responders WHERE heartbeat_at < now() - interval '1 hour'";

static void heartbeat_init(struct heartbeat *hb)
{
	if (gethostname(hb->host, sizeof(hb->host)) < 0)
		snprintf(hb->host, sizeof(hb->host), "localhost");
	hb->host[sizeof(hb->host) - 1] = '\0';
	snprintf(hb->pid, sizeof(hb->pid), "%d", (int)getpid());
	snprintf(hb->name, sizeof(hb->name), "%s:%s", hb->host, hb->pid);
}

/* One heartbeat (or, with gone, the row's removal). Failures are logged by db_exec. */
static void heartbeat_write(struct app *app, const struct heartbeat *hb, int gone, int sweep)
{
	char streams[16], capped[HEARTBEAT_CAPPED_MAX * 37 + 3];
	const char *params[6] = { hb->name, hb->host, hb->pid, app->cfg->listen, streams, capped };
	PGconn *db = db_pool_get(app->pool, 1000);

	if (!db)
		return;
	snprintf(streams, sizeof(streams), "%d", hub_stream_count(app->hub));
	hub_capped_users(app->hub, capped, sizeof(capped), HEARTBEAT_CAPPED_MAX);
	if (sweep)
		db_command(db, SQL_HEARTBEAT_SWEEP, 0, NULL);
	if (gone)
		db_command(db, SQL_HEARTBEAT_GONE, 1, params);
	else
		db_command(db, SQL_HEARTBEAT, 6, params);
	db_pool_put(app->pool, db);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: mjs-api [-c CONFIG] [-l LISTEN] [-t THREADS] [-V]\n"
		   "  -c FILE   configuration file (default " CONFIG_DEFAULT_PATH ", or $MJS_CONFIG)\n"
		   "  -l ADDR   listen on a unix socket path or host:port (overrides 'listen')\n"
		   "  -t N      REST threads (overrides 'threads')\n"
		   "  -V        print the version and exit\n");
}

static int open_listener(const struct config *cfg)
{
	const char *addr = cfg->listen;
	int fd;

	if (strchr(addr, '/')) {
		struct stat st;
		if (lstat(addr, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(addr);	/* a stale socket from a previous run */
	}
	fd = FCGX_OpenSocket(addr, cfg->listen_backlog);
	if (fd < 0) {
		log_error("cannot listen on %s: %s", addr, strerror(errno));
		return -1;
	}
	if (strchr(addr, '/') && chmod(addr, (mode_t)cfg->socket_mode) < 0)
		log_warn("chmod %s failed: %s", addr, strerror(errno));
	return fd;
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct app app = { 0 };
	const char *path = getenv("MJS_CONFIG");
	const char *listen_arg = NULL;
	int threads_arg = 0, must_exist = path != NULL, opt, listen_fd, sig, rc = 1;
	char err[512];
	pthread_t *threads = NULL;
	struct worker_arg wa;
	struct heartbeat hb;
	sigset_t sigs;

	curl_global_init(CURL_GLOBAL_DEFAULT);	/* before any thread: GET /api/tasks/{id}/content */
	config_defaults(&cfg);
	while ((opt = getopt(argc, argv, "c:l:t:Vh")) != -1) {
		switch (opt) {
		case 'c': path = optarg; must_exist = 1; break;
		case 'l': listen_arg = optarg; break;
		case 't': threads_arg = atoi(optarg); break;
		case 'V': printf("mjs-api %s\n", PACKAGE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (config_load(&cfg, path ? path : CONFIG_DEFAULT_PATH, must_exist, err, sizeof(err)) < 0) {
		fprintf(stderr, "mjs-api: %s\n", err);
		config_free(&cfg);
		return 2;
	}
	if (listen_arg && config_set(&cfg, "listen", listen_arg, err, sizeof(err)) < 0) {
		fprintf(stderr, "mjs-api: %s\n", err);
		config_free(&cfg);
		return 2;
	}
	if (threads_arg > 0)
		cfg.threads = threads_arg;
	if (log_set_level_name(cfg.log_level) < 0) {
		fprintf(stderr, "mjs-api: log_level must be debug, info, warn or error\n");
		config_free(&cfg);
		return 2;
	}
	fit_fd_limit(&cfg);
	signal(SIGPIPE, SIG_IGN);
	/* every thread inherits the blocked set; main takes the signals with sigwait */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	if (FCGX_Init() != 0) {
		log_error("FCGX_Init failed");
		goto out;
	}
	listen_fd = open_listener(&cfg);
	if (listen_fd < 0)
		goto out;
	app.cfg = &cfg;
	app.pool = db_pool_new(cfg.database, cfg.db_pool_size);
	app.hub = hub_start(&cfg);
	if (!app.pool || !app.hub)
		goto out;
	threads = calloc((size_t)cfg.threads, sizeof(pthread_t));
	if (!threads)
		goto out;
	wa.app = &app;
	wa.listen_fd = listen_fd;
	for (int i = 0; i < cfg.threads; i++) {
		if (pthread_create(&threads[i], NULL, rest_thread, &wa) != 0) {
			log_error("cannot start REST thread %d", i);
			goto out;
		}
	}
	log_info("mjs-api started listen=%s threads=%d db_pool_size=%d pid=%d", cfg.listen, cfg.threads,
		 cfg.db_pool_size, (int)getpid());
	heartbeat_init(&hb);
	heartbeat_write(&app, &hb, 0, 1);
	for (;;) {
		struct timespec beat = { HEARTBEAT_S, 0 };

		sig = sigtimedwait(&sigs, NULL, &beat);
		if (sig < 0) {
			if (errno == EAGAIN)
				heartbeat_write(&app, &hb, 0, 0);
			continue;
		}
		if (sig == SIGHUP) {
			config_reload_log_level(path ? path : CONFIG_DEFAULT_PATH, must_exist);
			continue;
		}
		break;
	}
	log_info("mjs-api stopping signal=%s streams=%d", sig == SIGTERM ? "TERM" : "INT",
		 hub_stream_count(app.hub));
	/* wakes every thread blocked in accept() */
	atomic_store(&stopping, 1);
	shutdown(listen_fd, SHUT_RDWR);
	for (int i = 0; i < cfg.threads; i++)
		pthread_join(threads[i], NULL);
	heartbeat_write(&app, &hb, 1, 0);
	rc = 0;
out:
	hub_stop(app.hub);
	db_pool_free(app.pool);
	if (strchr(cfg.listen, '/'))
		unlink(cfg.listen);
	free(threads);
	if (rc == 0)
		log_info("mjs-api stopped");
	config_free(&cfg);
	return rc;
}
