/*
 * mjs-worker: runs AI generations and image/video tasks independent of any
 * browser. This first version only proves its database connection and waits for
 * SIGTERM; generations arrive with the AI-replies issue.
 */
#include "config.h"
#include "common/config.h"
#include "common/db.h"
#include "common/log.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct config cfg;
	const char *path = getenv("MJS_CONFIG");
	int must_exist = path != NULL, opt, sig;
	char err[512];
	sigset_t sigs;
	PGconn *db;

	config_defaults(&cfg);
	while ((opt = getopt(argc, argv, "c:Vh")) != -1) {
		switch (opt) {
		case 'c': path = optarg; must_exist = 1; break;
		case 'V': printf("mjs-worker %s\n", PACKAGE_VERSION); config_free(&cfg); return 0;
		default:
			fprintf(opt == 'h' ? stdout : stderr, "usage: mjs-worker [-c CONFIG] [-V]\n");
			config_free(&cfg);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (config_load(&cfg, path ? path : CONFIG_DEFAULT_PATH, must_exist, err, sizeof(err)) < 0) {
		fprintf(stderr, "mjs-worker: %s\n", err);
		config_free(&cfg);
		return 2;
	}
	log_set_level_name(cfg.log_level);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	db = db_connect(cfg.database);
	log_info("mjs-worker started db=%s pid=%d", db ? "ok" : "unreachable", (int)getpid());
	sigwait(&sigs, &sig);
	log_info("mjs-worker stopped");
	PQfinish(db);
	config_free(&cfg);
	return 0;
}
