#!/usr/bin/env bash
# bench/lifecycle.sh: what the stream lifecycle costs, as ratios measured in
# one sitting, in one throwaway cluster with fsync on.
#
#   bash bench/lifecycle.sh
#
# Sets up as bench/run.sh does (BENCH_SKIP_BUILD=1 uses the installed
# build), then, each pgbench comparison interleaved BENCH_REPS times for
# BENCH_SECONDS each (medians reported):
#
#   append    4 clients, sync off, appends with no check to random existing
#             streams (2,000 streams): a database on 0.3.0's SQL (the
#             previous append), one on 0.4.0 with nothing hidden, and one on
#             0.4.0 with 10% of the streams soft-deleted and 10% truncated
#             (so appends also go to deleted and truncated streams).
#   replay    read_stream of a 2,000-event stream truncated before 1,001
#             against read_stream of an untruncated one from 1,001 (both
#             return 1,000 events).
#   log       read_all pages of 1,000 and read_category pages of 1,000: the
#             same events (200,000 in 2,000 streams, 20 categories, appended
#             round-robin, one event per stream per round) with nothing
#             hidden, with 10% of the streams truncated at half their
#             length, and with 10% soft-deleted; the same after purge; and a
#             catch-up of the whole log in pages of 1,000 (a projection
#             starting from 0), timed.
#   purge     purge of the hidden events of 10% soft-deleted streams
#             (BENCH_PURGE_EVENTS in all) while 4 writers append: at full
#             speed (batches of 50,000), and throttled to BENCH_PURGE_RATE
#             events a second (default 50,000; batches of 5,000); the
#             writers' tps against runs with no purge, and events removed
#             per second.
#   size      the events table's size after purge and VACUUM, after VACUUM
#             FULL, and after appending as many events again as were purged,
#             against a store that never held the purged events.
#
#   tail      (with log) read_all and read_category pages from random
#             positions among 20,000 events appended after the streams were
#             hidden, as a consumer following the log's head reads.
#
# Settings: BENCH_PARTS (default "append replay log purge"),
# BENCH_SECONDS (default 15), BENCH_REPS (default 3),
# BENCH_PURGE_EVENTS (default 500000), BENCH_RESULTS (default
# bench/results/<date>-<commit>-lifecycle.md), ES_PORT (default 55433).

source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

SECONDS_PER_RUN=${BENCH_SECONDS:-15}
REPS=${BENCH_REPS:-3}
PURGE_EVENTS=${BENCH_PURGE_EVENTS:-500000}
PURGE_RATE=${BENCH_PURGE_RATE:-50000}
PARTS=${BENCH_PARTS:-"append replay log purge"}
part() { [[ " $PARTS " == *" $1 "* ]]; }
BENCH=$ES_ROOT/bench
RESULTS=${BENCH_RESULTS:-$BENCH/results/$(date +%F)-$(git -C "$ES_ROOT" rev-parse --short HEAD 2>/dev/null || echo nogit)-lifecycle.md}
mkdir -p "$(dirname "$RESULTS")"
SCRIPTS=$(mktemp -d /tmp/es_lifecycle_bench.XXXXXX)
export ES_PORT=${ES_PORT:-55433}

SERVER_OPTS=(-c shared_buffers=1GB -c max_wal_size=8GB
	-c checkpoint_timeout=30min -c max_connections=100 -c work_mem=4MB
	-c autovacuum=off)
if [ "${BENCH_SKIP_BUILD:-0}" = 1 ]; then
	ES_FSYNC=on es_start_cluster "${SERVER_OPTS[@]}"
else
	ES_FSYNC=on es_setup "${SERVER_OPTS[@]}"
fi

q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

PAYLOAD='{"customer": {"id": 12345, "name": "Jane Doe", "email": "jane@example.com"}, "items": [{"sku": "A-100", "qty": 2, "price": 19.99}], "total": 45.47}'

# Streams s-<cat>-<i>: 2,000 streams of 100 events in 20 categories, loaded
# in batches of 100 (one append per stream).
load_streams() {
	local db=$1 per=${2:-100}
	q -d "$db" -c "SELECT count(event_store.append_events('c' || (i % 20) || '-' || i, 0,
		(SELECT jsonb_agg(jsonb_build_object('type', 'Bench', 'data', '$PAYLOAD'::jsonb))
		   FROM generate_series(1, $per))))
		FROM generate_series(1, 2000) i" >/dev/null
}

# The same 2,000 streams, appended round-robin: one event per stream per
# round, so that the log interleaves the streams as a live store does.
load_interleaved() {
	local db=$1 rounds=${2:-100} r
	for r in $(seq "$rounds"); do
		q -d "$db" -c "SELECT count(event_store.append_event('c' || (i % 20) || '-' || i, -2,
			'Bench', '$PAYLOAD')) FROM generate_series(1, 2000) i" >/dev/null
	done
}

# Hide: 10% of the streams truncated at half their length, or soft-deleted,
# spread over every category (stream i is in category i % 20).
truncate_tenth() { q -d "$1" -c "SELECT count(event_store.truncate_stream('c' || (i % 20) || '-' || i, ${2:-51}))
	FROM generate_series(1, 2000) i WHERE (i / 20) % 10 = 3" >/dev/null; }
delete_tenth() { q -d "$1" -c "SELECT count(event_store.delete_stream('c' || (i % 20) || '-' || i, -2))
	FROM generate_series(1, 2000) i WHERE (i / 20) % 10 = 7" >/dev/null; }

# One pgbench run of a script file against a database; prints tps.
pgb() {
	local db=$1 script=$2 clients=$3
	shift 3
	PGOPTIONS="-c synchronous_commit=off" \
		pgbench -n -M prepared -j 2 -c "$clients" -T "$SECONDS_PER_RUN" "$@" \
		-f "$script" "$db" 2>&1 |
		awk '/^tps = / { print $3; exit } /aborted|ERROR/ { print "pgbench: " $0 >"/dev/stderr" }'
}

median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -A RUNS
# Run "label=db=script" methods interleaved REPS times; keep every tps.
interleave() {
	local clients=$1
	shift
	local rep m label db script tps
	for rep in $(seq "$REPS"); do
		for m in "$@"; do
			IFS='=' read -r label db script <<<"$m"
			tps=$(pgb "$db" "$script" "$clients")
			echo "  $label run $rep: $tps tps"
			RUNS[$label]="${RUNS[$label]:-} $tps"
		done
	done
}
med() { tr ' ' '\n' <<<"${RUNS[$1]}" | grep . | median; }
ratio() { awk -v a="$(med "$1")" -v b="$(med "$2")" 'BEGIN { printf "%.3f", a / b }'; }

out() { echo "$*" | tee -a "$RESULTS"; }
: >"$RESULTS"
out "# Lifecycle benchmark, $(date +%F), commit $(git -C "$ES_ROOT" rev-parse --short HEAD 2>/dev/null)"
out ""
out "PostgreSQL $(q -d postgres -c 'SHOW server_version'), fsync on, synchronous_commit off, $(nproc) CPUs; $REPS interleaved runs of ${SECONDS_PER_RUN} s each, medians."
out ""

# ---- append
if part append; then
es_log "append: 0.3.0, 0.4.0, and 0.4.0 with 10% of the streams deleted and 10% truncated"
for db in app03 app04 app04h; do createdb "$db"; done
q -d app03 -c "CREATE EXTENSION event_store VERSION '0.3.0'"
q -d app04 -c "CREATE EXTENSION event_store"
q -d app04h -c "CREATE EXTENSION event_store"
for db in app03 app04 app04h; do load_streams "$db" 10; done
truncate_tenth app04h 6
delete_tenth app04h
cat >"$SCRIPTS/append.sql" <<EOF
\set s random(1, 2000)
SELECT event_store.append_event('c' || (:s % 20) || '-' || :s, -2, 'Bench', '$PAYLOAD');
EOF
for db in app03 app04 app04h; do q -d "$db" -c "VACUUM ANALYZE"; done
interleave 4 "0.3.0=app03=$SCRIPTS/append.sql" "0.4.0=app04=$SCRIPTS/append.sql" \
	"0.4.0-hidden=app04h=$SCRIPTS/append.sql"
out "## Single appends (4 clients, random existing streams, no check)"
out ""
out "| store | tps (median) | ratio |"
out "|---|---:|---:|"
out "| 0.3.0 (the previous append) | $(med 0.3.0) | 1.000 |"
out "| 0.4.0, nothing hidden | $(med 0.4.0) | $(ratio 0.4.0 0.3.0) |"
out "| 0.4.0, 10% deleted + 10% truncated | $(med 0.4.0-hidden) | $(ratio 0.4.0-hidden 0.3.0) (vs nothing hidden: $(ratio 0.4.0-hidden 0.4.0)) |"
out ""
fi

# ---- replay
if part replay; then
es_log "replay: truncated at 1,001 against read from 1,001"
createdb replay
q -d replay -c "CREATE EXTENSION event_store"
for s in trunc plain; do
	q -d replay -c "SELECT event_store.append_events('$s', 0,
		(SELECT jsonb_agg(jsonb_build_object('type', 'Bench', 'data', '$PAYLOAD'::jsonb))
		   FROM generate_series(1, 2000)))" >/dev/null
done
q -d replay -c "SELECT event_store.truncate_stream('trunc', 1001)" >/dev/null
q -d replay -c "VACUUM ANALYZE"
echo "SELECT * FROM event_store.read_stream('trunc');" >"$SCRIPTS/replay_trunc.sql"
echo "SELECT * FROM event_store.read_stream('plain', 1001);" >"$SCRIPTS/replay_from.sql"
[ "$(q -d replay -c "SELECT count(*) FROM event_store.read_stream('trunc')")" = 1000 ] ||
	{ echo "replay: the truncated stream does not return 1,000 events" >&2; exit 1; }
interleave 2 "from-1001=replay=$SCRIPTS/replay_from.sql" "truncated=replay=$SCRIPTS/replay_trunc.sql"
out "## read_stream of a stream truncated before 1,001 (2 clients, 1,000 events returned)"
out ""
out "| read | tps (median) | ratio |"
out "|---|---:|---:|"
out "| read_stream('plain', 1001) | $(med from-1001) | 1.000 |"
out "| read_stream('trunc') | $(med truncated) | $(ratio truncated from-1001) |"
out ""
fi

# ---- log
if part log; then
es_log "log: read_all and read_category with nothing, 10% truncated, 10% deleted"
for db in log0 logt logd; do
	createdb "$db"
	q -d "$db" -c "CREATE EXTENSION event_store"
	load_interleaved "$db" 100
	q -d "$db" -c "CREATE FUNCTION catchup() RETURNS numeric LANGUAGE plpgsql AS \$f\$
		DECLARE p bigint := 0; n bigint; last bigint; t timestamptz := clock_timestamp();
		BEGIN
			LOOP
				SELECT count(*), max(global_position) INTO n, last FROM event_store.read_all(p, 1000);
				EXIT WHEN n = 0;
				p := last;
			END LOOP;
			RETURN round(extract(epoch FROM clock_timestamp() - t) * 1000, 1);
		END \$f\$"
done
truncate_tenth logt
delete_tenth logd
for db in log0 logt logd; do q -d "$db" -c "VACUUM ANALYZE"; done
maxp=$(q -d log0 -c "SELECT max(global_position) - 20000 FROM event_store.events")
cat >"$SCRIPTS/readall.sql" <<EOF
\set p random(0, $maxp)
SELECT count(*) FROM event_store.read_all(:p, 1000);
EOF
cat >"$SCRIPTS/readcat.sql" <<EOF
\set c random(0, 19)
\set p random(0, $maxp)
SELECT count(*) FROM event_store.read_category('c' || :c, :p, 1000);
EOF
interleave 2 "all-none=log0=$SCRIPTS/readall.sql" "all-trunc=logt=$SCRIPTS/readall.sql" \
	"all-del=logd=$SCRIPTS/readall.sql"
interleave 2 "cat-none=log0=$SCRIPTS/readcat.sql" "cat-trunc=logt=$SCRIPTS/readcat.sql" \
	"cat-del=logd=$SCRIPTS/readcat.sql"
out "## read_all and read_category pages (2 clients; 200,000 events in 2,000 streams, 20 categories)"
out ""
out "| read | nothing hidden | 10% of streams truncated at half | ratio | 10% soft-deleted | ratio |"
out "|---|---:|---:|---:|---:|---:|"
out "| read_all(p, 1000) | $(med all-none) | $(med all-trunc) | $(ratio all-trunc all-none) | $(med all-del) | $(ratio all-del all-none) |"
out "| read_category(c, p, 1000) | $(med cat-none) | $(med cat-trunc) | $(ratio cat-trunc cat-none) | $(med cat-del) | $(ratio cat-del cat-none) |"
out ""
out "(A page returns 1,000 visible events: with events hidden, a page spans more rows, which the scan passes.)"
out ""

# A projection catching up from 0: the whole log in pages of 1,000.
declare -A CATCHUP
for rep in $(seq "$REPS"); do
	for db in log0 logt logd; do
		ms=$(q -d "$db" -c "SELECT catchup()")
		echo "  catch-up $db run $rep: $ms ms"
		CATCHUP[$db]="${CATCHUP[$db]:-} $ms"
	done
done
cmed() { tr ' ' '\n' <<<"${CATCHUP[$1]}" | grep . | median; }
crt() { awk -v a="$(cmed "$1")" -v b="$(cmed "$2")" 'BEGIN { printf "%.3f", a / b }'; }
out "Catching up from position 0 with read_all pages of 1,000 (the whole log; time, median of $REPS; ratio = nothing hidden / this):"
out ""
out "| store | events delivered | ms | ratio |"
out "|---|---:|---:|---:|"
for db in log0 logt logd; do
	delivered=$(q -d "$db" -c "SELECT count(*) FROM event_store.read_all(0, NULL)")
	out "| $db | $delivered | $(cmed $db) | $(crt log0 "$db") |"
done
out ""

# A consumer following the head: pages among 20,000 events appended after
# the streams were hidden.
tail0=$(q -d log0 -c "SELECT max(global_position) FROM event_store.events")
for db in log0 logt logd; do load_interleaved "$db" 10; done
for db in log0 logt logd; do q -d "$db" -c "VACUUM ANALYZE"; done
cat >"$SCRIPTS/tailall.sql" <<EOF
\set p random($tail0, $tail0 + 19000)
SELECT count(*) FROM event_store.read_all(:p, 1000);
EOF
cat >"$SCRIPTS/tailcat.sql" <<EOF
\set c random(0, 19)
\set p random($tail0, $tail0 + 1000)
SELECT count(*) FROM event_store.read_category('c' || :c, :p, 1000);
EOF
interleave 2 "tall-none=log0=$SCRIPTS/tailall.sql" "tall-trunc=logt=$SCRIPTS/tailall.sql" \
	"tall-del=logd=$SCRIPTS/tailall.sql"
interleave 2 "tcat-none=log0=$SCRIPTS/tailcat.sql" "tcat-trunc=logt=$SCRIPTS/tailcat.sql" \
	"tcat-del=logd=$SCRIPTS/tailcat.sql"
out "Following the head: pages among the 20,000 events appended after the streams were hidden:"
out ""
out "| read | nothing hidden | 10% truncated | ratio | 10% deleted | ratio |"
out "|---|---:|---:|---:|---:|---:|"
out "| read_all(p, 1000) | $(med tall-none) | $(med tall-trunc) | $(ratio tall-trunc tall-none) | $(med tall-del) | $(ratio tall-del tall-none) |"
out "| read_category(c, p, 1000) | $(med tcat-none) | $(med tcat-trunc) | $(ratio tcat-trunc tcat-none) | $(med tcat-del) | $(ratio tcat-del tcat-none) |"
out ""

# The same after purge removed the hidden events.
for db in logt logd; do
	while [ "$(q -d "$db" -c "SELECT event_store.purge(50000)")" = 50000 ]; do :; done
	q -d "$db" -c "VACUUM ANALYZE"
done
interleave 2 "all-none2=log0=$SCRIPTS/readall.sql" "all-trunc-purged=logt=$SCRIPTS/readall.sql" \
	"all-del-purged=logd=$SCRIPTS/readall.sql"
interleave 2 "cat-none2=log0=$SCRIPTS/readcat.sql" "cat-trunc-purged=logt=$SCRIPTS/readcat.sql" \
	"cat-del-purged=logd=$SCRIPTS/readcat.sql"
out "After purge and VACUUM (the hidden events removed; the streams still hide, so every row is still checked):"
out ""
out "| read | nothing hidden | 10% truncated, purged | ratio | 10% deleted, purged | ratio |"
out "|---|---:|---:|---:|---:|---:|"
out "| read_all(p, 1000) | $(med all-none2) | $(med all-trunc-purged) | $(ratio all-trunc-purged all-none2) | $(med all-del-purged) | $(ratio all-del-purged all-none2) |"
out "| read_category(c, p, 1000) | $(med cat-none2) | $(med cat-trunc-purged) | $(ratio cat-trunc-purged cat-none2) | $(med cat-del-purged) | $(ratio cat-del-purged cat-none2) |"
out ""
fi

# ---- purge and size
if part purge; then
es_log "purge: $PURGE_EVENTS hidden events, 4 writers"
per=$((PURGE_EVENTS / 200))
for db in purge never; do
	createdb "$db"
	q -d "$db" -c "CREATE EXTENSION event_store"
done
# purge: 2,000 streams of $per events, 10% of them deleted.  never: the
# same streams, the deleted ones never written.
q -d purge -c "SELECT count(event_store.append_events('p-' || i, 0,
	(SELECT jsonb_agg(jsonb_build_object('type', 'Bench', 'data', '$PAYLOAD'::jsonb))
	   FROM generate_series(1, $per))))
	FROM generate_series(1, 2000) i" >/dev/null
q -d never -c "SELECT count(event_store.append_events('p-' || i, 0,
	(SELECT jsonb_agg(jsonb_build_object('type', 'Bench', 'data', '$PAYLOAD'::jsonb))
	   FROM generate_series(1, $per))))
	FROM generate_series(1, 2000) i WHERE i % 10 <> 7" >/dev/null
q -d purge -c "SELECT count(event_store.delete_stream('p-' || i, -2)) FROM generate_series(1, 2000) i WHERE i % 10 = 7" >/dev/null
for db in purge never; do q -d "$db" -c "VACUUM ANALYZE"; done
hidden=$(q -d purge -c "SELECT count(*) FROM event_store.events e JOIN event_store.streams s USING (stream_id) WHERE e.version < s.visible_from")
cat >"$SCRIPTS/writer.sql" <<EOF
\set s random(1, 2000)
SELECT event_store.append_event('w-' || :s, -2, 'Bench', '$PAYLOAD');
EOF
size() { q -d "$1" -c "SELECT pg_total_relation_size('event_store.events')"; }
before_size=$(size purge)
never_size=$(size never)

# Writers alone, then writers beside the purge, then alone again.
alone1=$(pgb purge "$SCRIPTS/writer.sql" 4)
pgb purge "$SCRIPTS/writer.sql" 4 >"$SCRIPTS/beside.tps" &
writers=$!
sleep 1
start=$(date +%s.%N)
removed=0
while :; do
	n=$(q -d purge -c "SELECT event_store.purge(50000)")
	removed=$((removed + n))
	[ "$n" -lt 50000 ] && break
done
end=$(date +%s.%N)
wait "$writers"
beside=$(cat "$SCRIPTS/beside.tps")
alone2=$(pgb purge "$SCRIPTS/writer.sql" 4)
rate=$(awk -v n="$removed" -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", n / (b - a) }')
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
alone=$(printf '%s\n%s\n' "$alone1" "$alone2" | median)
[ "$removed" = "$hidden" ] || { echo "purge removed $removed events, $hidden were hidden" >&2; exit 1; }

out "## purge beside 4 writers"
out ""
out "| measure | value |"
out "|---|---:|"
out "| hidden events removed | $removed (all $hidden) |"
out "| time | $secs s |"
out "| events removed per second | $rate |"
out "| writers' tps alone (before, after) | $alone1, $alone2 |"
out "| writers' tps beside the purge (a ${SECONDS_PER_RUN} s run that covers it) | $beside |"
out "| ratio beside / alone | $(awk -v a="$beside" -v b="$alone" 'BEGIN { printf "%.3f", a / b }') |"
out ""

# Throttled: the same again (the deleted streams made anew), purged at a
# set rate beside the writers.
q -d purge -c "SELECT count(event_store.append_events('q-' || i, 0,
	(SELECT jsonb_agg(jsonb_build_object('type', 'Bench', 'data', '$PAYLOAD'::jsonb))
	   FROM generate_series(1, $per))))
	FROM generate_series(1, 200) i" >/dev/null
q -d purge -c "SELECT count(event_store.delete_stream('q-' || i, -2)) FROM generate_series(1, 200) i" >/dev/null
q -d purge -c "VACUUM ANALYZE event_store.events"
talone1=$(pgb purge "$SCRIPTS/writer.sql" 4)
# One session purges in batches, committing each, and sleeps what is left of
# each batch's share of a second.
q -d purge -c "CREATE PROCEDURE throttled_purge(rate integer, batch integer, INOUT removed bigint, INOUT seconds numeric)
	LANGUAGE plpgsql AS \$p\$
	DECLARE n bigint; t0 timestamptz; start timestamptz := clock_timestamp();
	BEGIN
		removed := 0;
		LOOP
			t0 := clock_timestamp();
			n := event_store.purge(batch);
			removed := removed + n;
			COMMIT;
			EXIT WHEN n < batch;
			PERFORM pg_sleep(greatest(0, batch::numeric / rate
				- extract(epoch FROM clock_timestamp() - t0)));
		END LOOP;
		seconds := round(extract(epoch FROM clock_timestamp() - start)::numeric, 1);
	END \$p\$"
pgb purge "$SCRIPTS/writer.sql" 4 >"$SCRIPTS/throttled.tps" &
writers=$!
sleep 1
batch=5000
read -r tremoved tsecs < <(q -F ' ' -d purge -c "CALL throttled_purge($PURGE_RATE, $batch, 0, 0)")
wait "$writers"
throttled=$(cat "$SCRIPTS/throttled.tps")
talone2=$(pgb purge "$SCRIPTS/writer.sql" 4)
talone=$(printf '%s\n%s\n' "$talone1" "$talone2" | median)
trate=$(awk -v n="$tremoved" -v t="$tsecs" 'BEGIN { printf "%.0f", n / t }')
out "Throttled to $PURGE_RATE events a second (batches of $batch):"
out ""
out "| measure | value |"
out "|---|---:|"
out "| events removed | $tremoved in $tsecs s: $trate per second |"
out "| writers' tps alone (before, after) | $talone1, $talone2 |"
out "| writers' tps beside the purge (a ${SECONDS_PER_RUN} s run; the purge covers $tsecs s of it) | $throttled |"
out "| ratio beside / alone | $(awk -v a="$throttled" -v b="$talone" 'BEGIN { printf "%.3f", a / b }') |"
out ""

q -d purge -c "VACUUM event_store.events"
after_vacuum=$(size purge)
# The writers above stored events in both databases' comparison? No: only in
# purge; so compare against never plus the same writes.
written=$(q -d purge -c "SELECT count(*) FROM event_store.events WHERE stream_id LIKE 'w-%'")
q -d never -c "SELECT count(event_store.append_events('w-x' || i, 0,
	(SELECT jsonb_agg(jsonb_build_object('type', 'Bench', 'data', '$PAYLOAD'::jsonb))
	   FROM generate_series(1, 100))))
	FROM generate_series(1, ($written + 99) / 100) i" >/dev/null
q -d never -c "VACUUM event_store.events"
never_size=$(size never)
# Refill: as many events again as were purged, into the freed space.
q -d purge -c "SELECT count(event_store.append_events('r-' || i, 0,
	(SELECT jsonb_agg(jsonb_build_object('type', 'Bench', 'data', '$PAYLOAD'::jsonb))
	   FROM generate_series(1, 100))))
	FROM generate_series(1, ($removed + 99) / 100) i" >/dev/null
after_refill=$(size purge)
q -d never -c "SELECT count(event_store.append_events('r-' || i, 0,
	(SELECT jsonb_agg(jsonb_build_object('type', 'Bench', 'data', '$PAYLOAD'::jsonb))
	   FROM generate_series(1, 100))))
	FROM generate_series(1, ($removed + 99) / 100) i" >/dev/null
never_refill=$(size never)
q -d purge -c "VACUUM FULL event_store.events"
q -d never -c "VACUUM FULL event_store.events"
after_full=$(size purge)
never_full=$(size never)
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1048576 }'; }
rt() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
out "## Size of event_store.events (with indexes and TOAST)"
out ""
out "| when | after purge | never held them | ratio |"
out "|---|---:|---:|---:|"
out "| before purge | $(mb "$before_size") | | |"
out "| after purge and VACUUM | $(mb "$after_vacuum") | $(mb "$never_size") | $(rt "$after_vacuum" "$never_size") |"
out "| after appending $removed events more | $(mb "$after_refill") | $(mb "$never_refill") | $(rt "$after_refill" "$never_refill") |"
out "| after VACUUM FULL | $(mb "$after_full") | $(mb "$never_full") | $(rt "$after_full" "$never_full") |"
out ""
out "(VACUUM makes the purged rows' space reusable but does not shrink the file when the rows were spread through it; appends then fill that space.)"
fi
es_log "results in $RESULTS"
