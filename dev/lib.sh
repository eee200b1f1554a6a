# shellcheck shell=bash
# dev/lib.sh: the shell functions dev/up, dev/down, dev/check and the
# integration tests share. Sourcing it defines functions and starts nothing.
#
# A stack lives in one state directory, $MJS_STATE_DIR (default .run/ in the
# checkout, or /tmp/mjs-<hash of the checkout's path> when we are root and the
# postgres user cannot reach the checkout, a private home directory say):
#   pg/              the PostgreSQL cluster (owned by the postgres OS user when
#                    run as root; keeps its own pg/postmaster.pid)
#   sock/            PostgreSQL's socket and the FastCGI sockets api-N.sock
#   run/NAME.pid     the pid of each process started here; NAME is one of
#                    fake, worker, api-1, api-2, nginx
#   logs/NAME.log    its stdout and stderr (also postgres.log, migrate.log,
#                    nginx-access.log)
#   nginx/           nginx.conf generated around nginx/mjs.conf, temp dirs
#   mjs.conf         the configuration every program reads
#   env              the stack's coordinates for tests (mjs_write_env)
#
# Invariants:
# - Every process is started by mjs_spawn, in a session of its own (so a
#   terminal's Ctrl-C or a test runner's killpg reaches only whoever owns the
#   process), with its pid file, and appends to its log.
# - mjs_stop signals only a pid whose command line still names this stack, so a
#   stale pid file can never hit an unrelated process.
# - Every wait is mjs_wait_until: a condition polled against a deadline.
# - Functions return non-zero and say why on stderr; they never exit, so a
#   caller can always clean up.
#
# Tests restart processes with:
#   . dev/lib.sh; . "$MJS_STATE_DIR/env"; mjs_start_api 1   (or mjs_start_worker)
# and stop one gracefully with mjs_stop NAME; mjs_pid NAME prints a live pid.

MJS_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MJS_PG_BIN=${MJS_PG_BIN:-/usr/lib/postgresql/15/bin}
MJS_DEB_PACKAGES="build-essential autoconf automake libtool pkg-config libfcgi-dev libpq-dev
	libjson-c-dev libcurl4-openssl-dev check libcrypt-dev postgresql-15 nginx-light python3
	mandoc groff-base curl clang git debhelper dpkg-dev fakeroot lintian node-marked node-dompurify"
MJS_PROCS="fake worker api-1 api-2 nginx"
# What dev/cluster runs besides (a PostgreSQL failover cluster in network namespaces).
MJS_CLUSTER_PACKAGES="patroni etcd-server haproxy iproute2 util-linux"

mjs_say() { printf '%s\n' "$*"; }
mjs_warn() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }

mjs_is_root() { [ "$(id -u)" -eq 0 ]; }

# Microseconds on the wall clock; enough for deadlines of seconds.
mjs_now_us() { local t=${EPOCHREALTIME//[.,]/}; printf '%s' "$t"; }

# --- installing and building ----------------------------------------------

# mjs_apt_install PACKAGE...: apt-get install of those of the Debian packages
# that are not installed yet; does nothing (and never runs apt-get) when all are.
mjs_apt_install() {
	local p missing=() sudo=
	for p; do
		[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" = "ii " ] || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if ! mjs_is_root; then
		command -v sudo >/dev/null || { mjs_warn "missing packages (install them as root): ${missing[*]}"; return 1; }
		sudo=sudo
	fi
	mjs_say "installing ${missing[*]}"
	if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null ||
	   ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null; then
		mjs_warn "apt-get install failed: ${missing[*]}"
		return 1
	fi
}

# Installs the Debian packages the project needs.
# shellcheck disable=SC2086 # the list is split on purpose
mjs_install_deps() { mjs_apt_install $MJS_DEB_PACKAGES; }
# shellcheck disable=SC2086
mjs_install_cluster_deps() { mjs_apt_install $MJS_DEB_PACKAGES $MJS_CLUSTER_PACKAGES; }

# What the browser tests (tests/e2e) need: Debian's chromium, node and npm (from
# Debian unless a node is installed already, e.g. NodeSource's, which brings
# npm), and tests/e2e's npm packages exactly as its package-lock.json says (npm
# ci, skipped while node_modules is newer than the lock file). playwright-core
# never downloads a browser: it drives /usr/bin/chromium.
mjs_install_e2e_deps() {
	local dir=$MJS_REPO/tests/e2e pkgs=(chromium)
	command -v node >/dev/null || pkgs+=(nodejs)
	command -v npm >/dev/null || pkgs+=(npm)
	mjs_apt_install "${pkgs[@]}" || return 1
	if [ -f "$dir/node_modules/.package-lock.json" ] &&
	   [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
		return 0
	fi
	mjs_say "npm ci in tests/e2e"
	if ! (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
		mjs_warn "npm ci failed in $dir"
		return 1
	fi
}

# The configure arguments a build directory is for: build-asan* gets the sanitizers.
mjs_configure_args() {
	case ${1##*/} in
	*asan*) printf '%s\n' --enable-sanitizers ;;
	esac
}

# Regenerates the autotools files in the repository when they are missing or
# older than their sources.
mjs_autoreconf() {
	(
		cd "$MJS_REPO" || exit 1
		if [ -x configure ] && [ -f Makefile.in ] && [ configure -nt configure.ac ] &&
		   [ Makefile.in -nt Makefile.am ] && [ Makefile.in -nt configure.ac ]; then
			exit 0
		fi
		mkdir -p m4	# ACLOCAL_AMFLAGS names it; git does not keep empty directories
		mjs_say "autoreconf -fi"
		autoreconf -fi || { mjs_warn "autoreconf failed"; exit 1; }
		touch configure Makefile.in	# newer than their sources even when unchanged
	)
}

# mjs_build DIR [CONFIGURE_ARGS...]: an out-of-tree build in DIR. Configures
# when DIR has no Makefile or was configured with other arguments, then make -j2.
mjs_build() {
	local dir=$1 want have
	shift
	mjs_autoreconf || return 1
	mkdir -p "$dir" || return 1
	want="$*"
	if [ -f "$dir/Makefile" ] && [ -x "$dir/config.status" ]; then
		have=$(cd "$dir" && ./config.status --config 2>/dev/null | tr -d "'")
		[ "$have" = "$want" ] || rm -f "$dir/Makefile"
	fi
	if [ ! -f "$dir/Makefile" ]; then
		mjs_say "configuring ${dir#"$MJS_REPO"/}${want:+ ($want)}"
		if ! (cd "$dir" && "$MJS_REPO/configure" "$@") >"$dir/configure.out" 2>&1; then
			tail -n 30 "$dir/configure.out" >&2
			mjs_warn "configure failed in $dir (full output: $dir/configure.out)"
			return 1
		fi
	fi
	mjs_say "building ${dir#"$MJS_REPO"/}"
	make -s -C "$dir" -j2 --no-print-directory || { mjs_warn "make failed in $dir"; return 1; }
}

# --- the stack's coordinates ----------------------------------------------

# Can the postgres user reach directory $1 (every parent searchable)?
mjs_pg_can_reach() {
	! mjs_is_root || ! id postgres >/dev/null 2>&1 || runuser -u postgres -- test -x "$1" 2>/dev/null
}

# .run/ in the checkout; when PostgreSQL (run as postgres when we are root)
# could not reach it, a directory of this checkout's own under /tmp instead,
# the same on every call so that dev/down finds what dev/up started.
mjs_default_state_dir() {
	local sum
	if mjs_pg_can_reach "$MJS_REPO"; then
		printf '%s' "$MJS_REPO/.run"
		return
	fi
	sum=$(printf '%s' "$MJS_REPO" | sha256sum | cut -c1-12)
	printf '%s' "${TMPDIR:-/tmp}/mjs-$sum"
	printf 'dev: the postgres user cannot reach %s (a parent directory is private); the stack lives in %s\n' \
		"$MJS_REPO" "${TMPDIR:-/tmp}/mjs-$sum" >&2
}

# Sets and exports every MJS_* variable a stack needs from the environment and
# the defaults. Returns non-zero on a value that cannot work.
mjs_stack_config() {
	: "${MJS_PORT:=8080}"
	case $MJS_PORT in '' | *[!0-9]*) mjs_warn "MJS_PORT must be a port number"; return 1 ;; esac
	: "${MJS_FAKE_PORT:=$((MJS_PORT + 1))}"
	: "${MJS_PG_PORT:=5432}"
	: "${MJS_STATE_DIR:=$(mjs_default_state_dir)}"
	: "${MJS_BUILD_DIR:=$MJS_REPO/build}"
	case $MJS_BUILD_DIR in /*) ;; *) MJS_BUILD_DIR=$MJS_REPO/$MJS_BUILD_DIR ;; esac
	MJS_STATE_DIR=$(realpath -m -- "$MJS_STATE_DIR") || return 1
	MJS_BUILD_DIR=$(realpath -m -- "$MJS_BUILD_DIR") || return 1
	case $MJS_STATE_DIR$MJS_BUILD_DIR in
	*[[:space:]\'\"\;\\]*) mjs_warn "state and build paths must not contain spaces, quotes, ';' or '\\'"; return 1 ;;
	esac
	if [ ${#MJS_STATE_DIR} -gt 80 ]; then
		mjs_warn "MJS_STATE_DIR is too long for unix socket paths (keep it under 80 characters)"
		return 1
	fi
	MJS_CONF=$MJS_STATE_DIR/mjs.conf
	MJS_URL=http://127.0.0.1:$MJS_PORT
	MJS_DSN="host=$MJS_STATE_DIR/sock port=$MJS_PG_PORT dbname=mjs user=mjs"
	if [ -n "${MJS_CHAT_URL:-}" ] && [ -n "${MJS_IMAGE_URL:-}" ] && [ -n "${MJS_VIDEO_URL:-}" ]; then
		MJS_FAKE_URL=
	else
		MJS_FAKE_URL=http://127.0.0.1:$MJS_FAKE_PORT
	fi
	export MJS_PORT MJS_FAKE_PORT MJS_PG_PORT MJS_STATE_DIR MJS_BUILD_DIR MJS_CONF MJS_URL \
		MJS_DSN MJS_FAKE_URL
}

# mjs_free_ports N: prints N distinct TCP ports that are free on 127.0.0.1 now.
mjs_free_ports() {
	python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    socks.append(s)
print(' '.join(str(s.getsockname()[1]) for s in socks))
EOF
}

# True when something accepts TCP connections on 127.0.0.1:PORT.
mjs_port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- processes ----------------------------------------------------------------

mjs_pidfile() { printf '%s' "$MJS_STATE_DIR/run/$1.pid"; }
mjs_logfile() { printf '%s' "$MJS_STATE_DIR/logs/$1.log"; }

# True when PID is a live process (a zombie counts as gone).
mjs_pid_alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

# mjs_pid NAME: prints the pid of this stack's process NAME when it runs.
mjs_pid() {
	local pid cmd tag=$MJS_STATE_DIR
	[ "$1" = fake ] && tag=dev/fake_upstream
	pid=$(cat "$(mjs_pidfile "$1")" 2>/dev/null) || return 1
	case $pid in '' | *[!0-9]*) return 1 ;; esac
	mjs_pid_alive "$pid" || return 1
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	case $cmd in *"$tag"*) printf '%s\n' "$pid" ;; *) return 1 ;; esac
}

mjs_log_tail() {
	local log
	log=$(mjs_logfile "$1")
	[ -s "$log" ] || { mjs_warn "$log is empty"; return 0; }
	printf -- '---- last lines of %s ----\n' "$log" >&2
	tail -n "${2:-40}" "$log" >&2
	printf -- '----\n' >&2
}

# mjs_spawn NAME COMMAND...: starts COMMAND in a new session, stdin from
# /dev/null, output appended to logs/NAME.log, pid in run/NAME.pid. With
# MJS_NETNS set, inside that network namespace (ip netns exec, which execs: the
# pid is still COMMAND's); dev/cluster's hosts are such namespaces.
mjs_spawn() {
	local name=$1 pidfile log deadline ns=()
	shift
	[ -n "${MJS_NETNS:-}" ] && ns=(ip netns exec "$MJS_NETNS")
	pidfile=$(mjs_pidfile "$name")
	log=$(mjs_logfile "$name")
	rm -f "$pidfile"
	printf '== %s dev: starting %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >>"$log"
	# The sanitizer settings of the stack, for processes a test restarts.
	[ -z "${ASAN_OPTIONS:-}" ] && [ -n "${MJS_ASAN_OPTIONS:-}" ] && export ASAN_OPTIONS=$MJS_ASAN_OPTIONS
	[ -z "${UBSAN_OPTIONS:-}" ] && [ -n "${MJS_UBSAN_OPTIONS:-}" ] && export UBSAN_OPTIONS=$MJS_UBSAN_OPTIONS
	# shellcheck disable=SC2016 # $$ and $@ are the inner shell's
	setsid -f sh -c 'echo $$ >"$0.new" && mv "$0.new" "$0" && exec "$@"' "$pidfile" "${ns[@]}" "$@" \
		</dev/null >>"$log" 2>&1 3>&- 4>&- || { mjs_warn "cannot start $name"; return 1; }
	deadline=$(($(mjs_now_us) + 5000000))
	until [ -s "$pidfile" ]; do
		[ "$(mjs_now_us)" -lt "$deadline" ] || { mjs_warn "$name did not start"; return 1; }
		sleep 0.01
	done
}

# mjs_wait_until NAME SECONDS WHAT COMMAND...: runs COMMAND until it succeeds.
# Fails, showing NAME's log, when SECONDS pass or process NAME exits first
# (NAME may be empty: no process to watch).
mjs_wait_until() {
	local name=$1 secs=$2 what=$3 deadline
	shift 3
	deadline=$(($(mjs_now_us) + secs * 1000000))
	while ! "$@"; do
		if [ -n "$name" ] && ! mjs_pid "$name" >/dev/null; then
			mjs_warn "$name exited while waiting for $what"
			mjs_log_tail "$name"
			return 1
		fi
		if [ "$(mjs_now_us)" -ge "$deadline" ]; then
			mjs_warn "timed out after ${secs}s waiting for $what"
			[ -n "$name" ] && mjs_log_tail "$name"
			return 1
		fi
		sleep 0.05
	done
}

# mjs_stop NAME...: SIGTERM to each, waits for all of them (MJS_STOP_TIMEOUT
# seconds, default 30), then SIGKILL to what is left. Removes the pid files.
mjs_stop() {
	local name pid deadline left names=() pids=() i
	for name; do
		if pid=$(mjs_pid "$name"); then
			kill -TERM "$pid" 2>/dev/null
			names+=("$name")
			pids+=("$pid")
		fi
	done
	deadline=$(($(mjs_now_us) + ${MJS_STOP_TIMEOUT:-30} * 1000000))
	while :; do
		left=0
		for pid in "${pids[@]}"; do mjs_pid_alive "$pid" && left=1; done
		[ $left = 0 ] && break
		if [ "$(mjs_now_us)" -ge "$deadline" ]; then
			for i in "${!pids[@]}"; do
				if mjs_pid_alive "${pids[$i]}"; then
					mjs_warn "${names[$i]} (pid ${pids[$i]}) ignored SIGTERM; killing it"
					kill -KILL "${pids[$i]}" 2>/dev/null
				fi
			done
			deadline=$(($(mjs_now_us) + 5000000))
			while :; do
				left=0
				for pid in "${pids[@]}"; do mjs_pid_alive "$pid" && left=1; done
				[ $left = 0 ] || [ "$(mjs_now_us)" -ge "$deadline" ] && break
				sleep 0.05
			done
			break
		fi
		sleep 0.05
	done
	for name; do rm -f "$(mjs_pidfile "$name")"; done
}

# --- PostgreSQL -----------------------------------------------------------------

# Runs a command as the owner of the cluster: postgres when we are root.
mjs_as_pg() {
	if mjs_is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

mjs_psql() {
	"$MJS_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$MJS_STATE_DIR/sock" -p "$MJS_PG_PORT" -U mjs "$@"
}

mjs_pg_running() {
	[ -f "$MJS_STATE_DIR/pg/postmaster.pid" ] &&
		mjs_as_pg "$MJS_PG_BIN/pg_ctl" -D "$MJS_STATE_DIR/pg" status >/dev/null 2>&1
}

# The state directory's layout, with the owners PostgreSQL and nginx's
# workers need when we are root.
mjs_prepare_state() {
	local s=$MJS_STATE_DIR
	mkdir -p "$s/sock" "$s/run" "$s/logs" "$s/nginx/tmp" || return 1
	chmod 755 "$s" "$s/sock" || return 1
	touch "$s/logs/postgres.log" || return 1
	if mjs_is_root; then
		chown postgres: "$s/sock" "$s/logs/postgres.log" || return 1
		if ! runuser -u postgres -- test -w "$s/sock"; then
			mjs_warn "the postgres user cannot reach $s (a parent directory is not searchable);" \
				"unset MJS_STATE_DIR for a default that works, or make the parents searchable (chmod o+x)"
			return 1
		fi
	fi
}

# Creates the cluster on the first run: superuser mjs, trust on the unix socket only.
mjs_pg_init() {
	local data=$MJS_STATE_DIR/pg log
	[ -f "$data/PG_VERSION" ] && return 0
	log=$(mjs_logfile postgres)
	mjs_say "creating the PostgreSQL cluster in $data"
	mkdir -p "$data" && chmod 700 "$data" || return 1
	if mjs_is_root; then chown postgres: "$data" || return 1; fi
	if ! mjs_as_pg "$MJS_PG_BIN/initdb" -D "$data" -U mjs --auth-local=trust --auth-host=reject \
		-E UTF8 --locale=C >>"$log" 2>&1; then
		mjs_warn "initdb failed"
		mjs_log_tail postgres
		return 1
	fi
	printf "\ninclude_if_exists = 'mjs-dev.conf'\n" >>"$data/postgresql.conf"
}

# Starts the cluster (settings rewritten from the current coordinates) unless it runs.
mjs_pg_start() {
	local data=$MJS_STATE_DIR/pg
	mjs_pg_running && return 0
	cat >"$data/mjs-dev.conf" <<-EOF || return 1
	# Written by dev/lib.sh (mjs_pg_start) on every start.
	listen_addresses = ''
	unix_socket_directories = '$MJS_STATE_DIR/sock'
	port = $MJS_PG_PORT
	max_connections = 300
	shared_buffers = 256MB
	timezone = 'UTC'
	log_timezone = 'UTC'
	log_line_prefix = '%m [%p] %q%u@%d '
	log_min_duration_statement = 1000
	EOF
	if mjs_is_root; then chown postgres: "$data/mjs-dev.conf" || return 1; fi
	# 3>&- 4>&-: dev/up keeps the terminal on fds 3 and 4; a daemon holding them
	# would keep `dev/up --detach | …` from ever seeing the end of its output.
	if ! mjs_as_pg "$MJS_PG_BIN/pg_ctl" -D "$data" -l "$(mjs_logfile postgres)" -w -t 60 -s start \
		>/dev/null 3>&- 4>&-; then
		mjs_warn "PostgreSQL did not start"
		mjs_log_tail postgres
		return 1
	fi
}

mjs_pg_stop() {
	mjs_pg_running || return 0
	mjs_as_pg "$MJS_PG_BIN/pg_ctl" -D "$MJS_STATE_DIR/pg" -w -t 60 -s stop -m fast >/dev/null ||
		{ mjs_warn "PostgreSQL did not stop"; return 1; }
}

mjs_pg_createdb() {
	local have
	have=$(mjs_psql -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = 'mjs'") || return 1
	[ "$have" = 1 ] || "$MJS_PG_BIN/createdb" -h "$MJS_STATE_DIR/sock" -p "$MJS_PG_PORT" -U mjs mjs
}

# --- the mjs programs -------------------------------------------------------------

mjs_write_conf() {
	local fake=${MJS_FAKE_URL:-http://127.0.0.1:$MJS_FAKE_PORT}
	cat >"$MJS_CONF.new" <<-EOF || return 1
	# Written by dev/up for the stack in $MJS_STATE_DIR; rewritten on every start.
	database = $MJS_DSN
	listen = $MJS_STATE_DIR/sock/api-1.sock
	socket_mode = 0666
	threads = 8
	log_level = info
	public_origin = $MJS_URL
	chat_url = ${MJS_CHAT_URL:-$fake/v1}
	chat_api_key = dev
	chat_model = fake
	# the demo models of the other protocols, on the same fake
	upstream.responses.protocol = openai-responses
	upstream.responses.url = $fake/v1
	upstream.responses.key = dev
	upstream.responses.models = fake-responses fake-responses:*
	upstream.responses.reasoning = yes
	upstream.claude.protocol = anthropic
	upstream.claude.url = $fake
	upstream.claude.key = dev
	upstream.claude.models = fake-claude fake-claude:*
	upstream.claude.reasoning = yes
	upstream.gemini.protocol = gemini
	upstream.gemini.url = $fake
	upstream.gemini.key = dev
	upstream.gemini.models = fake-gemini fake-gemini:*
	upstream.gemini.reasoning = yes
	image_url = ${MJS_IMAGE_URL:-$fake}
	image_secret = dev
	video_url = ${MJS_VIDEO_URL:-$fake/v1}
	video_api_key = dev
	task_poll_interval = 200ms
	EOF
	# more keys for this stack (bench/run lifts the per-user caps this way)
	if [ -n "${MJS_CONF_EXTRA:-}" ]; then
		printf '# MJS_CONF_EXTRA\n%s\n' "$MJS_CONF_EXTRA" >>"$MJS_CONF.new" || return 1
	fi
	mv "$MJS_CONF.new" "$MJS_CONF"
}

mjs_migrate() {
	if ! "$MJS_BUILD_DIR/mjsctl" -c "$MJS_CONF" migrate >>"$(mjs_logfile migrate)" 2>&1; then
		mjs_warn "mjsctl migrate failed"
		mjs_log_tail migrate
		return 1
	fi
}

mjs_start_fake() {
	mjs_spawn fake python3 "$MJS_REPO/dev/fake_upstream" "$MJS_FAKE_PORT" &&
	mjs_wait_until fake 15 "the fake upstream on port $MJS_FAKE_PORT" \
		curl -sf -o /dev/null --max-time 2 "$MJS_FAKE_URL/healthz"
}

# GET PATH on a FastCGI socket; true when the answer is 200. What nginx would
# do, without nginx, so each responder is checked on its own (dev/fcgi_get).
mjs_fcgi_ok() {
	python3 "$MJS_REPO/dev/fcgi_get" "$1" "$2" 2>/dev/null
}

# mjs_start_worker [CONFIG]: starts the worker with $MJS_CONF, or with CONFIG (a
# file in the state directory, so mjs_pid still knows the process; tests use it
# for short timeouts and leases).
mjs_start_worker() {
	if mjs_pid worker >/dev/null; then mjs_warn "worker is already running"; return 1; fi
	mjs_spawn worker "$MJS_BUILD_DIR/mjs-worker" -c "${1:-$MJS_CONF}" || return 1
	mjs_write_env
}

# mjs_start_api N [CONFIG]: starts responder N on sock/api-N.sock (with $MJS_CONF
# or CONFIG) and waits until it answers GET /api/healthz with 200 (database
# reachable).
mjs_start_api() {
	local n=${1:?usage: mjs_start_api N [CONFIG]} conf=${2:-$MJS_CONF} sock
	sock=$MJS_STATE_DIR/sock/api-$n.sock
	if mjs_pid "api-$n" >/dev/null; then mjs_warn "api-$n is already running"; return 1; fi
	mjs_spawn "api-$n" "$MJS_BUILD_DIR/mjs-api" -c "$conf" -l "$sock" &&
	mjs_wait_until "api-$n" "${MJS_START_TIMEOUT:-60}" "api-$n to answer /api/healthz" \
		mjs_fcgi_ok "$sock" /api/healthz || return 1
	mjs_write_env
}

# --- nginx --------------------------------------------------------------------------

mjs_nginx_conf() { printf '%s' "$MJS_STATE_DIR/nginx/nginx.conf"; }

# Renders nginx/mjs.conf into the state directory and writes the nginx.conf
# around it (own pid, logs and temp paths; daemon off: mjs_spawn supervises it).
# MJS_NGINX_HTTP_EXTRA: directives added to its http block (dev/cluster: the
# load balancer's address for set_real_ip_from).
mjs_render_nginx() {
	local dir=$MJS_STATE_DIR/nginx web=${MJS_WEB_ROOT:-$MJS_REPO/web} tpl left user='' nofile
	if [ ! -d "$web" ]; then
		web=$dir/www
		mkdir -p "$web" || return 1
		printf '<!doctype html><title>mjs</title><p>mjs: this tree has no web/ client; the API is at /api/.\n' \
			>"$web/index.html"
	fi
	tpl=$(cat "$MJS_REPO/nginx/mjs.conf") || return 1
	# MJS_LISTEN_ADDR: an address other than 127.0.0.1 (dev/cluster's app hosts,
	# which the load balancer reaches over their bridge)
	if [ -n "${MJS_LISTEN_ADDR:-}" ]; then
		case $tpl in
		*"listen 127.0.0.1:@MJS_PORT@;"*) tpl=${tpl//"listen 127.0.0.1:@MJS_PORT@;"/"listen $MJS_LISTEN_ADDR:@MJS_PORT@;"} ;;
		*) mjs_warn "nginx/mjs.conf has no 'listen 127.0.0.1:@MJS_PORT@;' line for MJS_LISTEN_ADDR"; return 1 ;;
		esac
	fi
	tpl=${tpl//@MJS_PORT@/"$MJS_PORT"}
	tpl=${tpl//@MJS_SOCK_DIR@/"$MJS_STATE_DIR/sock"}
	tpl=${tpl//@MJS_WEB_ROOT@/"$web"}
	left=$(printf '%s\n' "$tpl" | grep -o '@MJS_[A-Z_]*@' | sort -u | tr '\n' ' ')
	if [ -n "$left" ]; then mjs_warn "nginx/mjs.conf has placeholders dev/lib.sh does not know: $left"; return 1; fi
	printf '%s\n' "$tpl" >"$dir/mjs.conf" || return 1
	# As many connections as the hard limit allows (an open tab holds two).
	nofile=$(ulimit -Hn)
	case $nofile in unlimited | *[!0-9]*) nofile=65536 ;; esac
	[ "$nofile" -gt 1048576 ] && nofile=1048576
	[ "$nofile" -lt 2048 ] && nofile=2048
	# The workers run as whoever runs the stack (root: root), so they read web/
	# and the sockets wherever the checkout is; mjs-production.conf is the
	# configuration that drops to an unprivileged user.
	mjs_is_root && user="user root;"
	cat >"$dir/nginx.conf" <<-EOF || return 1
	# Written by dev/lib.sh (mjs_render_nginx) around nginx/mjs.conf: do not edit.
	daemon off;
	worker_processes auto;
	worker_rlimit_nofile $nofile;
	pid $dir/nginx.pid;
	error_log stderr warn;
	$user

	events {
	    worker_connections $((nofile - 256));
	}

	http {
	    include /etc/nginx/mime.types;
	    default_type application/octet-stream;
	    sendfile on;
	    tcp_nodelay on;
	    server_tokens off;
	    keepalive_timeout 65s;

	    log_format mjs '\$remote_addr [\$time_iso8601] "\$request" \$status \$body_bytes_sent '
	                   '\$request_time upstream=\$upstream_addr upstream_status=\$upstream_status';
	    access_log $MJS_STATE_DIR/logs/nginx-access.log mjs buffer=64k flush=1s;

	    client_body_temp_path $dir/tmp/client_body;
	    fastcgi_temp_path $dir/tmp/fastcgi;
	    proxy_temp_path $dir/tmp/proxy;
	    scgi_temp_path $dir/tmp/scgi;
	    uwsgi_temp_path $dir/tmp/uwsgi;
	${MJS_NGINX_HTTP_EXTRA:+
	    # MJS_NGINX_HTTP_EXTRA
	    $MJS_NGINX_HTTP_EXTRA
	}
	    include $dir/mjs.conf;
	}
	EOF
}

# nginx -t on the rendered configuration; prints nginx's complaint on failure.
mjs_nginx_test() {
	local out ns=()
	[ -n "${MJS_NETNS:-}" ] && ns=(ip netns exec "$MJS_NETNS")	# where it will listen
	if ! out=$("${ns[@]}" nginx -t -q -p "$MJS_STATE_DIR/nginx/" -c "$(mjs_nginx_conf)" -e stderr 2>&1); then
		printf '%s\n' "$out" >&2
		mjs_warn "nginx -t failed for $(mjs_nginx_conf)"
		return 1
	fi
}

# nginx -t on nginx/mjs-production.conf: placeholders rendered to paths in a
# temporary directory, a self-signed certificate made with openssl for it.
# Touches nothing outside that directory, which it removes.
mjs_nginx_production_test() {
	local tmp rc=0 out
	tmp=$(mktemp -d /tmp/mjs-nginx-prod.XXXXXX) || return 1
	mkdir -p "$tmp/sock" "$tmp/web" "$tmp/tmp" || rc=1
	if [ $rc = 0 ] && ! out=$(openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=mjs.test \
		-keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>&1); then
		printf '%s\n' "$out" >&2
		mjs_warn "openssl could not make a test certificate"
		rc=1
	fi
	if [ $rc = 0 ]; then
		sed -e "s|@MJS_SERVER_NAME@|mjs.test|g" -e "s|@MJS_TLS_CERT@|$tmp/cert.pem|g" \
			-e "s|@MJS_TLS_KEY@|$tmp/key.pem|g" -e "s|@MJS_SOCK_DIR@|$tmp/sock|g" \
			-e "s|@MJS_WEB_ROOT@|$tmp/web|g" "$MJS_REPO/nginx/mjs-production.conf" >"$tmp/mjs.conf"
		if grep -n '@[A-Z_]*@' "$tmp/mjs.conf" >&2; then
			mjs_warn "nginx/mjs-production.conf has placeholders this test does not know"
			rc=1
		fi
	fi
	if [ $rc = 0 ]; then
		cat >"$tmp/nginx.conf" <<-EOF
		# Written by dev/lib.sh (mjs_nginx_production_test) around nginx/mjs-production.conf.
		pid $tmp/nginx.pid;
		error_log stderr warn;
		events { worker_connections 1024; }
		http {
		    include /etc/nginx/mime.types;
		    access_log off;
		    client_body_temp_path $tmp/tmp/client_body;
		    fastcgi_temp_path $tmp/tmp/fastcgi;
		    proxy_temp_path $tmp/tmp/proxy;
		    scgi_temp_path $tmp/tmp/scgi;
		    uwsgi_temp_path $tmp/tmp/uwsgi;
		    include $tmp/mjs.conf;
		}
		EOF
		if ! out=$(nginx -t -q -p "$tmp/" -c "$tmp/nginx.conf" -e stderr 2>&1); then
			printf '%s\n' "$out" >&2
			mjs_warn "nginx -t failed for nginx/mjs-production.conf"
			rc=1
		elif [ -n "$out" ]; then
			printf '%s\n' "$out" >&2	# warnings fail the check too
			rc=1
		fi
	fi
	rm -rf "$tmp"
	[ $rc = 0 ] && echo "nginx -t: nginx/mjs-production.conf ok"
	return $rc
}

# systemd-analyze verify of deploy/systemd/*.service, with ExecStart pointing
# at the binaries of build directory $1 (verify wants them to exist). Returns 0
# with a note when systemd-analyze is not installed.
mjs_systemd_verify() {
	local build=$1 tmp f rc=0 out
	if ! command -v systemd-analyze >/dev/null; then
		echo "systemd-analyze not installed: units not verified"
		return 0
	fi
	tmp=$(mktemp -d /tmp/mjs-units.XXXXXX) || return 1
	for f in "$MJS_REPO"/deploy/systemd/*.service; do
		sed -e "s|/usr/local/sbin/|$build/|g" "$f" >"$tmp/${f##*/}" || rc=1
	done
	# a template is verified through an instance of it
	[ -f "$tmp/mjs-api@.service" ] && cp "$tmp/mjs-api@.service" "$tmp/mjs-api@1.service"
	if [ $rc = 0 ]; then
		out=$(cd "$tmp" && systemd-analyze verify --man=no ./mjs-api@1.service ./mjs-worker.service 2>&1) || rc=1
		if [ -n "$out" ]; then
			printf '%s\n' "$out" >&2
			rc=1
		fi
	fi
	rm -rf "$tmp"
	[ $rc = 0 ] && echo "systemd-analyze verify: deploy/systemd units ok"
	return $rc
}

mjs_healthz_ok() {
	[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$MJS_URL/api/healthz")" = 200 ]
}

mjs_start_nginx() {
	local code
	mjs_render_nginx && mjs_nginx_test || return 1
	mjs_spawn nginx nginx -p "$MJS_STATE_DIR/nginx/" -c "$(mjs_nginx_conf)" -e stderr &&
	mjs_wait_until nginx 30 "$MJS_URL/api/healthz to answer 200" mjs_healthz_ok || return 1
	# the web client too: a 403 or 404 here is what a user would otherwise meet as a blank page
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$MJS_URL/")
	if [ "$code" != 200 ]; then
		mjs_warn "nginx answers $code for / : it cannot serve the web client from ${MJS_WEB_ROOT:-$MJS_REPO/web}" \
			"(see $MJS_STATE_DIR/logs/nginx.log)"
		return 1
	fi
}

# --- the env file -------------------------------------------------------------------

mjs_shell_quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# Writes $MJS_STATE_DIR/env (atomically) from the coordinates and the live pids.
mjs_write_env() {
	local f=$MJS_STATE_DIR/env name var pid
	{
		printf '# The coordinates of the mjs stack in %s, written by dev/lib.sh\n' "$MJS_STATE_DIR"
		printf '# (mjs_write_env) whenever a process starts. Pids: empty when not running.\n'
		for var in MJS_URL MJS_DSN MJS_STATE_DIR MJS_BUILD_DIR MJS_CONF MJS_FAKE_URL MJS_PORT \
			MJS_FAKE_PORT MJS_PG_PORT; do
			printf '%s=%s\n' "$var" "$(mjs_shell_quote "${!var}")"
		done
		printf 'MJS_NETNS=%s\n' "$(mjs_shell_quote "${MJS_NETNS:-}")"
		printf 'MJS_SOCK_DIR=%s\n' "$(mjs_shell_quote "$MJS_STATE_DIR/sock")"
		printf 'MJS_LOG_DIR=%s\n' "$(mjs_shell_quote "$MJS_STATE_DIR/logs")"
		printf 'MJS_ASAN_OPTIONS=%s\n' "$(mjs_shell_quote "${ASAN_OPTIONS:-${MJS_ASAN_OPTIONS:-}}")"
		printf 'MJS_UBSAN_OPTIONS=%s\n' "$(mjs_shell_quote "${UBSAN_OPTIONS:-${MJS_UBSAN_OPTIONS:-}}")"
		for name in $MJS_PROCS; do
			var=MJS_$(printf '%s' "$name" | tr 'a-z-' 'A-Z_')
			pid=$(mjs_pid "$name") || pid=
			printf '%s_PID=%s\n%s_PIDFILE=%s\n' "$var" "$pid" "$var" \
				"$(mjs_shell_quote "$(mjs_pidfile "$name")")"
		done
		pid=$(head -n 1 "$MJS_STATE_DIR/pg/postmaster.pid" 2>/dev/null) || pid=
		printf 'MJS_PG_PID=%s\nMJS_PG_PIDFILE=%s\n' "$pid" \
			"$(mjs_shell_quote "$MJS_STATE_DIR/pg/postmaster.pid")"
	} >"$f.new" && mv "$f.new" "$f"
}

# --- the whole stack ----------------------------------------------------------------

# What must hold before a stack starts: nothing of it runs, its ports are
# free, its binaries exist. Touches nothing.
mjs_stack_preflight() {
	local name port
	for name in $MJS_PROCS; do
		if mjs_pid "$name" >/dev/null; then
			mjs_warn "$name of the stack in $MJS_STATE_DIR is running already; stop it with dev/down"
			return 1
		fi
	done
	for port in "$MJS_PORT" ${MJS_FAKE_URL:+"$MJS_FAKE_PORT"}; do
		if mjs_port_busy "$port"; then mjs_warn "port $port is in use on 127.0.0.1"; return 1; fi
	done
	for name in mjs-api mjs-worker mjsctl; do
		[ -x "$MJS_BUILD_DIR/$name" ] || { mjs_warn "$MJS_BUILD_DIR/$name is missing (build first)"; return 1; }
	done
}

# Starts PostgreSQL, migrates, and starts fake upstream, worker, two responders
# and nginx; returns once /api/healthz answers 200 through nginx. Call
# mjs_stack_preflight first; on failure, mjs_stack_down cleans up.
mjs_stack_up() {
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	mjs_prepare_state && mjs_pg_init && mjs_pg_start && mjs_pg_createdb || return 1
	mjs_write_conf && mjs_migrate || return 1
	if [ -n "$MJS_FAKE_URL" ]; then mjs_start_fake || return 1; fi
	mjs_start_worker || return 1
	mjs_start_api 1 && mjs_start_api 2 && mjs_start_nginx || return 1
	if ! mjs_pid worker >/dev/null; then
		mjs_warn "the worker exited"
		mjs_log_tail worker
		return 1
	fi
	mjs_write_env
}

# Stops everything the stack runs (whatever is left of it) and PostgreSQL last.
mjs_stack_down() {
	# shellcheck disable=SC2086
	mjs_stop $MJS_PROCS
	mjs_pg_stop || return 1
	[ -f "$MJS_STATE_DIR/env" ] && mjs_write_env
	return 0
}
