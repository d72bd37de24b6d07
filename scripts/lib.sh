# scripts/lib.sh: set-up shared by scripts/demo.sh, scripts/test.sh,
# scripts/test-major.sh and bench/run.sh.
#
# Installs what the build needs (the server headers of PostgreSQL PG_MAJOR,
# pinned to the installed server's version, a compiler and make), builds the
# extension with -Wall -Wextra -Werror, installs it, and runs a throwaway
# PostgreSQL cluster in a temporary directory, reachable only through its own
# Unix socket.  The cluster is stopped and removed when the calling script
# exits.  PG_MAJOR defaults to 15, the major Debian 12 carries; inside the
# chroot of another major (scripts/chroot.sh) it names that one.
#
# Source it; do not run it.

set -euo pipefail

ES_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_MAJOR=${PG_MAJOR:-15}
PGBIN=/usr/lib/postgresql/$PG_MAJOR/bin
export PG_MAJOR PGBIN
export PATH="$PGBIN:$PATH"

es_log() { printf '==> %s\n' "$*"; }

# Install the packages the build and the tests need, only those missing.
es_install_deps() {
	local need=()
	command -v gcc >/dev/null || need+=(gcc)
	command -v make >/dev/null || need+=(make)
	dpkg-query -W -f='${Status}' "postgresql-$PG_MAJOR" 2>/dev/null |
		grep -q 'ok installed' || need+=("postgresql-$PG_MAJOR")
	if ! dpkg-query -W -f='${Status}' "postgresql-server-dev-$PG_MAJOR" 2>/dev/null |
		grep -q 'ok installed'; then
		need+=(HEADERS)
	fi
	[ ${#need[@]} -eq 0 ] && return 0

	es_log "installing: ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	local pkgs=()
	for p in "${need[@]}"; do
		[ "$p" = HEADERS ] || pkgs+=("$p")
	done
	if [ ${#pkgs[@]} -gt 0 ]; then
		apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
	fi
	# The headers must match the installed server exactly; pinning them also
	# keeps apt from upgrading the server.
	local ver
	ver=$(dpkg-query -W -f='${Version}' "postgresql-$PG_MAJOR")
	apt-get install -y -qq --no-install-recommends \
		"postgresql-server-dev-$PG_MAJOR=$ver" >/dev/null
}

# What the client packages' tests need besides the server: pgbouncer,
# psycopg 3 and pytest for Python, Node.js, and npm unless the Node client's
# dependencies are installed already (only what is missing; the Valid-Until
# option is for Debian testing's archive, harmless elsewhere).  Then the
# Node client's dependencies, from its package-lock.json.
es_install_test_deps() {
	local need=() node_dir=$ES_ROOT/clients/node
	command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
	/usr/bin/python3 -c 'import psycopg' 2>/dev/null || need+=(python3-psycopg)
	/usr/bin/python3 -m pytest --version >/dev/null 2>&1 || need+=(python3-pytest)
	command -v node >/dev/null || need+=(nodejs)
	if [ ! -d "$node_dir/node_modules/pg" ] && ! command -v npm >/dev/null; then
		need+=(npm)
	fi
	if [ ${#need[@]} -gt 0 ]; then
		es_log "installing: ${need[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get -o Acquire::Check-Valid-Until=false update -qq
		apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	fi
	if [ ! -d "$node_dir/node_modules/pg" ]; then
		es_log "installing the Node client's dependencies (npm ci)"
		(cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
	fi
}

# Start pgbouncer in transaction mode in front of the throwaway cluster, on
# a socket of its own; sets ES_PGBOUNCER_HOST and ES_PGBOUNCER_PORT.
es_start_pgbouncer() {
	local dir=$ES_TMP/pgbouncer bin
	bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
	mkdir -p "$dir"
	chown postgres: "$dir"
	ES_PGBOUNCER_HOST=$dir
	ES_PGBOUNCER_PORT=$((PGPORT + 7))
	{
		echo "[databases]"
		echo "* = host=$ES_TMP port=$PGPORT"
		echo
		echo "[pgbouncer]"
		echo "listen_addr ="
		echo "listen_port = $ES_PGBOUNCER_PORT"
		echo "unix_socket_dir = $dir"
		echo "auth_type = trust"
		echo "auth_file = $dir/users.txt"
		echo "pool_mode = transaction"
		echo "max_client_conn = 400"
		echo "default_pool_size = 40"
		echo "ignore_startup_parameters = extra_float_digits,options"
		echo "logfile = $dir/pgbouncer.log"
		echo "pidfile = $dir/pgbouncer.pid"
	} >"$dir/pgbouncer.ini"
	echo '"postgres" ""' >"$dir/users.txt"
	chown postgres: "$dir/pgbouncer.ini" "$dir/users.txt"
	runuser -u postgres -- "$bin" -d -q "$dir/pgbouncer.ini"
	export ES_PGBOUNCER_HOST ES_PGBOUNCER_PORT
}

# Build with warnings as errors and install into the server's directories.
es_build_install() {
	es_log "building event_store for PostgreSQL $PG_MAJOR (-Wall -Wextra -Werror)"
	make -C "$ES_ROOT" -s clean PG_CONFIG="$PGBIN/pg_config" >/dev/null
	make -C "$ES_ROOT" -s COPT=-Werror PG_CONFIG="$PGBIN/pg_config"
	# Scripts an earlier install left behind (of a version since removed
	# from sql/) would otherwise still be used.
	rm -f "$("$PGBIN/pg_config" --sharedir)/extension/event_store"--*.sql
	make -C "$ES_ROOT" -s install PG_CONFIG="$PGBIN/pg_config" >/dev/null
}

# Start a throwaway cluster; sets PGHOST, PGPORT, PGUSER, ES_TMP.  Extra
# arguments are server options ("-c name=value").  Tests run with fsync off
# (ES_FSYNC=off); the benchmark turns it on.
es_start_cluster() {
	ES_TMP=$(mktemp -d /tmp/event_store.XXXXXX)
	chmod 755 "$ES_TMP"
	chown postgres: "$ES_TMP"
	export PGHOST=$ES_TMP PGPORT=${ES_PORT:-55432} PGUSER=postgres
	export ES_DATA=$ES_TMP/data
	unset PGDATABASE PGPASSWORD PGSERVICE || true
	trap es_stop_cluster EXIT

	es_log "starting a throwaway cluster in $ES_TMP"
	runuser -u postgres -- "$PGBIN/initdb" -D "$ES_TMP/data" -U postgres \
		-A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$ES_TMP/initdb.log"
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$ES_TMP/data" -w \
		-l "$ES_TMP/server.log" \
		-o "-p $PGPORT -k $ES_TMP -c listen_addresses='' -c fsync=${ES_FSYNC:-off} $*" \
		start >/dev/null
}

es_stop_cluster() {
	if [ -n "${ES_TMP:-}" ] && [ -f "$ES_TMP/pgbouncer/pgbouncer.pid" ]; then
		kill "$(cat "$ES_TMP/pgbouncer/pgbouncer.pid")" 2>/dev/null || true
	fi
	if [ -n "${ES_TMP:-}" ] && [ -d "$ES_TMP/data" ]; then
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$ES_TMP/data" -m fast \
			stop >/dev/null 2>&1 || true
		rm -rf "$ES_TMP"
	fi
}

# Everything a command needs before it talks to a server.
es_setup() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "run this as root (it installs packages and the extension)" >&2
		exit 1
	fi
	es_install_deps
	es_build_install
	es_start_cluster "$@"
}
