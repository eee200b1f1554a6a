/*
 * mjsctl: the admin command. Reads the same config as the daemons; one file per
 * command group (migrate, users, sessions, gens, tasks, events, stats, check),
 * this one parses the command line and dispatches through the one table of
 * commands.
 *
 * Exit codes: 0 ok, 1 the operation failed (a query, a conflict, no such
 * object, a failed check), 2 bad usage or config, 3 the database is unreachable.
 */
#include "ctl/ctl.h"
#include "common/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct command {
	const char *group, *sub;	/* sub NULL: the group is the whole command */
	int min_args, max_args;
	unsigned opts;			/* enum ctl_opt bits it accepts */
	int (*run)(struct ctl *c);
	const char *args_help;
};

static const struct command commands[] = {
	{ "setup", NULL, 0, 0, OPT_DATABASE | OPT_ADMIN, ctl_setup, "[--database CONNINFO] [--admin CONNINFO]" },
	{ "migrate", NULL, 0, 0, OPT_STATUS, ctl_migrate, "[--status]" },
	{ "user", "add", 1, 1, OPT_PASSWORD_STDIN, ctl_user_add, "NAME [--password-stdin]" },
	{ "user", "list", 0, 0, 0, ctl_user_list, "" },
	{ "user", "disable", 1, 1, 0, ctl_user_disable, "NAME" },
	{ "user", "enable", 1, 1, 0, ctl_user_enable, "NAME" },
	{ "user", "passwd", 1, 1, OPT_PASSWORD_STDIN, ctl_user_passwd, "NAME [--password-stdin]" },
	{ "user", "delete", 1, 1, 0, ctl_user_delete, "NAME" },
	{ "session", "list", 0, 1, 0, ctl_session_list, "[USER]" },
	{ "session", "revoke", 0, 1, OPT_USER | OPT_ALL, ctl_session_revoke, "ID | --user USER | --all" },
	{ "gen", "list", 0, 0, OPT_ALL | OPT_LIMIT, ctl_gen_list, "[--all] [--limit N]" },
	{ "gen", "stop", 1, 1, 0, ctl_gen_stop, "ID" },
	{ "task", "list", 0, 0, OPT_ALL | OPT_USER | OPT_LIMIT, ctl_task_list, "[--all] [--user USER] [--limit N]" },
	{ "task", "retry", 1, 1, 0, ctl_task_retry, "ID" },
	{ "events", "prune", 0, 0, OPT_OLDER_THAN | OPT_KEEP, ctl_events_prune,
	  "--older-than DURATION [--keep N]" },
	{ "stats", NULL, 0, 0, 0, ctl_stats, "" },
	{ "limits", NULL, 0, 0, OPT_ALL, ctl_limits, "[--all]" },
	{ "check", NULL, 0, 0, 0, ctl_check, "" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* the options that may follow a command, with whether they take a value */
static const struct {
	const char *name;
	enum ctl_opt bit;
	int has_value;
} options[] = {
	{ "--status", OPT_STATUS, 0 },
	{ "--password-stdin", OPT_PASSWORD_STDIN, 0 },
	{ "--all", OPT_ALL, 0 },
	{ "--user", OPT_USER, 1 },
	{ "--older-than", OPT_OLDER_THAN, 1 },
	{ "--keep", OPT_KEEP, 1 },
	{ "--limit", OPT_LIMIT, 1 },
	{ "--database", OPT_DATABASE, 1 },
	{ "--admin", OPT_ADMIN, 1 },
};
#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: mjsctl [-c CONFIG] [--json] COMMAND [ARGS]\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++) {
		char words[64];
		snprintf(words, sizeof(words), "%s%s%s", commands[i].group, commands[i].sub ? " " : "",
			 commands[i].sub ? commands[i].sub : "");
		fprintf(f, "  %-15s %s\n", words, commands[i].args_help);
	}
	fprintf(f, "exit status: 0 ok, 1 failed, 2 usage, 3 database unreachable; see mjsctl(8)\n");
}

static int parse_count(const char *opt, const char *value, long long min, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(value, &end, 10);
	if (errno || end == value || *end || v < min || v > 1000000000LL) {
		ctl_err("bad %s \"%.64s\": expected a whole number of at least %lld", opt, value, min);
		return -1;
	}
	*out = v;
	return 0;
}

/* Takes the option at argv[*i] (and its value); returns 0 or -1 (said). */
static int take_option(struct ctl *c, int argc, char **argv, int *i)
{
	const char *arg = argv[*i], *eq = strchr(arg, '='), *value = NULL;
	size_t len = eq ? (size_t)(eq - arg) : strlen(arg);

	if (!strcmp(arg, "--json")) {
		c->json = 1;
		return 0;
	}
	for (size_t k = 0; k < NOPTIONS; k++) {
		if (strlen(options[k].name) != len || strncmp(options[k].name, arg, len))
			continue;
		if (options[k].has_value) {
			if (eq)
				value = eq + 1;
			else if (*i + 1 < argc)
				value = argv[++*i];
			else {
				ctl_err("option %s needs a value", options[k].name);
				return -1;
			}
		} else if (eq) {
			ctl_err("option %s takes no value", options[k].name);
			return -1;
		}
		c->opts |= options[k].bit;
		switch (options[k].bit) {
		case OPT_USER: c->user = value; break;
		case OPT_OLDER_THAN: c->older_than = value; break;
		case OPT_KEEP: return parse_count("--keep", value, 0, &c->keep);
		case OPT_LIMIT: return parse_count("--limit", value, 1, &c->limit);
		case OPT_DATABASE: c->database = value; break;
		case OPT_ADMIN: c->admin = value; break;
		default: break;
		}
		return 0;
	}
	ctl_err("unknown option \"%s\"", arg);
	return -1;
}

static const char *option_name(unsigned bit)
{
	for (size_t k = 0; k < NOPTIONS; k++)
		if (options[k].bit == bit)
			return options[k].name;
	return "?";
}

/* Finds the command named by words; says why on stderr when there is none. */
static const struct command *find_command(const char *group, const char *sub)
{
	int group_known = 0;

	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (strcmp(commands[i].group, group))
			continue;
		group_known = 1;
		if (!commands[i].sub || (sub && !strcmp(commands[i].sub, sub)))
			return &commands[i];
	}
	if (!group_known)
		ctl_err("unknown command \"%s\"", group);
	else if (sub)
		ctl_err("unknown command \"%s %s\"", group, sub);
	else
		ctl_err("\"%s\" needs a subcommand", group);
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct config cfg;
	struct ctl c = { 0 };
	const char *path = getenv("MJS_CONFIG");
	const struct command *cmd;
	const char **args = NULL;
	int must_exist = path != NULL, opt, rc = EXIT_USAGE, nwords;
	char err[512];

	config_defaults(&cfg);
	while ((opt = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': path = optarg; must_exist = 1; break;
		case 'j': c.json = 1; break;
		case 'h': usage(stdout); config_free(&cfg); return EXIT_OK;
		default: usage(stderr); config_free(&cfg); return EXIT_USAGE;
		}
	}
	if (!path)
		path = CONFIG_DEFAULT_PATH;
	/* setup writes the file when it is missing */
	if (optind < argc && !strcmp(argv[optind], "setup"))
		must_exist = 0;
	if (config_load(&cfg, path, must_exist, err, sizeof(err)) < 0) {
		ctl_err("%s", err);
		config_free(&cfg);
		return EXIT_USAGE;
	}
	c.cfg = &cfg;
	c.config_target = path;
	c.config_path = (must_exist || access(path, F_OK) == 0) ? path : NULL;
	log_set_level(LOG_ERROR);
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		ctl_err("no command given");
		goto usage;
	}
	cmd = find_command(argv[0], argc > 1 && argv[1][0] != '-' ? argv[1] : NULL);
	if (!cmd)
		goto usage;
	nwords = cmd->sub ? 2 : 1;
	args = calloc((size_t)argc, sizeof(*args));
	if (!args) {
		ctl_err("out of memory");
		rc = EXIT_FAIL;
		goto out;
	}
	/* options may come anywhere after the command; every other word is an argument */
	for (int i = nwords; i < argc; i++) {
		if (argv[i][0] == '-' && argv[i][1] != '\0') {
			if (take_option(&c, argc, argv, &i) < 0)
				goto usage;
		} else {
			args[c.nargs++] = argv[i];
		}
	}
	for (unsigned bit = 1; bit <= OPT_ADMIN; bit <<= 1) {
		if ((c.opts & bit) && !(cmd->opts & bit)) {
			ctl_err("option %s does not apply to \"%s%s%s\"", option_name(bit), cmd->group,
				cmd->sub ? " " : "", cmd->sub ? cmd->sub : "");
			goto usage;
		}
	}
	if (c.nargs < cmd->min_args || c.nargs > cmd->max_args) {
		ctl_err("\"%s%s%s\" takes %s%s", cmd->group, cmd->sub ? " " : "", cmd->sub ? cmd->sub : "",
			cmd->args_help[0] ? "" : "no arguments", cmd->args_help);
		goto usage;
	}
	c.args = args;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmd->run(&c);
	curl_global_cleanup();
	goto out;
usage:
	usage(stderr);
	rc = EXIT_USAGE;
out:
	PQfinish(c.db);
	free(args);
	config_free(&cfg);
	return rc;
}
