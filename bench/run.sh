#!/usr/bin/env bash
# bench/run.sh: the benchmark harness.
#
#   bash bench/run.sh
#
# Sets up like scripts/test.sh (headers, build, install), starts its own
# throwaway cluster with fsync on, loads bench/setup.sql, and runs pgbench
# custom scripts (-M prepared, -j 2) for each workload, method, client count
# and synchronous_commit setting, repeating the methods interleaved
# (A B C A B C ...).  It prints a table of tps (median, min, max) with each
# method's ratio to the floor and to the hand-written baseline, writes it to
# a results file stamped with the date and commit (bench/results/), and draws
# the append workloads' chart beside it with gnuplot.
#
# Settings (environment):
#   BENCH_SECONDS    seconds per pgbench run (default 20)
#   BENCH_REPS       runs per method, interleaved (default 3)
#   BENCH_CLIENTS    client counts for the append workloads (default "1 4 16")
#   BENCH_SYNC       synchronous_commit settings (default "off on")
#   BENCH_WORKLOADS  any of: own hot rta batch notify replay readall size
#                    memory version rta1k growth (default: all)
#   BENCH_GROWTH_EVENTS  events stored before the growth run (default 10000000)
#   BENCH_SERVER_OPTS    extra server options, e.g. "-c jit_above_cost=0"
#   BENCH_RESULTS    where the results table goes (default
#                    bench/results/<date>-<commit>.md, one file per sitting)
#   BENCH_SKIP_BUILD=1   skip the headers, build and install step and use the
#                        event_store already installed (for trying the scripts)
#   ES_PORT              the throwaway cluster's port (default 55432)
#   MESSAGE_DB_SRC       a checkout of Message DB
#                        (https://github.com/message-db/message-db), to add it
#                        as a peer method ("message-db") to the version and
#                        rta1k workloads.  run.sh installs it into the bench
#                        database from that checkout's own SQL files (schema,
#                        pgcrypto, messages table, the functions write_message
#                        and stream_version need, its indexes); unset or not a
#                        checkout: the message-db methods are skipped.  Its
#                        code is not part of this repository.
#
# version: 4 clients, sync off, 1,000 streams of 5 events made beforehand;
#   each transaction reads one random stream's version: event_store
#   (stream_version), plain (the heads table's index probe; the ratio base),
#   max-version (max(version) over a bare events table indexed on
#   (stream_id, version)), message-db (message_store.stream_version).
# rta1k: read then append, 4 clients, sync off and on, on 1,000 streams each
#   in its own category (Message DB locks a whole category): hand-written,
#   event_store, message-db.  Each append goes through a PL/pgSQL wrapper
#   that catches the method's conflict error (as a client would catch it),
#   and nothing else runs per transaction.  Besides tps, records successful
#   appends per second: what the run stored, over the run's length.

source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

SECONDS_PER_RUN=${BENCH_SECONDS:-20}
REPS=${BENCH_REPS:-3}
CLIENTS=${BENCH_CLIENTS:-"1 4 16"}
SYNCS=${BENCH_SYNC:-"off on"}
WORKLOADS=${BENCH_WORKLOADS:-"own hot rta batch notify replay readall size memory version rta1k growth"}
GROWTH_EVENTS=${BENCH_GROWTH_EVENTS:-10000000}
BENCH=$ES_ROOT/bench
DB=bench
RESULTS=${BENCH_RESULTS:-$BENCH/results/$(date +%F)-$(git -C "$ES_ROOT" rev-parse --short HEAD 2>/dev/null || echo nogit).md}
mkdir -p "$(dirname "$RESULTS")"
RAW=$(mktemp /tmp/es_bench_raw.XXXXXX)

has() { [[ " $WORKLOADS " == *" $1 "* ]]; }

# The chart needs gnuplot; without it (no package archive) there is none.
command -v gnuplot >/dev/null || {
	{ apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends gnuplot-nox >/dev/null; } ||
		echo "note: gnuplot could not be installed; no chart this time"
}
CHART=${RESULTS%.md}.png

SERVER_OPTS=(-c shared_buffers=1GB -c max_wal_size=8GB
	-c checkpoint_timeout=30min -c max_connections=100 -c work_mem=4MB)
if [ "${BENCH_SKIP_BUILD:-0}" = 1 ]; then
	# es_setup without es_install_deps and es_build_install: use the
	# event_store that is already installed.
	if [ "$(id -u)" -ne 0 ]; then
		echo "run this as root (it starts a cluster as the postgres user)" >&2
		exit 1
	fi
	es_log "BENCH_SKIP_BUILD=1: using the installed event_store, not building it"
	ES_FSYNC=on es_start_cluster "${SERVER_OPTS[@]}" ${BENCH_SERVER_OPTS:-}
else
	ES_FSYNC=on es_setup "${SERVER_OPTS[@]}" ${BENCH_SERVER_OPTS:-}
fi
createdb "$DB"
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -f "$BENCH/setup.sql"

# Message DB, optional: from a checkout's own SQL files, in the order of its
# database/install.sh, install-functions.sh and install-indexes.sh, only what
# write_message and stream_version need (no role, views or grants: the bench
# connects as the superuser).  Its functions name each other and their table
# unqualified, found through the search_path; Message DB relies on its role's
# default "$user" schema for that, the bench sets search_path for its
# methods (MDB_PGOPTIONS).
MDB=""
MDB_PGOPTIONS="-c search_path=message_store,public"
MDB_DIR=${MESSAGE_DB_SRC:+$MESSAGE_DB_SRC/database}
if { has version || has rta1k; }; then
	if [ -n "${MESSAGE_DB_SRC:-}" ] && [ -f "$MDB_DIR/functions/write-message.sql" ]; then
		echo "installing Message DB $(cat "$MDB_DIR/VERSION.txt" 2>/dev/null) from $MESSAGE_DB_SRC"
		for f in schema/message-store.sql extensions/pgcrypto.sql tables/messages.sql \
			functions/message-store-version.sql functions/hash-64.sql \
			functions/acquire-lock.sql functions/category.sql \
			functions/stream-version.sql functions/write-message.sql \
			indexes/messages-id.sql indexes/messages-stream.sql \
			indexes/messages-category.sql; do
			PGOPTIONS="-c client_min_messages=warning" \
				psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -f "$MDB_DIR/$f"
		done
		MDB=1
	else
		echo "note: MESSAGE_DB_SRC ${MESSAGE_DB_SRC:+($MESSAGE_DB_SRC) }is not set or not a Message DB checkout; skipping the message-db methods"
	fi
fi

run_id=0
batch=$(cat "$BENCH/batch100.json")

# One pgbench run; prints its tps (excluding connection time).  Each run
# writes streams of its own (run id), so expected versions start from 0.
pgb() {
	local script=$1 clients=$2 sync=$3 run=$4
	shift 4
	PGOPTIONS="-c synchronous_commit=$sync ${METHOD_PGOPTIONS:-}" \
		pgbench -n -M prepared -j 2 -c "$clients" -T "$SECONDS_PER_RUN" \
		-D run="$run" -D v=0 "$@" -f "$BENCH/scripts/$script" "$DB" 2>&1 |
		awk '/^tps = / { print $3; exit } /aborted|ERROR/ { print "pgbench: " $0 >"/dev/stderr" }'
}

# Record one measurement: workload clients sync method value unit.
record() { echo "$*" >>"$RAW"; }

# Run methods interleaved, REPS times, for one workload, client count and
# synchronous_commit setting.  Each method is "name=script".
interleave() {
	local workload=$1 clients=$2 sync=$3
	shift 3
	local rep pair name script tps
	for rep in $(seq "$REPS"); do
		for pair in "$@"; do
			name=${pair%%=*}
			script=${pair#*=}
			METHOD_PGOPTIONS=""
			if [[ $name == *+notify ]]; then
				METHOD_PGOPTIONS="-c event_store.notify=on"
			elif [[ $name == message-db* ]]; then
				METHOD_PGOPTIONS=$MDB_PGOPTIONS
			fi
			run_id=$((run_id + 1))
			tps=$(pgb "$script" "$clients" "$sync" "$run_id" ${PGB_ARGS[@]+"${PGB_ARGS[@]}"})
			echo "  $workload c=$clients sync=$sync $name run $rep: $tps tps"
			record "$workload $clients $sync ${name// /=} ${tps:-0} tps"
			if [ -n "${RUN_OUTCOMES:-}" ]; then
				# Successful appends per second: what the run stored, over
				# the run's length.
				local ok
				ok=$(psql -X -At -d "$DB" -c "SELECT bench.rta1k_stored('$name', $run_id)")
				echo "  $workload c=$clients sync=$sync $name run $rep: $ok appends succeeded"
				record "$workload $clients $sync ${name// /=} $(awk -v o="$ok" -v t="$SECONDS_PER_RUN" \
					'BEGIN { printf "%.1f", o / t }') ok-appends/s"
			fi
		done
	done
}

PGB_ARGS=()

# Growth, first half: appends into a store that is still empty.
if has growth; then
	for sync in $SYNCS; do
		interleave growth 4 "$sync" "empty store=own_es.sql"
	done
fi

for sync in $SYNCS; do
	for c in $CLIENTS; do
		if has own; then
			interleave own "$c" "$sync" floor=own_floor.sql hand-written=own_hw.sql \
				event_store=own_es.sql
		fi
		if has hot; then
			interleave hot "$c" "$sync" floor=hot_floor.sql hand-written=hot_hw.sql \
				event_store=hot_es.sql
		fi
	done
done

if has notify; then
	for sync in $SYNCS; do
		interleave notify 4 "$sync" event_store=own_es.sql \
			"event_store+notify=own_es.sql"
	done
fi

if has rta; then
	for sync in $SYNCS; do
		psql -X -q -d "$DB" -c "TRUNCATE bench.rta_outcomes"
		interleave rta 4 "$sync" floor=rta_floor.sql hand-written=rta_hw.sql \
			event_store=rta_es.sql
		psql -X -At -d "$DB" -F ' ' -c "SELECT method, count(*) FILTER (WHERE ok), count(*) FROM bench.rta_outcomes GROUP BY method" |
			while read -r m ok all; do
				record "rta_outcome 4 $sync $m $ok/$all ok"
			done
	done
fi

if has batch; then
	PGB_ARGS=(-D "batch=$batch")
	for sync in $SYNCS; do
		interleave batch 4 "$sync" floor=batch_floor.sql hand-written=batch_hw.sql \
			event_store=batch_es.sql
	done
	PGB_ARGS=()
fi

if has replay || has readall || has memory; then
	echo "loading streams for the read workloads"
	psql -X -q -v ON_ERROR_STOP=1 -d "$DB" <<'SQL'
SELECT event_store.append_events('replay-1k', -2,
	(SELECT jsonb_agg(jsonb_build_object('type', 'Bench', 'data', jsonb_build_object('i', i, 'pad', repeat('x', 150))))
	   FROM generate_series(1, 1000) i));
SELECT count(event_store.append_events('replay-100k', -2,
	(SELECT jsonb_agg(jsonb_build_object('type', 'Bench', 'data', jsonb_build_object('i', i, 'pad', repeat('x', 150))))
	   FROM generate_series(1, 1000) i)))
  FROM generate_series(1, 100);
VACUUM ANALYZE event_store.events;
SQL
fi

if has replay; then
	interleave replay-1k 4 off event_store=replay1k_es.sql plain=replay1k_plain.sql
	interleave replay-100k 4 off event_store=replay100k_es.sql plain=replay100k_plain.sql
	# The plans the replay ran with, as pgbench ran them (prepared, past the
	# five custom plans), with timings and buffers, for bench/explain.txt.
	{
		for f in replay1k_es replay1k_plain; do
			echo "== $f"
			q=$(grep -v '^--' "$BENCH/scripts/$f.sql" | tr '\n' ' ' | sed 's/;[[:space:]]*$//')
			psql -X -q -d "$DB" <<SQL
PREPARE q AS $q;
$(for i in 1 2 3 4 5 6 7 8; do echo "EXECUTE q \\g /dev/null"; done)
EXPLAIN (ANALYZE, BUFFERS, VERBOSE) EXECUTE q;
SQL
		done
	} >"$BENCH/explain.txt" 2>&1
fi

if has readall; then
	maxp=$(psql -X -At -d "$DB" -c "SELECT max(global_position) - 1000 FROM event_store.events")
	PGB_ARGS=(-D "maxp=$maxp")
	interleave readall 4 off event_store=readall_es.sql plain=readall_plain.sql
	PGB_ARGS=()
fi

if has size; then
	psql -X -At -d "$DB" -F ' ' <<'SQL' | while read -r m bytes; do record "size 0 - $m $bytes bytes/event"; done
SELECT 'floor', round(pg_total_relation_size('bench.floor_events')::numeric
			/ NULLIF((SELECT count(*) FROM bench.floor_events), 0))
UNION ALL
SELECT 'hand-written', round((pg_total_relation_size('bench.hw_events')
			+ pg_total_relation_size('bench.hw_streams'))::numeric
			/ NULLIF((SELECT count(*) FROM bench.hw_events), 0))
UNION ALL
SELECT 'event_store', round((pg_total_relation_size('event_store.events')
			+ pg_total_relation_size('event_store.streams'))::numeric
			/ NULLIF((SELECT count(*) FROM event_store.events), 0));
SQL
fi

if has memory; then
	echo "memory: replaying a 1,000,000-event stream in one call"
	psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c "SELECT count(event_store.append_events('replay-1m', -2,
		(SELECT jsonb_agg(jsonb_build_object('type', 'Bench', 'data', jsonb_build_object('i', i, 'pad', repeat('x', 150))))
		   FROM generate_series(1, 1000) i))) FROM generate_series(1, 1000)" >/dev/null
	psql -X -q -d "$DB" -c "VACUUM ANALYZE event_store.events"
	mem=$(psql -X -At -d "$DB" <<'SQL'
SELECT pg_backend_pid() AS pid \gset
\setenv ES_PID :pid
SELECT count(*) FROM event_store.read_stream('replay-1m') \gset
\! awk '/^(VmHWM|RssAnon|RssShmem):/ { printf "%s%s ", $1, $2 }' /proc/$ES_PID/status
SQL
)
	record "memory 1 - event_store $(echo "$mem" | tr -d '\n') kB"
fi

if has version; then
	echo "version: loading 1,000 streams of 5 events"
	payload='{"customer": {"id": 12345, "name": "Jane Doe", "email": "jane@example.com"}, "items": [{"sku": "A-100", "qty": 2, "price": 19.99}, {"sku": "B-200", "qty": 1, "price": 5.49}], "total": 45.47, "currency": "EUR"}'
	psql -X -q -v ON_ERROR_STOP=1 -v payload="$payload" -d "$DB" <<'SQL'
SELECT count(event_store.append_events('ver-' || s, 0,
	(SELECT jsonb_agg(jsonb_build_object('type', 'Bench', 'data', :'payload'::jsonb))
	   FROM generate_series(1, 5))))
  FROM generate_series(1, 1000) s \g /dev/null
INSERT INTO bench.floor_events (stream_id, version, event_id, event_type, data)
SELECT 'ver-' || s, v, gen_random_uuid(), 'Bench', :'payload'::jsonb
  FROM generate_series(1, 1000) s, generate_series(1, 5) v;
VACUUM ANALYZE event_store.streams;
VACUUM ANALYZE event_store.events;
VACUUM ANALYZE bench.floor_events;
SQL
	methods=(plain=version_plain.sql max-version=version_max.sql event_store=version_es.sql)
	if [ -n "$MDB" ]; then
		# Positions 0 to 4, each written expecting the one before (-1: a
		# new stream).
		PGOPTIONS=$MDB_PGOPTIONS psql -X -q -v ON_ERROR_STOP=1 -v payload="$payload" -d "$DB" <<'SQL'
SELECT set_config('bench.payload', :'payload', false) \g /dev/null
DO $$
BEGIN
	FOR s IN 1..1000 LOOP
		FOR p IN 0..4 LOOP
			PERFORM message_store.write_message(gen_random_uuid()::varchar,
				'ver-' || s, 'Bench', current_setting('bench.payload')::jsonb,
				NULL, p - 1);
		END LOOP;
	END LOOP;
END $$;
VACUUM ANALYZE message_store.messages;
SQL
		methods+=(message-db=version_mdb.sql)
	fi
	interleave version 4 off "${methods[@]}"
fi

if has rta1k; then
	methods=(hand-written=rta1k_hw.sql event_store=rta1k_es.sql)
	[ -n "$MDB" ] && methods+=(message-db=rta1k_mdb.sql)
	RUN_OUTCOMES=1
	for sync in $SYNCS; do
		interleave rta1k 4 "$sync" "${methods[@]}"
	done
	RUN_OUTCOMES=""
fi

if has growth; then
	echo "growth: storing $GROWTH_EVENTS events"
	psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c "SELECT count(event_store.append_events('growth-' || g, -2,
		(SELECT jsonb_agg(jsonb_build_object('type', 'Bench', 'data', jsonb_build_object('g', g, 'i', i, 'pad', repeat('x', 150))))
		   FROM generate_series(1, 1000) i))) FROM generate_series(1, $GROWTH_EVENTS / 1000) g" >/dev/null
	psql -X -q -d "$DB" -c "VACUUM ANALYZE event_store.events"
	for sync in $SYNCS; do
		interleave growth 4 "$sync" "$GROWTH_EVENTS stored=own_es.sql"
	done
fi

# Summarize: median, min, max per workload/clients/sync/method, with ratios.
python3 - "$RAW" "$RESULTS" <<'PY'
import sys, statistics, collections
raw, out = sys.argv[1], sys.argv[2]
runs = collections.OrderedDict()
other = []
for line in open(raw):
    parts = line.split()
    w, c, s, m, v, unit = parts[0], parts[1], parts[2], parts[3], parts[4], " ".join(parts[5:])
    if unit in ("tps", "ok-appends/s"):
        if unit != "tps":
            w = f"{w} ({unit})"
        runs.setdefault((w, c, s), collections.OrderedDict()).setdefault(m, []).append(float(v))
    else:
        other.append((w, c, s, m, v, unit))
lines = ["| workload | clients | sync commit | method | median tps | min | max | vs floor (or first) | vs hand-written |",
         "|---|---:|---|---|---:|---:|---:|---:|---:|"]
for (w, c, s), methods in runs.items():
    med = {m: statistics.median(v) for m, v in methods.items()}
    base = med.get("floor") or med.get("plain") or next(iter(med.values()))
    hw = med.get("hand-written")
    for m, v in methods.items():
        r1 = f"{med[m] / base:.2f}x" if base else ""
        r2 = f"{med[m] / hw:.2f}x" if hw else ""
        lines.append(f"| {w} | {c} | {s} | {m.replace('=', ' ')} | {med[m]:.0f} | {min(v):.0f} | {max(v):.0f} | {r1} | {r2} |")
for w, c, s, m, v, unit in other:
    lines.append(f"| {w} | {c if c != '0' else ''} | {s if s != '-' else ''} | {m} | {v} {unit} | | | | |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY

# Chart: median tps of the append workloads, as ratios to the floor.
python3 - "$RAW" "$BENCH/results.dat" <<'PY'
import sys, statistics, collections
raw, out = sys.argv[1], sys.argv[2]
runs = collections.OrderedDict()
for line in open(raw):
    p = line.split()
    if p[5:] == ["tps"] and p[0] in ("own", "hot", "batch", "rta"):
        runs.setdefault((p[0], p[1], p[2]), {}).setdefault(p[3], []).append(float(p[4]))
with open(out, "w") as f:
    for (w, c, s), m in runs.items():
        fl = statistics.median(m.get("floor", [0])) or 1
        hw = statistics.median(m.get("hand-written", [0])) / fl
        es = statistics.median(m.get("event_store", [0])) / fl
        f.write(f'"{w} c{c} {s}" 1.0 {hw:.3f} {es:.3f}\n')
PY
if [ -s "$BENCH/results.dat" ] && command -v gnuplot >/dev/null; then
	gnuplot <<EOF
set terminal pngcairo size 1100,500 noenhanced
set output "$CHART"
set title "Appends: tps as a ratio of a bare INSERT (floor = 1.0)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set xtics rotate by -30
set key top right
set grid ytics
plot "$BENCH/results.dat" using 2:xtic(1) title "floor", \
     "" using 3 title "hand-written PL/pgSQL", \
     "" using 4 title "event_store"
EOF
fi
rm -f "$BENCH/results.dat" "$RAW"
echo "wrote $RESULTS (and $CHART when append workloads ran)"
