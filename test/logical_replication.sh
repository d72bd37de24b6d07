#!/usr/bin/env bash
# test/logical_replication.sh: the events and heads tables published by
# logical replication, and what a subscriber gives of event_store's
# guarantees.
#
# The subscriber's apply worker replays the publisher's appends as INSERTs of
# events and INSERTs and UPDATEs of heads, with session_replication_role =
# replica, one source transaction at a time, in the source's commit order.
# The guard triggers fire ALWAYS (so that a superuser's session in replica
# mode cannot rewrite history) and let only logical replication workers
# through.  The test, on two databases of one server:
#
#	- Replication works: events appended before and after the subscription
#	  (head updates included) arrive unchanged, and a replicated TRUNCATE
#	  passes the subscriber's guard.
#	- Concurrent writers (pgbench: single events, batches, two streams in one
#	  transaction, rollbacks, each transaction pausing before its commit so
#	  that commit order differs from position order) append to 60 streams:
#	  ES_LOGICAL_CLIENTS of them (default 4) for ES_LOGICAL_SECONDS (default
#	  5).  Meanwhile the subscriber is sampled repeatedly, each sample one
#	  statement (one snapshot): every stream there has versions 1..n, n at
#	  most the source's version, each event equal to the source's at that
#	  version (position, id, type, data, metadata, time), read_stream there
#	  returns exactly those events, and every head there is its stream's
#	  last version there.  A function on the subscriber checks heads against
#	  events in a tight loop as well.
#	  Afterwards the two databases are identical (count, highest position,
#	  every stream's version, checksums of every row of both tables).
#	- read_all there: its high-water mark is the subscriber's own position
#	  sequence, which replication does not advance, so read_all returns
#	  nothing there, however many events are stored.
#	- A slow writer: on the source, session 1 appends (position p) and stays
#	  open; session 2 appends to another stream and commits (p+1).  The
#	  subscriber gets p+1 and not p.  With the subscriber's sequence set to
#	  the source's last position (what read_all needs there), read_all
#	  returns p+1: a reader that saves it as its checkpoint never gets p,
#	  which arrives once session 1 commits.  On the source, read_all stops
#	  before p meanwhile.  read_stream on the subscriber is a gapless prefix
#	  throughout.
#
# Needs a running server (PGHOST, PGPORT, PGUSER) with the extension
# installed and wal_level = logical; creates and drops its own databases.
# Reports by test/lib.sh; prints what the sampling saw on "# " lines.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
pub=es_logical_pub
sub=es_logical_sub
seconds=${ES_LOGICAL_SECONDS:-5}
clients=${ES_LOGICAL_CLIENTS:-4}
work=$(mktemp -d /tmp/es_logical.XXXXXX)
chmod 755 "$work"
writers_pid=
watch_pid=
slow_pid=

on() { qd "$1" -c "$2"; }

drop_subscription() {
	on "$sub" "DROP SUBSCRIPTION IF EXISTS es_logical_sub" >/dev/null 2>&1 || true
	on "$pub" "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
	           WHERE slot_name = 'es_logical_sub'" >/dev/null 2>&1 || true
}

cleanup() {
	exec 3>&- 2>/dev/null || true
	for pid in $writers_pid $watch_pid $slow_pid; do
		kill "$pid" 2>/dev/null || true
	done
	drop_subscription
	rm -rf "$work"
}
trap cleanup EXIT

# Poll SQL on database D (up to 30 s) until it prints WANT; print what it
# printed last.
poll() {
	local d=$1 sql=$2 want=$3 got=
	for _ in $(seq 300); do
		got=$(on "$d" "$sql")
		[ "$got" = "$want" ] && break
		sleep 0.1
	done
	echo "$got"
}

if [ "$(on postgres "SHOW wal_level")" != logical ]; then
	t_fail "logical replication: the server has wal_level = logical" "$(on postgres "SHOW wal_level")"
	t_done
fi

drop_subscription
for d in "$pub" "$sub"; do
	dropdb --if-exists "$d" 2>/dev/null
	createdb "$d"
	on "$d" "CREATE EXTENSION event_store"
done

on "$pub" "SELECT count(event_store.append_event('s-' || (i % 5), -2, 'E', to_jsonb(i)))
           FROM generate_series(1, 50) i" >/dev/null
on "$pub" "CREATE PUBLICATION es_logical_pub FOR TABLE event_store.events, event_store.streams"
# In one cluster the slot must exist before the subscription is created.
on "$pub" "SELECT pg_create_logical_replication_slot('es_logical_sub', 'pgoutput')" >/dev/null
on "$sub" "CREATE SUBSCRIPTION es_logical_sub
           CONNECTION 'host=$PGHOST port=$PGPORT dbname=$pub user=$PGUSER'
           PUBLICATION es_logical_pub WITH (create_slot = false, slot_name = 'es_logical_sub')"

# After the initial copy: appends to existing streams (head UPDATEs), new
# streams (head INSERTs) and a batch.
on "$pub" "SELECT count(event_store.append_event('s-' || (i % 5), -2, 'F', to_jsonb(i)))
           FROM generate_series(1, 50) i" >/dev/null
on "$pub" "SELECT event_store.append_event('new-1', 0, 'N', '1')" >/dev/null
on "$pub" "SELECT event_store.append_events('s-1', -1, '[{\"type\": \"B\", \"data\": 1}, {\"type\": \"B\", \"data\": 2}]')" >/dev/null

want=$(es_data_checksums "$pub" | sed -n 1,2p)
got=
for _ in $(seq 300); do
	got=$(es_data_checksums "$sub" | sed -n 1,2p)
	[ "$got" = "$want" ] && break
	sleep 0.1
done

t_eq "logical replication: the subscriber's events and heads equal the publisher's" "$got" "$want"
t_eq "logical replication: events on the subscriber" \
	"$(on "$sub" "SELECT count(*) FROM event_store.events")" 103

# ---------------------------------------------------------------------------
# Concurrent writers on the source, the subscriber sampled meanwhile.
#
# Each table is first copied by a table synchronization worker of its own,
# at a snapshot of its own; only once both are ready does one apply worker
# replay whole transactions into both.  Wait for that.
t_eq "logical replication: both tables have finished their initial copy" \
	"$(poll "$sub" "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate = 'r'" 2)" 2

cat >"$work/one.sql" <<'SQL'
\set s random(1, 60)
\set pause random(0, 2000)
BEGIN;
SELECT event_store.append_event('lr-' || :s, -2, 'One', jsonb_build_object('client', :client_id), '{"m": 1}');
\sleep :pause us
COMMIT;
SQL
cat >"$work/batch.sql" <<'SQL'
\set s random(1, 60)
\set pause random(0, 2000)
BEGIN;
SELECT event_store.append_events('lr-' || :s, -2, '[{"type": "B", "data": 1}, {"type": "B", "data": 2}, {"type": "B", "data": 3}]');
\sleep :pause us
COMMIT;
SQL
# Two streams in one transaction, locked in ascending order (no deadlock).
cat >"$work/two.sql" <<'SQL'
\set a random(1, 30)
\set b random(31, 60)
\set pause random(0, 2000)
BEGIN;
SELECT event_store.append_event('lr-' || :a, -2, 'Pair', '{"side": "a"}');
SELECT event_store.append_event('lr-' || :b, -2, 'Pair', '{"side": "b"}');
\sleep :pause us
COMMIT;
SQL
cat >"$work/rollback.sql" <<'SQL'
\set s random(1, 60)
BEGIN;
SELECT event_store.append_event('lr-' || :s, -2, 'Gone', '{}');
ROLLBACK;
SQL

# The subscriber's own check, one statement per round, until told to stop.
on "$sub" "CREATE TABLE lr_stop (stop boolean)"
qd "$sub" <<'SQL'
CREATE FUNCTION lr_watch() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	rounds bigint := 0;
	failed bigint := 0;
	bad bigint;
	detail text;
	first text;
	deadline timestamptz := clock_timestamp() + interval '120 s';
BEGIN
	-- Each statement of a volatile function takes a new snapshot (READ
	-- COMMITTED): every round sees the subscriber as of that moment.
	WHILE NOT EXISTS (SELECT FROM lr_stop) AND clock_timestamp() < deadline LOOP
		SELECT count(*), string_agg(format('%s head %s events %s..%s (%s)',
										   stream_id, h.version, e.lo, e.hi, e.n), '; ')
		  INTO bad, detail
		  FROM (SELECT stream_id, version FROM event_store.streams) h
		  FULL JOIN (SELECT stream_id, count(*) AS n, min(version) AS lo,
							max(version) AS hi
					   FROM event_store.events GROUP BY stream_id) e USING (stream_id)
		 WHERE h.version IS DISTINCT FROM e.hi OR e.lo <> 1 OR e.n <> e.hi;
		rounds := rounds + 1;
		IF bad > 0 THEN
			failed := failed + 1;
			first := coalesce(first, detail);
		END IF;
	END LOOP;
	RETURN format('%s %s %s', rounds, failed, coalesce(first, '-'));
END $$;
SQL
on "$sub" "SELECT lr_watch()" >"$work/watch.out" 2>&1 &
watch_pid=$!

pgbench -n -c "$clients" -j 2 -T "$seconds" \
	-f "$work/one.sql@4" -f "$work/batch.sql@2" -f "$work/two.sql@2" -f "$work/rollback.sql@1" \
	"$pub" >"$work/pgbench.log" 2>&1 &
writers_pid=$!

# One sample: the subscriber's events, what read_stream returns there for
# every stream, and its heads, in one statement.
sample_sql="COPY (
	SELECT 'e', global_position, stream_id, version, event_id, event_type, data, metadata, created_at
	  FROM event_store.events
	UNION ALL
	SELECT 'r', r.*
	  FROM (SELECT DISTINCT stream_id FROM event_store.events) d
	 CROSS JOIN LATERAL event_store.read_stream(d.stream_id) r
	UNION ALL
	SELECT 'h', NULL, stream_id, version, NULL, NULL, NULL, NULL, NULL
	  FROM event_store.streams) TO STDOUT"

# Compared with the source, read after the sample (so the source is at or
# ahead of it): "events bad_prefix bad_heads longer differ read_stream_differs
# behind holes", where holes counts the source's events below the sample's
# highest position that the sample lacks (a reader of the global log there
# would skip them).
check_sql="
WITH e AS (SELECT * FROM lr_sample WHERE k = 'e'),
	 r AS (SELECT * FROM lr_sample WHERE k = 'r'),
	 h AS (SELECT stream_id, version FROM lr_sample WHERE k = 'h'),
	 per AS (SELECT stream_id, count(*) AS n, min(version) AS lo, max(version) AS hi
			   FROM e GROUP BY stream_id)
SELECT format('%s %s %s %s %s %s %s %s',
	(SELECT count(*) FROM e),
	(SELECT count(*) FROM per WHERE lo <> 1 OR hi <> n),
	(SELECT count(*) FROM h FULL JOIN per USING (stream_id)
	  WHERE h.version IS DISTINCT FROM per.hi),
	(SELECT count(*) FROM per LEFT JOIN event_store.streams s USING (stream_id)
	  WHERE s.version IS NULL OR per.hi > s.version),
	(SELECT count(*) FROM e
	  WHERE NOT EXISTS (SELECT FROM event_store.events x
						 WHERE x.stream_id = e.stream_id AND x.version = e.version
						   AND x.global_position = e.global_position
						   AND x.event_id = e.event_id AND x.event_type = e.event_type
						   AND x.data = e.data
						   AND x.metadata IS NOT DISTINCT FROM e.metadata
						   AND x.created_at = e.created_at)),
	(SELECT count(*) FROM
		((SELECT global_position, stream_id, version, event_id, event_type, data, metadata, created_at FROM e
		  EXCEPT ALL
		  SELECT global_position, stream_id, version, event_id, event_type, data, metadata, created_at FROM r)
		 UNION ALL
		 (SELECT global_position, stream_id, version, event_id, event_type, data, metadata, created_at FROM r
		  EXCEPT ALL
		  SELECT global_position, stream_id, version, event_id, event_type, data, metadata, created_at FROM e)) d),
	(SELECT count(*) FROM event_store.events) - (SELECT count(*) FROM e),
	(SELECT count(*) FROM event_store.events x
	  WHERE x.global_position < (SELECT max(global_position) FROM e)
		AND NOT EXISTS (SELECT FROM e WHERE e.global_position = x.global_position)))"

samples=0
failed_samples=0
first_failure=
behind=0
with_holes=0
max_holes=0
while kill -0 "$writers_pid" 2>/dev/null; do
	line=$(on "$sub" "$sample_sql" |
		qd "$pub" -c "CREATE TEMP TABLE lr_sample (k text, global_position bigint,
		                  stream_id text, version bigint, event_id uuid, event_type text,
		                  data jsonb, metadata jsonb, created_at timestamptz)" \
			-c "COPY lr_sample FROM STDIN" -c "$check_sql" 2>&1) ||
		line="sample failed: $line"
	samples=$((samples + 1))
	if [[ ! "$line" =~ ^[0-9]+( [0-9]+){7}$ ]]; then
		failed_samples=$((failed_samples + 1))
		[ -n "$first_failure" ] || first_failure=$line
		continue
	fi
	read -r _ bad_prefix bad_heads longer differ rs_differs lag holes <<<"$line"
	if [ "$bad_prefix $bad_heads $longer $differ $rs_differs" != "0 0 0 0 0" ]; then
		failed_samples=$((failed_samples + 1))
		[ -n "$first_failure" ] || first_failure=$line
	fi
	[ "$lag" -gt 0 ] && behind=$((behind + 1))
	if [ "$holes" -gt 0 ]; then
		with_holes=$((with_holes + 1))
		[ "$holes" -gt "$max_holes" ] && max_holes=$holes
	fi
done
writers_rc=0
wait "$writers_pid" || writers_rc=$?
writers_pid=
if [ "$writers_rc" -eq 0 ] && ! grep -q 'aborted\|ERROR' "$work/pgbench.log"; then
	t_ok "logical replication: the writers ran without an error"
else
	t_fail "logical replication: the writers ran without an error" "$(cat "$work/pgbench.log")"
fi
tps=$(grep -Eo 'tps = [0-9.]+' "$work/pgbench.log" | head -1 || true)
echo "# $clients writers for ${seconds}s ($tps); $samples samples of the subscriber," \
	"$behind behind the source, $with_holes lacking a committed event below their" \
	"highest position (up to $max_holes)"

t_eq "logical replication: the subscriber was sampled while behind the source" \
	"$([ "$behind" -gt 0 ] && echo yes)" yes
t_eq "logical replication: every sample: each stream is a gapless prefix of the source's, events equal, read_stream equal, heads at the last version" \
	"$failed_samples${first_failure:+ (first: $first_failure)}" 0

# The final state: identical.
identity_sql="
SELECT count(*) FROM event_store.events;
SELECT max(global_position) FROM event_store.events;
SELECT md5(string_agg(stream_id || '=' || version, ',' ORDER BY stream_id)) FROM event_store.streams;
SELECT md5(string_agg(e::text, ',' ORDER BY global_position)) FROM event_store.events e;
SELECT md5(string_agg(s::text, ',' ORDER BY stream_id)) FROM event_store.streams s;"
want=$(qd "$pub" <<<"$identity_sql")
got=
for _ in $(seq 300); do
	got=$(qd "$sub" <<<"$identity_sql")
	[ "$got" = "$want" ] && break
	sleep 0.1
done
on "$sub" "INSERT INTO lr_stop VALUES (true)"
watch_rc=0
wait "$watch_pid" || watch_rc=$?
watch_pid=
read -r rounds watch_failed watch_first <<<"$(cat "$work/watch.out")"
echo "# the subscriber checked its heads against its events $rounds times"
t_eq "logical replication: the subscriber's own check ran" \
	"$watch_rc $([ "${rounds:-0}" -gt 0 ] 2>/dev/null && echo ran)" "0 ran"
t_eq "logical replication: in every round on the subscriber, each head was its stream's last version and versions were 1..n" \
	"$watch_failed $watch_first" "0 -"

labels=("event count" "highest position" "every stream's version" "checksum of the events' rows" "checksum of the heads' rows")
mapfile -t got_lines <<<"$got"
mapfile -t want_lines <<<"$want"
for i in "${!labels[@]}"; do
	t_eq "logical replication: after the writers, the subscriber's ${labels[$i]} equals the source's" \
		"${got_lines[$i]:-}" "${want_lines[$i]}"
done
t_eq "logical replication: the writers committed events" \
	"$([ "${want_lines[0]}" -gt 103 ] && echo yes)" yes

# ---------------------------------------------------------------------------
# The global log on the subscriber.
#
# read_all's high-water mark is the last value of the position sequence; on
# the subscriber that is its own sequence, which the apply worker's INSERTs
# (and the initial copy) never advance.
t_eq "logical replication: the subscriber's position sequence was not advanced" \
	"$(on "$sub" "SELECT is_called FROM event_store.events_global_position_seq")" f
t_eq "logical replication: read_all on the subscriber returns none of its events, safe_position is 0" \
	"$(on "$sub" "SELECT format('%s stored, %s read, safe %s', (SELECT count(*) FROM event_store.events),
	              (SELECT count(*) FROM event_store.read_all(0, NULL)), event_store.safe_position())")" \
	"${want_lines[0]} stored, 0 read, safe 0"

# A slow writer.  Nothing else appends now.
c0=$(on "$pub" "SELECT last_value FROM event_store.events_global_position_seq")
mkfifo "$work/slow.in"
PGAPPNAME=es_lr_slow psql -X -q -At -v ON_ERROR_STOP=1 -d "$pub" <"$work/slow.in" >"$work/slow.out" 2>&1 &
slow_pid=$!
exec 3>"$work/slow.in"
echo "BEGIN; SELECT event_store.append_event('lr-slow', 0, 'Slow', '1');" >&3
t_eq "logical replication: session 1 appended and stays open" \
	"$(poll "$pub" "SELECT state FROM pg_stat_activity WHERE application_name = 'es_lr_slow'" "idle in transaction")" \
	"idle in transaction"
p=$(on "$pub" "SELECT last_value FROM event_store.events_global_position_seq")
on "$pub" "SELECT event_store.append_event('lr-fast', 0, 'Fast', '1')" >/dev/null
t_eq "logical replication: session 2's event, committed, took position p+1" \
	"$(on "$pub" "SELECT global_position FROM event_store.events WHERE stream_id = 'lr-fast'")" "$((p + 1))"
t_eq "logical replication: on the source, read_all stops before p while session 1 is open" \
	"$(on "$pub" "SELECT count(*) FROM event_store.read_all($c0, NULL)")" 0

above_c0="SELECT coalesce(string_agg(global_position::text, ',' ORDER BY global_position), '')
            FROM event_store.events WHERE global_position > $c0"
t_eq "logical replication: the subscriber gets p+1 while p does not exist there" \
	"$(poll "$sub" "$above_c0" "$((p + 1))")" "$((p + 1))"
t_eq "logical replication: read_all on the subscriber still returns nothing" \
	"$(on "$sub" "SELECT count(*) FROM event_store.read_all($c0, NULL)")" 0
t_eq "logical replication: read_stream on the subscriber: session 2's stream whole, session 1's empty" \
	"$(on "$sub" "SELECT format('%s|%s',
	              (SELECT string_agg(version || '@' || global_position, ',') FROM event_store.read_stream('lr-fast')),
	              (SELECT count(*) FROM event_store.read_stream('lr-slow')))")" \
	"1@$((p + 1))|0"

# What read_all needs on the subscriber to return anything: its sequence at
# the source's last position.  Then it returns p+1, with p missing.
on "$sub" "SELECT setval('event_store.events_global_position_seq', $((p + 1)))" >/dev/null
t_eq "logical replication: with the subscriber's sequence at p+1, read_all there returns p+1 (skipping p)" \
	"$(on "$sub" "SELECT coalesce(string_agg(global_position::text, ','), '') FROM event_store.read_all($c0, NULL)")" \
	"$((p + 1))"
t_eq "logical replication: safe_position on the subscriber counts p as settled" \
	"$(on "$sub" "SELECT event_store.safe_position()")" "$((p + 1))"

echo "COMMIT;" >&3
exec 3>&-
slow_rc=0
wait "$slow_pid" || slow_rc=$?
slow_pid=
t_eq "logical replication: session 1 committed" "$slow_rc $(cat "$work/slow.out")" "0 1"
t_eq "logical replication: session 1's event has position p on the source" \
	"$(on "$pub" "SELECT global_position FROM event_store.events WHERE stream_id = 'lr-slow'")" "$p"
t_eq "logical replication: on the source, read_all returns p, then p+1" \
	"$(on "$pub" "SELECT string_agg(global_position::text, ',') FROM event_store.read_all($c0, NULL)")" \
	"$p,$((p + 1))"
t_eq "logical replication: p arrives on the subscriber after p+1" \
	"$(poll "$sub" "$above_c0" "$p,$((p + 1))")" "$p,$((p + 1))"
t_eq "logical replication: a reader on the subscriber that checkpointed p+1 never gets p" \
	"$(on "$sub" "SELECT count(*) FROM event_store.read_all($((p + 1)), NULL)")" 0
t_eq "logical replication: read_all on the subscriber from before p now returns p, then p+1" \
	"$(on "$sub" "SELECT string_agg(global_position::text, ',') FROM event_store.read_all($c0, NULL)")" \
	"$p,$((p + 1))"
t_eq "logical replication: read_stream on the subscriber: session 1's stream whole" \
	"$(on "$sub" "SELECT string_agg(version || '@' || global_position, ',') FROM event_store.read_stream('lr-slow')")" \
	"1@$p"
t_eq "logical replication: the subscriber's streams are 1..head" "$(es_bad_streams "$sub")" 0

t_eq "logical replication: the subscriber's workers reported no error" \
	"$(on "$sub" "SELECT coalesce(sum(apply_error_count + sync_error_count), 0)
	              FROM pg_stat_subscription_stats WHERE subname = 'es_logical_sub'")" 0

# The subscriber mirrors the publisher: when the owner switches the guard off
# on the publisher and truncates, the subscriber's apply worker passes the
# subscriber's guard (which fires ALWAYS, and refuses any other session in
# replica mode) and truncates too.
on "$pub" "BEGIN;
           ALTER TABLE event_store.events DISABLE TRIGGER events_append_only;
           ALTER TABLE event_store.streams DISABLE TRIGGER streams_forward_only;
           TRUNCATE event_store.events, event_store.streams;
           ALTER TABLE event_store.events ENABLE ALWAYS TRIGGER events_append_only;
           ALTER TABLE event_store.streams ENABLE ALWAYS TRIGGER streams_forward_only;
           COMMIT"
left=
for _ in $(seq 300); do
	left=$(on "$sub" "SELECT (SELECT count(*) FROM event_store.events) + (SELECT count(*) FROM event_store.streams)")
	[ "$left" = 0 ] && break
	sleep 0.1
done
t_eq "logical replication: a replicated TRUNCATE passes the subscriber's guard" "$left" 0

drop_subscription
dropdb "$sub"
dropdb "$pub"
t_done
