#!/usr/bin/env bash
# bench/subscriptions.sh: what subscriptions cost (0.5.0: wait_for_event,
# filtered reads, the standby watermark), as ratios measured in one sitting,
# in one throwaway cluster with fsync on.
#
#   bash bench/subscriptions.sh
#
# Sets up as bench/run.sh does (BENCH_SKIP_BUILD=1 uses the installed
# build).  The cluster starts WITHOUT shared_preload_libraries ("poll": on
# PostgreSQL 15 and 16, wait_for_event then polls, from POLL_MIN_MS to
# POLL_MAX_MS apart: src/wait.c), runs the
# "wait" and "latency" parts there, is restarted WITH
# shared_preload_libraries=event_store ("cv": waiters sleep on a condition
# variable that committing appends broadcast), and runs every part there.
# wal_level and max_wal_senders keep their defaults (replica, 10), so
# appends publish the watermark unless a row says otherwise.  Every pgbench
# comparison is interleaved BENCH_REPS times for BENCH_SECONDS each, in the
# same server start, and reported as medians; each run's writers append to
# streams of their own (bench/scripts/own_es.sql, 4 clients, -M prepared,
# -j 2).
#
#   wait       Writers' tps: 4 writers alone (the baseline of every ratio in
#              this part) against the same with, beside them (a second
#              pgbench with 8 clients, -j 2):
#                waiters:  8 subscribers (bench/scripts/sub_waiter.sql:
#                          wait_for_event(last, '5s'), then in one
#                          transaction read_all(last, 1000), its rows sent
#                          to the client, and last := last_read_position());
#                filtered: 8 subscribers to an event type nobody appends
#                          (sub_waiter_filtered.sql: the same loop with
#                          event_types => '{NeverAppended}' in the wait and
#                          the read);
#                wakeonly: 8 subscribers that only wait (sub_wake_only.sql:
#                          wait_for_event(last, '5s'), then last :=
#                          max(global_position), no read): the waiting's
#                          own cost, without reading every event 8 times;
#                sleepers: (poll start only) 8 sessions looping on SELECT
#                          pg_sleep(5) (sub_sleeper.sql), no extension code:
#                          what any 5-second statement costs the writers
#                          (it holds back the horizon of dead row versions
#                          as a 5 s wait does).
#              The sessions start (at the log's head) 1 s before the
#              writers and run for the writers' run; afterwards the script
#              appends an event of the filtered type every 0.2 s until their
#              pgbench has ended (a waiter blocked in its 5 s wait would
#              otherwise hold it up).  Their loops per second are that
#              pgbench's tps.  Each run also records how many pages the
#              heads table (event_store.streams) grew by while the writers
#              ran: dead head versions pruning could not remove.
#              synchronous_commit off and on (filtered, wakeonly and
#              sleepers: BENCH_FILTERED_SYNC, default off only).  In both
#              server starts.
#              In the cv start also, against the same baseline:
#                notify:   the writers with event_store.notify = on (alone
#                          is notify off);
#                watermark: the writers with event_store.watermark_interval
#                          = -1 (never published), against the baseline's
#                          default 100: the ratio is default / never, the
#                          watermark's cost; BENCH_WATERMARK_ZERO=1 adds
#                          interval 0.
#   latency    Wake-up latency (bench/subscriptions_latency.py): one writer
#              appends one event per transaction (synchronous_commit off)
#              every 5-15 ms (random), N waiters (1 and 8, one process and
#              connection each) blocked in wait_for_event; latency = the
#              server's clock_timestamp() when the wait returned (and the
#              waiter's clock when the reply arrived) minus the server's
#              clock_timestamp() read in the append's statement after
#              append_event returned, just before its commit (the commit
#              became visible after it: latencies are high by at most the
#              commit's duration, which is below the commit-plus-reply time
#              reported beside them).  Same machine, same clock.
#              p50 and p99 in ms, BENCH_LATENCY_SECONDS (default 8) per
#              case.  poll start: polling; cv start: the condition variable,
#              and LISTEN/NOTIFY (the writer with event_store.notify on,
#              waiters LISTENing; the waiter's clock when the notification
#              was read).
#   reads      (cv start) A log of BENCH_READ_EVENTS (default 1,000,000)
#              events in 1,000 streams, each event's type one of 1,000
#              (t1..t1000) drawn uniformly at random.  A subscriber catches
#              up from 0 to the head (server-side loops in PL/pgSQL, so no
#              rows cross to a client; the time of the whole loop, median of
#              BENCH_REPS, interleaved): read_all(p, 1000, '{t1}') moving p
#              to last_read_position(), against read_all(p, 1000) of every
#              event; and a plain SQL page of one type (WHERE event_type =
#              't1' AND global_position > p ORDER BY global_position LIMIT
#              1000, p := the page's last position), first without, then
#              with an index on (event_type, global_position) (CREATE INDEX
#              ON event_store.events (event_type, global_position)).
#              read_all's C scan does not use that index (the filtered
#              read_all is timed again with it present); the plain query is
#              not a substitute for read_all (no gate, so not exact under
#              concurrent appends; no lifecycle bounds): it shows what such
#              an index could give a read that used it.  Calls = reads until
#              the checkpoint reached the head.
#
# Settings: BENCH_PARTS (default "wait latency reads"), BENCH_SECONDS
# (default 15), BENCH_REPS (default 3), BENCH_LATENCY_SECONDS (default 8),
# BENCH_READ_EVENTS (default 1000000), BENCH_FILTERED_SYNC (default "off"),
# BENCH_WATERMARK_ZERO (default 0), BENCH_RESULTS (default
# bench/results/<date>-<commit>-subscriptions.md), ES_PORT (default 55434).
# About 16 minutes with the defaults on a 2-vCPU machine.  The results
# file records the md5 of the installed event_store.so at the start, at the
# restart and at the end (a build installed mid-sitting shows there).

source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

SECONDS_PER_RUN=${BENCH_SECONDS:-15}
REPS=${BENCH_REPS:-3}
LAT_SECONDS=${BENCH_LATENCY_SECONDS:-8}
READ_EVENTS=${BENCH_READ_EVENTS:-1000000}
FILTERED_SYNC=${BENCH_FILTERED_SYNC:-off}
WM_ZERO=${BENCH_WATERMARK_ZERO:-0}
PARTS=${BENCH_PARTS:-"wait latency reads"}
part() { [[ " $PARTS " == *" $1 "* ]]; }
BENCH=$ES_ROOT/bench
COMMIT=$(git -C "$ES_ROOT" rev-parse --short HEAD 2>/dev/null || echo nogit)
RESULTS=${BENCH_RESULTS:-$BENCH/results/$(date +%F)-$COMMIT-subscriptions.md}
mkdir -p "$(dirname "$RESULTS")"
SCRIPTS=$(mktemp -d /tmp/es_subscriptions_bench.XXXXXX)
export ES_PORT=${ES_PORT:-55434}
PY=/usr/bin/python3
WAITERS=8
STARTED=$(date +%s)

SERVER_OPTS=(-c shared_buffers=1GB -c max_wal_size=8GB
	-c checkpoint_timeout=30min -c max_connections=100 -c work_mem=4MB
	-c autovacuum=off)
if [ "${BENCH_SKIP_BUILD:-0}" = 1 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "run this as root (it starts a cluster as the postgres user)" >&2
		exit 1
	fi
	es_log "BENCH_SKIP_BUILD=1: using the installed event_store, not building it"
	ES_FSYNC=on es_start_cluster "${SERVER_OPTS[@]}"
else
	ES_FSYNC=on es_setup "${SERVER_OPTS[@]}"
fi
# Keep the server's log (the cluster's directory goes at exit).
trap 'cp "$ES_TMP/server.log" /tmp/es_subscriptions_server.log 2>/dev/null || true
	es_stop_cluster; rm -rf "$SCRIPTS"' EXIT
# The installed build, to tell whether it changed during the sitting.
so_sum() { md5sum "$("$PGBIN/pg_config" --pkglibdir)/event_store.so" | cut -c1-12; }
SO_START=$(so_sum)

q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -A RUNS WLOOPS GROWTH
med() { tr ' ' '\n' <<<"${RUNS[$1]:-}" | grep . | median; }
gmed() { tr ' ' '\n' <<<"${GROWTH[$1]:-}" | grep . | median; }
wmed() { tr ' ' '\n' <<<"${WLOOPS[$1]:-}" | grep . | median; }
range() { tr ' ' '\n' <<<"${RUNS[$1]:-}" | grep . | sort -g | awk '{ a[NR] = $1 } END { printf "%.0f-%.0f", a[1], a[NR] }'; }
ratio() { awk -v a="$(med "$1")" -v b="$(med "$2")" 'BEGIN { printf "%.3f", a / b }'; }
fmt() { awk -v a="$1" 'BEGIN { printf "%.0f", a }'; }

out() { echo "$*" | tee -a "$RESULTS"; }
: >"$RESULTS"

run_id=0
# The writers: 4 clients of own_es.sql, each on a stream of its own for
# this run (run id); prints tps.  Extra arguments are server options for
# them.
writers() {
	local db=$1 sync=$2 run=$3
	shift 3
	PGOPTIONS="-c synchronous_commit=$sync $*" \
		pgbench -n -M prepared -j 2 -c 4 -T "${WRITERS_SECONDS:-$SECONDS_PER_RUN}" \
		-D run="$run" -D v=0 -f "$BENCH/scripts/own_es.sql" "$db" 2>&1 |
		awk '/^tps = / { print $3; exit } /aborted|ERROR/ { print "pgbench: " $0 >"/dev/stderr" }'
}

# Pages of the heads table (event_store.streams).
heads_pages() { q -d "$1" -c "SELECT pg_relation_size('event_store.streams') / 8192"; }

# One run of a method: the writers, with sessions beside them for the
# waiter methods.  Prints "tps growth loops/s": growth = pages the heads
# table grew by during the run; loops/s absent without sessions beside.
one_run() {
	local db=$1 sync=$2 method=$3 run=$4 script="" opts="" head wpid tps loops p0 growth
	p0=$(heads_pages "$db")
	case $method in
	alone) ;;
	waiters) script=sub_waiter.sql ;;
	filtered) script=sub_waiter_filtered.sql ;;
	wakeonly) script=sub_wake_only.sql ;;
	sleepers) script=sub_sleeper.sql ;;
	notify) opts="-c event_store.notify=on" ;;
	wm-never) opts="-c event_store.watermark_interval=-1" ;;
	wm-0) opts="-c event_store.watermark_interval=0" ;;
	*) echo "unknown method $method" >&2; exit 1 ;;
	esac
	if [ -z "$script" ]; then
		tps=$(writers "$db" "$sync" "$run" $opts)
		echo "$tps $(($(heads_pages "$db") - p0))"
		return
	fi
	head=$(q -d "$db" -c "SELECT coalesce(max(global_position), 0) FROM event_store.events")
	pgbench -n -M prepared -j 2 -c "$WAITERS" -T $((SECONDS_PER_RUN + 1)) \
		-D last="$head" -f "$BENCH/scripts/$script" "$db" >"$SCRIPTS/waiters.out" 2>&1 &
	wpid=$!
	sleep 1
	tps=$(writers "$db" "$sync" "$run")
	growth=$(($(heads_pages "$db") - p0))
	# Wake waiters blocked in their 5 s wait, until their pgbench is done.
	while kill -0 "$wpid" 2>/dev/null; do
		q -d "$db" -c "SELECT event_store.append_event('wake', -2, 'NeverAppended', '{}')" >/dev/null
		sleep 0.2
	done
	wait "$wpid" || true
	if grep -q 'aborted\|ERROR' "$SCRIPTS/waiters.out"; then
		echo "waiters' pgbench:" >&2
		grep 'aborted\|ERROR' "$SCRIPTS/waiters.out" | head -5 >&2
	fi
	loops=$(awk '/^tps = / { print $3; exit }' "$SCRIPTS/waiters.out")
	echo "$tps $growth ${loops:-0}"
}

# Run methods interleaved REPS times in one database for one sync setting;
# keys are "<start>:<sync>:<method>".
interleave() {
	local start=$1 db=$2 sync=$3 rep m res tps loops growth
	shift 3
	for rep in $(seq "$REPS"); do
		for m in "$@"; do
			run_id=$((run_id + 1))
			res=$(one_run "$db" "$sync" "$m" "$run_id")
			read -r tps growth loops <<<"$res"
			echo "  $start sync=$sync $m run $rep: $tps tps, heads table +$growth pages${loops:+ (beside: $loops loops/s)}"
			RUNS[$start:$sync:$m]="${RUNS[$start:$sync:$m]:-} $tps"
			GROWTH[$start:$sync:$m]="${GROWTH[$start:$sync:$m]:-} $growth"
			if [ -n "$loops" ]; then
				WLOOPS[$start:$sync:$m]="${WLOOPS[$start:$sync:$m]:-} $loops"
			fi
		done
	done
}

# The methods of the wait part in one start, sync off and on.
wait_part() {
	local start=$1 db=$2 sync methods
	shift 2
	createdb "$db"
	q -d "$db" -c "CREATE EXTENSION event_store"
	for sync in off on; do
		methods="alone waiters"
		if [[ " $FILTERED_SYNC " == *" $sync "* ]]; then
			methods="$methods filtered wakeonly"
			[ "$start" = poll ] && methods="$methods sleepers"
		fi
		[ "$start" = cv ] && methods="$methods notify wm-never"
		[ "$start" = cv ] && [ "$WM_ZERO" = 1 ] && methods="$methods wm-0"
		es_log "wait ($start): sync $sync: $methods"
		interleave "$start" "$db" "$sync" $methods
	done
}

declare -A LAT
# Wake-up latency: mode (wait or notify) and waiter count; keeps the JSON.
latency() {
	local start=$1 db=$2 mode=$3 n=$4 r
	r=$("$PY" "$BENCH/subscriptions_latency.py" "$db" "$mode" "$n" "$LAT_SECONDS")
	echo "  latency $start $mode n=$n: $r"
	LAT[$start:$mode:$n]=$r
}
latency_part() {
	local start=$1 db=$2
	createdb "$db"
	q -d "$db" -c "CREATE EXTENSION event_store"
	es_log "latency ($start)"
	latency "$start" "$db" wait 1
	latency "$start" "$db" wait "$WAITERS"
	if [ "$start" = cv ]; then
		latency "$start" "$db" notify 1
		latency "$start" "$db" notify "$WAITERS"
	fi
}
# A field of a latency case's JSON, in ms to two decimals.
lat() {
	"$PY" -c 'import json, sys
r = json.loads(sys.argv[1]); v = r.get(sys.argv[2])
print("" if v is None else (f"{v:.2f}" if isinstance(v, float) else v))' "${LAT[$1]}" "$2"
}

pg_version=$(q -d postgres -c 'SHOW server_version')
wal_level=$(q -d postgres -c 'SHOW wal_level')
senders=$(q -d postgres -c 'SHOW max_wal_senders')

# ---- the poll start: no shared_preload_libraries
if part wait; then wait_part poll subs_poll; fi
if part latency; then latency_part poll lat_poll; fi
part wait && q -d postgres -c "DROP DATABASE subs_poll"

# ---- the cv start: shared_preload_libraries = event_store
es_log "restarting with shared_preload_libraries = event_store"
q -d postgres -c "ALTER SYSTEM SET shared_preload_libraries = 'event_store'"
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$ES_DATA" -w -l "$ES_TMP/server.log" restart >/dev/null
[ "$(q -d postgres -c 'SHOW shared_preload_libraries')" = event_store ] ||
	{ echo "shared_preload_libraries is not event_store after the restart" >&2; exit 1; }
SO_RESTART=$(so_sum)

if part wait; then
	wait_part cv subs_cv
	# The watermark moved in the baseline's runs and not in wm-never's?
	wm_before=$(q -d subs_cv -c "SELECT event_store.watermark()")
	WRITERS_SECONDS=3 writers subs_cv off 100001 -c event_store.watermark_interval=-1 >/dev/null
	wm_never=$(q -d subs_cv -c "SELECT event_store.watermark()")
	WRITERS_SECONDS=3 writers subs_cv off 100002 >/dev/null
	wm_after=$(q -d subs_cv -c "SELECT event_store.watermark()")
	wm_head=$(q -d subs_cv -c "SELECT max(global_position) FROM event_store.events")
fi
if part latency; then latency_part cv lat_cv; fi

if part reads; then
	es_log "reads: loading $READ_EVENTS events of 1,000 types"
	createdb reads
	q -d reads -c "CREATE EXTENSION event_store"
	per=$((READ_EVENTS / 1000))
	q -d reads <<SQL >/dev/null
SELECT setseed(0.42);
SELECT count(event_store.append_events('r-' || s, 0,
	(SELECT jsonb_agg(jsonb_build_object('type', 't' || (1 + floor(random() * 1000))::int,
		'data', jsonb_build_object('s', s, 'i', i, 'customer', 'Jane Doe', 'total', 45.47,
			'pad', repeat('x', 100))))
	   FROM generate_series(1, $per) i)))
  FROM generate_series(1, 1000) s;
SQL
	q -d reads -c "VACUUM ANALYZE event_store.events"
	q -d reads <<'SQL'
CREATE FUNCTION catchup_es(types text[], OUT ms numeric, OUT calls int, OUT events bigint)
LANGUAGE plpgsql AS $f$
DECLARE p bigint := 0; np bigint; n bigint; head bigint; t timestamptz;
BEGIN
	SELECT max(global_position) INTO head FROM event_store.events;
	calls := 0; events := 0; t := clock_timestamp();
	LOOP
		SELECT count(*) INTO n FROM event_store.read_all(p, 1000, types);
		np := event_store.last_read_position();
		calls := calls + 1; events := events + n;
		EXIT WHEN np >= head OR (n = 0 AND np <= p);
		p := np;
	END LOOP;
	ms := round(extract(epoch FROM clock_timestamp() - t)::numeric * 1000, 1);
END $f$;
CREATE FUNCTION catchup_sql(typ text, OUT ms numeric, OUT calls int, OUT events bigint)
LANGUAGE plpgsql AS $f$
DECLARE p bigint := 0; n bigint; last bigint; t timestamptz;
BEGIN
	calls := 0; events := 0; t := clock_timestamp();
	LOOP
		SELECT count(s.data), max(s.global_position) INTO n, last
		  FROM (SELECT e.global_position, e.data FROM event_store.events e
				 WHERE e.event_type = typ AND e.global_position > p
				 ORDER BY e.global_position LIMIT 1000) s;
		calls := calls + 1; events := events + n;
		EXIT WHEN n < 1000;
		p := last;
	END LOOP;
	ms := round(extract(epoch FROM clock_timestamp() - t)::numeric * 1000, 1);
END $f$;
SQL
	t1_count=$(q -d reads -c "SELECT count(*) FROM event_store.events WHERE event_type = 't1'")
	total=$(q -d reads -c "SELECT count(*) FROM event_store.events")
	types=$(q -d reads -c "SELECT count(DISTINCT event_type) FROM event_store.events")
	table_mb=$(q -d reads -c "SELECT round(pg_total_relation_size('event_store.events') / 1048576.0)")
	declare -A CU CALLS EVENTS
	catch() {
		local label=$1 sql=$2 rep ms calls events
		read -r ms calls events < <(q -F ' ' -d reads -c "SELECT * FROM $sql")
		echo "  reads $label: $ms ms, $calls calls, $events events"
		CU[$label]="${CU[$label]:-} $ms"
		CALLS[$label]=$calls
		EVENTS[$label]=$events
	}
	cmed() { tr ' ' '\n' <<<"${CU[$1]}" | grep . | median; }
	crt() { awk -v a="$(cmed "$1")" -v b="$(cmed "$2")" 'BEGIN { printf "%.3f", a / b }'; }
	# Warm the cache: one untimed pass of each.
	q -d reads -c "SELECT * FROM catchup_es(NULL)" >/dev/null
	q -d reads -c "SELECT * FROM catchup_sql('t1')" >/dev/null
	es_log "reads: catch-up without the index"
	for rep in $(seq "$REPS"); do
		catch es-t1 "catchup_es('{t1}')"
		catch es-all "catchup_es(NULL)"
		catch sql-t1 "catchup_sql('t1')"
	done
	plan_noidx=$(q -d reads -c "EXPLAIN (COSTS OFF) SELECT e.global_position, e.data FROM event_store.events e
		WHERE e.event_type = 't1' AND e.global_position > 0 ORDER BY e.global_position LIMIT 1000" | tr '\n' ' ' | sed 's/  */ /g')
	t0=$(date +%s.%N)
	q -d reads -c "CREATE INDEX events_type_position ON event_store.events (event_type, global_position)"
	t1=$(date +%s.%N)
	q -d reads -c "ANALYZE event_store.events"
	idx_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	idx_mb=$(q -d reads -c "SELECT round(pg_relation_size('event_store.events_type_position') / 1048576.0)")
	q -d reads -c "SELECT * FROM catchup_sql('t1')" >/dev/null
	es_log "reads: catch-up with the index"
	for rep in $(seq "$REPS"); do
		catch es-t1-idx "catchup_es('{t1}')"
		catch sql-t1-idx "catchup_sql('t1')"
	done
	plan_idx=$(q -d reads -c "EXPLAIN (COSTS OFF) SELECT e.global_position, e.data FROM event_store.events e
		WHERE e.event_type = 't1' AND e.global_position > 0 ORDER BY e.global_position LIMIT 1000" | tr '\n' ' ' | sed 's/  */ /g')
fi

# ---- the report
out "# Subscriptions benchmark, $(date +%F), commit $COMMIT (at the start of the sitting)"
out ""
out "PostgreSQL $pg_version, fsync on, wal_level $wal_level, max_wal_senders $senders, $(nproc) CPUs; $REPS interleaved runs of ${SECONDS_PER_RUN} s each, medians (min-max of the runs in brackets). \"poll\": started without shared_preload_libraries (wait_for_event polls); \"cv\": with shared_preload_libraries = event_store (condition variable). See the header of bench/subscriptions.sh for what each row measures."
out ""
if part wait; then
	out "## 1. Writers beside waiting subscribers (4 writers on own streams)"
	out ""
	out "| start | sync commit | beside the writers | writers' tps | ratio to alone | the sessions' loops/s | heads table growth per run (pages) |"
	out "|---|---|---|---:|---:|---:|---:|"
	for start in poll cv; do
		for sync in off on; do
			for m in alone waiters filtered wakeonly sleepers; do
				k=$start:$sync:$m
				[ -n "${RUNS[$k]:-}" ] || continue
				case $m in
				alone) name="nothing (baseline)" ;;
				waiters) name="8 subscribers (wait_for_event, read_all page, last_read_position)" ;;
				filtered) name="8 subscribers to a type never appended" ;;
				wakeonly) name="8 wait-only subscribers (no read)" ;;
				sleepers) name="8 sessions in SELECT pg_sleep(5) (reference: a 5 s statement)" ;;
				esac
				loops=""
				[ -n "${WLOOPS[$k]:-}" ] && loops=$(fmt "$(wmed "$k")")
				out "| $start | $sync | $name | $(fmt "$(med "$k")") ($(range "$k")) | $(ratio "$k" "$start:$sync:alone") | $loops | $(gmed "$k") |"
			done
		done
	done
	out ""
	out "(Loops/s: the second pgbench's tps, all 8 sessions together. Heads table growth: pages event_store.streams grew by while the writers ran, median of the runs; dead head versions that pruning could not remove.)"
	out ""
	out "NOTIFY, for comparison (cv start, same baseline):"
	out ""
	out "| sync commit | event_store.notify off | on | ratio |"
	out "|---|---:|---:|---:|"
	for sync in off on; do
		out "| $sync | $(fmt "$(med cv:$sync:alone)") ($(range cv:$sync:alone)) | $(fmt "$(med cv:$sync:notify)") ($(range cv:$sync:notify)) | $(ratio cv:$sync:notify cv:$sync:alone) |"
	done
	out ""
fi
if part latency; then
	out "## 2. Wake-up latency (one writer, an append every 5-15 ms, synchronous_commit off; ${LAT_SECONDS} s per case)"
	out ""
	out "| path | waiters | samples / expected | at the server: p50 | p99 | max | at the waiter: p50 | p99 | max | writer's commit + reply p50 / p99 (bound of the error) |"
	out "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for key in poll:wait:1 poll:wait:$WAITERS cv:wait:1 cv:wait:$WAITERS cv:notify:1 cv:notify:$WAITERS; do
		[ -n "${LAT[$key]:-}" ] || continue
		IFS=: read -r start mode n <<<"$key"
		case $start:$mode in
		poll:wait) name="wait_for_event, polling (no preload)" ;;
		cv:wait) name="wait_for_event, condition variable (preload)" ;;
		cv:notify) name="LISTEN/NOTIFY (event_store.notify on)" ;;
		esac
		srv50=$(lat "$key" srv_p50)
		out "| $name | $n | $(lat "$key" samples) / $(lat "$key" expected) | ${srv50:--} | $(lat "$key" srv_p99) | $(lat "$key" srv_max) | $(lat "$key" cli_p50) | $(lat "$key" cli_p99) | $(lat "$key" cli_max) | $(lat "$key" rtt_p50) / $(lat "$key" rtt_p99) |"
	done
	out ""
	out "(ms. Latency = the waiter's return minus the server clock read in the append's statement after append_event returned, just before the commit: the figures are high by at most the commit's duration, which is part of the last column (from that clock reading to the writer process's receipt of the reply). \"At the server\": clock_timestamp() as wait_for_event returned; \"at the waiter\": the waiter process's clock when the reply or notification was read. One clock: CLOCK_REALTIME of this machine.)"
	out ""
fi
if part wait; then
	out "## 3. Watermark cost (cv start, 4 writers, wal_level $wal_level, max_wal_senders $senders; tps)"
	out ""
	wm_head_extra=""
	[ "$WM_ZERO" = 1 ] && wm_head_extra=" interval 0 | ratio 0 / -1 |"
	out "| sync commit | interval -1 (never published) | interval 100 (default) | ratio 100 / -1 |$wm_head_extra"
	out "|---|---:|---:|---:|$([ "$WM_ZERO" = 1 ] && echo '---:|---:|')"
	for sync in off on; do
		extra=""
		[ "$WM_ZERO" = 1 ] && extra=" $(fmt "$(med cv:$sync:wm-0)") ($(range cv:$sync:wm-0)) | $(ratio cv:$sync:wm-0 cv:$sync:wm-never) |"
		out "| $sync | $(fmt "$(med cv:$sync:wm-never)") ($(range cv:$sync:wm-never)) | $(fmt "$(med cv:$sync:alone)") ($(range cv:$sync:alone)) | $(ratio cv:$sync:alone cv:$sync:wm-never) |$extra"
	done
	out ""
	out "Check: watermark $wm_before before a 3 s run of the writers with interval -1, $wm_never after it, $wm_after after one with the default (head $wm_head)."
	out ""
fi
if part reads; then
	out "## 4. Catching up a filtered subscription ($total events in 1,000 streams, $types types drawn uniformly; t1 has $t1_count; events table with its indexes $table_mb MB)"
	out ""
	out "| read | calls | events | ms (median of $REPS) | vs unfiltered read_all |"
	out "|---|---:|---:|---:|---:|"
	out "| read_all(p, 1000), every event | ${CALLS[es-all]} | ${EVENTS[es-all]} | $(cmed es-all) | 1.000 |"
	out "| read_all(p, 1000, '{t1}'), p := last_read_position() | ${CALLS[es-t1]} | ${EVENTS[es-t1]} | $(cmed es-t1) | $(crt es-t1 es-all) |"
	out "| plain SQL page of t1, no index on event_type | ${CALLS[sql-t1]} | ${EVENTS[sql-t1]} | $(cmed sql-t1) | $(crt sql-t1 es-all) |"
	out "| after CREATE INDEX ON event_store.events (event_type, global_position): | | | | |"
	out "| read_all(p, 1000, '{t1}') (the index unused) | ${CALLS[es-t1-idx]} | ${EVENTS[es-t1-idx]} | $(cmed es-t1-idx) | $(crt es-t1-idx es-all) |"
	out "| plain SQL page of t1, using the index | ${CALLS[sql-t1-idx]} | ${EVENTS[sql-t1-idx]} | $(cmed sql-t1-idx) | $(crt sql-t1-idx es-all) |"
	out ""
	out "Plain SQL over filtered read_all: $(crt sql-t1 es-t1) without the index, $(crt sql-t1-idx es-t1-idx) with it (time ratio; below 1 is faster). The index took $idx_s s to build and is $idx_mb MB."
	out ""
	out "Plans of the plain page: without the index: \`$plan_noidx\`; with it: \`$plan_idx\`."
	out ""
fi
# Without preload, each connection loads the installed library when it
# first calls the extension; with it, the server loaded it at the restart.
so_end=$(so_sum)
out "Build: event_store.so md5 $SO_START at the start, $SO_RESTART at the restart (the one the cv start preloaded and ran throughout), $so_end at the end."
if [ "$SO_RESTART" != "$SO_START" ]; then
	out "WARNING: the installed event_store.so changed during the poll start: its runs before and after the change used different builds."
fi
out ""
elapsed=$(($(date +%s) - STARTED))
out "The whole sitting took $((elapsed / 60)) min $((elapsed % 60)) s."
es_log "results in $RESULTS"
