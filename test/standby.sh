#!/usr/bin/env bash
# test/standby.sh: event_store on a streaming hot standby.
#
# Makes a standby of the server under test with pg_basebackup (over its Unix
# socket), appends on the primary, waits until the standby has replayed it,
# and checks that read_stream, stream_version, read_all, read_category and
# safe_position work on the standby and return what the primary committed,
# and that an append on the standby fails with a read-only error (25006).
#
# Then the global log's guarantee on the standby, which rests on the
# watermark the primary publishes (src/watermark.c):
#
#	- A slow writer.  An append takes position p and is held inside its
#	  window (between taking p and inserting its first event) by a CHECK
#	  constraint of the test's that waits for an advisory lock the test
#	  holds; another append commits p+1.  Once the standby has replayed that
#	  commit, read_all, read_category, safe_position and wait_for_event on
#	  the standby must all stop before p.  Released, the slow append commits,
#	  and the standby returns p, then p+1.
#	- wait_for_event on the standby returns when an append on the primary
#	  commits (polled there), with and without a category.
#	- Lag: 50 appends committed one by one on the primary, each followed on
#	  the standby by wait_for_event; prints p50, p99 and max of the time from
#	  commit on the primary to readable on the standby ("# standby lag ..."),
#	  and asserts only a generous bound.
#	- A burst of concurrent writers while a follower on the standby reads the
#	  log page by page: the follower gets exactly the primary's committed
#	  positions, in order, and reaches the last one after the burst ends with
#	  no further append and no call of publish_watermark (the latest
#	  committing appends publish).
#	- The latest append publishes in any case: with an append inside its
#	  window while the last position commits, and none after, the standby
#	  still reaches the last event.
#
# Needs a running server (PGHOST, PGPORT, PGUSER) with the extension
# installed, which accepts replication connections from the local user (as a
# cluster made by initdb -A trust does), with wal_level replica or logical.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
db=es_standby
dir=$(mktemp -d /tmp/es_standby.XXXXXX)
chmod 755 "$dir"
chown postgres: "$dir"
sport=$((PGPORT + 1))
hold_key=73501

cleanup() {
	exec 3>&- 4>&- 2>/dev/null || true
	jobs -p | xargs -r kill 2>/dev/null || true
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT

p() { q "$@"; }
s() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$dir" -p "$sport" -d "$db" "$@"; }
now_ms() { date +%s%3N; }

# Wait (up to 10 s) until the standby has replayed everything the primary
# has written so far.
caught_up() {
	local target
	target=$(p -c "SELECT pg_current_wal_lsn()")
	for _ in $(seq 200); do
		if [ "$(s -c "SELECT pg_last_wal_replay_lsn() >= '$target'::pg_lsn")" = t ]; then
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# Poll SQL on the standby until it prints WANT or SECONDS pass; print what
# it printed last.
s_poll() {
	local sql=$1 want=$2 seconds=$3 got deadline
	deadline=$(($(now_ms) + seconds * 1000))
	while :; do
		got=$(s -c "$sql")
		if [ "$got" = "$want" ] || [ "$(now_ms)" -ge "$deadline" ]; then
			echo "$got"
			return 0
		fi
		sleep 0.02
	done
}

# Wait (up to 10 s) until SQL on server FN (p or s) prints something other
# than 0.
wait_nonzero() {
	local fn=$1 sql=$2
	for _ in $(seq 500); do
		[ "$("$fn" -c "$sql")" != 0 ] && return 0
		sleep 0.02
	done
	return 1
}

# The hold: a CHECK constraint on the events, evaluated inside an append's
# window (after its first event took its position, before the row is in),
# waits for an advisory lock while the event's data has "hold".  hold_take
# makes a session of the test (fed through a FIFO, on descriptor 3) take
# that lock; hold_release lets go and ends the session.  (Sessions fed
# through FIFOs are started with the other FIFO's descriptor closed, so that
# each gets its end of input when the test closes its descriptor.)
hold_take() {
	rm -f "$dir/holder.in"
	mkfifo "$dir/holder.in"
	psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" <"$dir/holder.in" >"$dir/holder.out" 2>&1 4>&- &
	holder=$!
	exec 3>"$dir/holder.in"
	echo "SELECT pg_advisory_lock($hold_key);" >&3
	wait_nonzero p "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
		AND objid = $hold_key AND mode = 'ExclusiveLock' AND granted"
}

hold_release() {
	echo "SELECT pg_advisory_unlock($hold_key);" >&3
	exec 3>&-
	wait "$holder" || true
}

# Wait until an append is held (waiting for the lock inside its window).
hold_wait_for_append() {
	wait_nonzero p "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
		AND objid = $hold_key AND NOT granted"
}

# Wait until N backends on the standby are inside wait_for_event.
standby_waiters() {
	wait_nonzero s "SELECT (count(*) >= $1)::int FROM pg_stat_activity
		WHERE query LIKE '%wait_for_event%' AND pid <> pg_backend_pid()
		  AND state = 'active' AND wait_event = 'Extension'"
}

dropdb --if-exists "$db" 2>/dev/null
createdb "$db"
p -c "CREATE EXTENSION event_store"
p -c "SELECT event_store.append_event('prod-1', 0, 'Created', '{\"n\": 1}')" >/dev/null

runuser -u postgres -- "$PGBIN/pg_basebackup" -D "$dir/data" -R -X stream --checkpoint=fast \
	-h "$PGHOST" -p "$PGPORT" -U postgres
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir/data" -w -l "$dir/log" \
	-o "-p $sport -k $dir -c listen_addresses='' -c hot_standby=on" start >/dev/null

# More appends after the standby was made, then wait for it to replay them.
p -c "SELECT event_store.append_events('prod-1', 1, '[{\"type\": \"A\", \"data\": 2}, {\"type\": \"B\", \"data\": 3}]')" >/dev/null
p -c "SELECT event_store.append_event('cust-1', 0, 'Joined', '{}')" >/dev/null
caught_up

t_eq "standby: in recovery" "$(s -c "SELECT pg_is_in_recovery()")" t
t_eq "standby: stream_version sees the primary's head" \
	"$(s -c "SELECT event_store.stream_version('prod-1')")" 3
t_eq "standby: read_stream replays the stream" \
	"$(s -c "SELECT string_agg(version || ':' || event_type, ',' ORDER BY version) FROM event_store.read_stream('prod-1')")" \
	"1:Created,2:A,3:B"
t_eq "standby: read_all returns what the primary stored" \
	"$(s -c "SELECT string_agg(stream_id || '/' || version, ',' ORDER BY global_position) FROM event_store.read_all(0)")" \
	"$(p -c "SELECT string_agg(stream_id || '/' || version, ',' ORDER BY global_position) FROM event_store.events")"
t_eq "standby: read_category returns the category" \
	"$(s -c "SELECT count(*) FROM event_store.read_category('prod')")" 3
t_eq "standby: safe_position is the last stored position" \
	"$(s -c "SELECT event_store.safe_position()")" \
	"$(p -c "SELECT max(global_position) FROM event_store.events")"
t_eq "standby: the watermark is the last stored position" \
	"$(s -c "SELECT event_store.watermark()")" \
	"$(p -c "SELECT max(global_position) FROM event_store.events")"
sqlstate=$(s -v VERBOSITY=verbose -c "SELECT event_store.append_event('prod-1', 3, 'Nope', '{}')" 2>&1 | grep -o '25006' | head -1 || true)
t_eq "standby: an append is refused with 25006" "$sqlstate" 25006

# ---------------------------------------------------------------------------
# A slow writer: a position taken but not yet inserted on the primary is never
# skipped on the standby.
#
# Writer A is held inside its window by the hold (above).  The constraint
# stays for the rest of the test (it costs the other appends a function call).

p <<SQL
CREATE FUNCTION public.es_test_hold(data jsonb) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS \$\$
BEGIN
	IF data ? 'hold' THEN
		PERFORM pg_advisory_xact_lock_shared($hold_key);
	END IF;
	RETURN true;
END
\$\$;
ALTER TABLE event_store.events
	ADD CONSTRAINT es_test_hold CHECK (public.es_test_hold(data));
SQL

hold_take

before=$(p -c "SELECT max(global_position) FROM event_store.events")

# Writer A takes position p and waits inside its window.
p -c "SELECT event_store.append_event('slow-1', 0, 'Slow', '{\"hold\": true}')" \
	>"$dir/a.out" 2>&1 &
writer_a=$!
hold_wait_for_append
pos=$(p -c "SELECT last_value FROM event_store.events_global_position_seq")
t_eq "slow writer: A holds the next position, not inserted yet" \
	"$pos $(p -c "SELECT count(*) FROM event_store.events WHERE global_position = $pos")" \
	"$((before + 1)) 0"

# Writer B appends to another stream and commits p+1.
p -c "SELECT event_store.append_event('fast-1', 0, 'Fast', '{}')" >/dev/null
b=$(p -c "SELECT global_position FROM event_store.events WHERE stream_id = 'fast-1'")
t_eq "slow writer: B committed p+1" "$b" $((pos + 1))
caught_up

t_eq "slow writer: the standby has replayed B's event" \
	"$(s -c "SELECT count(*) FROM event_store.events WHERE global_position = $b")" 1
t_eq "slow writer: the standby's watermark is below p" \
	"$(s -c "SELECT event_store.watermark() < $pos")" t
t_eq "slow writer: read_all on the standby stops before p (does not return p+1)" \
	"$(s -c "SELECT coalesce(string_agg(global_position::text, ','), '') FROM event_store.read_all($((pos - 1)))")" ""
t_eq "slow writer: read_category on the standby does not return p+1" \
	"$(s -c "SELECT count(*) FROM event_store.read_category('fast', 0)")" 0
t_eq "slow writer: safe_position on the standby stays below p" \
	"$(s -c "SELECT event_store.safe_position() < $pos")" t
start=$(now_ms)
t_eq "slow writer: wait_for_event(p-1, 1 s) on the standby times out with NULL" \
	"$(s -c "SELECT coalesce(event_store.wait_for_event($((pos - 1)), '1 s')::text, 'NULL')")" NULL
elapsed=$(($(now_ms) - start))
if [ "$elapsed" -ge 900 ] && [ "$elapsed" -lt 5000 ]; then
	t_ok "slow writer: the timeout took about 1 s"
else
	t_fail "slow writer: the timeout took about 1 s" "${elapsed} ms"
fi

# Let A go: it inserts p and commits (publishing the watermark).
hold_release
rc=0
wait "$writer_a" || rc=$?
t_eq "slow writer: A commits once released" "$rc $(p -c "SELECT count(*) FROM event_store.events WHERE stream_id = 'slow-1'")" "0 1"
t_eq "slow writer: read_all on the standby then returns p, then p+1" \
	"$(s_poll "SELECT coalesce(string_agg(global_position::text, ',' ORDER BY ordinality), '')
		FROM event_store.read_all($((pos - 1))) WITH ORDINALITY" \
		"$pos,$b" 5)" "$pos,$b"
t_eq "slow writer: read_category on the standby then returns p+1" \
	"$(s -c "SELECT string_agg(global_position::text, ',') FROM event_store.read_category('fast', 0)")" "$b"
t_eq "slow writer: wait_for_event(p-1) on the standby then returns p" \
	"$(s -c "SELECT event_store.wait_for_event($((pos - 1)), '1 s')")" "$pos"

# ---------------------------------------------------------------------------
# wait_for_event on the standby returns when an event arrives.

last=$(p -c "SELECT max(global_position) FROM event_store.events")
caught_up
start=$(now_ms)
s -c "SELECT event_store.wait_for_event($last, '20 s')" >"$dir/w_any.out" 2>&1 &
w_any=$!
s -c "SELECT event_store.wait_for_event($last, '20 s', 'wcat')" >"$dir/w_cat.out" 2>&1 &
w_cat=$!
standby_waiters 2
p -c "SELECT event_store.append_event('other-1', 0, 'Other', '{}')" >/dev/null
p -c "SELECT event_store.append_event('wcat-1', 0, 'InCategory', '{}')" >/dev/null
other=$(p -c "SELECT global_position FROM event_store.events WHERE stream_id = 'other-1'")
incat=$(p -c "SELECT global_position FROM event_store.events WHERE stream_id = 'wcat-1'")
rc=0
wait "$w_any" || rc=$?
rc2=0
wait "$w_cat" || rc2=$?
elapsed=$(($(now_ms) - start))
t_eq "standby wait: wait_for_event returns the appended position" "$rc $(cat "$dir/w_any.out")" "0 $other"
t_eq "standby wait: with a category, the category's event" "$rc2 $(cat "$dir/w_cat.out")" "0 $incat"
if [ "$elapsed" -lt 10000 ]; then
	t_ok "standby wait: the waiters returned well before their timeout"
else
	t_fail "standby wait: the waiters returned well before their timeout" "${elapsed} ms"
fi

# ---------------------------------------------------------------------------
# Lag: from commit on the primary to readable on the standby, over 50
# appends committed one at a time.  The standby's session waits for each
# event with wait_for_event and notes when it returned; the primary's notes
# when each append committed (same machine, same clock).  The standby's
# loops commit after each step: a snapshot kept across them would hold the
# standby's replay back (a recovery conflict) once the primary prunes the
# versions of stream heads that the snapshot may still need.

n_lag=50
last=$(p -c "SELECT max(global_position) FROM event_store.events")
caught_up
s -v ON_ERROR_STOP=1 >"$dir/lag_seen.out" 2>&1 <<SQL &
DO \$\$
DECLARE
	pos bigint := $last;
	got bigint;
BEGIN
	FOR i IN 1..$n_lag LOOP
		got := event_store.wait_for_event(pos, '10 s');
		EXIT WHEN got IS NULL;
		RAISE NOTICE 'seen % %', got,
			(extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
		pos := got;
		COMMIT;
	END LOOP;
END
\$\$;
SQL
follower=$!
standby_waiters 1
p >"$dir/lag_committed.out" 2>&1 <<SQL
DO \$\$
BEGIN
	FOR i IN 1..$n_lag LOOP
		PERFORM event_store.append_event('lag-1', i - 1, 'Tick', jsonb_build_object('i', i));
		COMMIT;
		RAISE NOTICE 'committed % %',
			(SELECT global_position FROM event_store.events
			  WHERE stream_id = 'lag-1' AND version = i),
			(extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
		PERFORM pg_sleep(0.01);
	END LOOP;
END
\$\$;
SQL
rc=0
wait "$follower" || rc=$?
lags=$(awk '$2 == "committed" { c[$3] = $4 } $2 == "seen" { s[$3] = $4 }
	END { for (k in c) if (k in s) printf "%.3f\n", (s[k] - c[k]) / 1000 }' \
	"$dir/lag_committed.out" "$dir/lag_seen.out" | sort -n)
t_eq "lag: the standby saw every one of the $n_lag appends" \
	"$rc $(grep -c . <<<"$lags")" "0 $n_lag"
read -r p50 p99 lmax < <(awk '{ v[NR] = $1 } END {
	i50 = int(NR * 0.50 + 0.999999); i99 = int(NR * 0.99 + 0.999999)
	printf "%s %s %s\n", v[i50], v[i99], v[NR] }' <<<"$lags")
echo "# standby lag, commit on the primary to readable on the standby, over $n_lag appends: p50 ${p50} ms, p99 ${p99} ms, max ${lmax} ms"
if awk -v m="$lmax" 'BEGIN { exit !(m + 0 < 5000) }'; then
	t_ok "lag: every append readable on the standby within 5 s"
else
	t_fail "lag: every append readable on the standby within 5 s" "max ${lmax} ms"
fi

# ---------------------------------------------------------------------------
# A burst of concurrent writers, followed on the standby page by page.  Each
# writer commits 100 appends to its own stream, every tenth a batch of three
# events.  Nothing appends after the burst, and no one calls
# publish_watermark: the follower must reach the last event all the same.

writers=8
per_writer=$((90 + 10 * 3))
expected=$((writers * per_writer))
start_pos=$(p -c "SELECT max(global_position) FROM event_store.events")
caught_up
s -v ON_ERROR_STOP=1 >"$dir/burst_follower.out" 2>&1 <<SQL &
DO \$\$
DECLARE
	pos bigint := $start_pos;
	seen bigint[] := '{}';
	pages int := 0;
	r record;
	deadline timestamptz := clock_timestamp() + interval '20 s';
BEGIN
	WHILE cardinality(seen) < $expected AND clock_timestamp() < deadline LOOP
		FOR r IN SELECT global_position FROM event_store.read_all(pos, 100) LOOP
			seen := seen || r.global_position;
			pos := r.global_position;
		END LOOP;
		pages := pages + 1;
		COMMIT;
		PERFORM pg_sleep(0.002);
	END LOOP;
	RAISE NOTICE 'pages %', pages;
	RAISE NOTICE 'seen %', array_to_string(seen, ',');
END
\$\$;
SQL
follower=$!
for w in $(seq "$writers"); do
	p >"$dir/burst_writer_$w.out" 2>&1 <<SQL &
DO \$\$
DECLARE
	v bigint := 0;
BEGIN
	FOR i IN 1..100 LOOP
		IF i % 10 = 0 THEN
			PERFORM event_store.append_events('burst-$w', v,
				'[{"type": "B1", "data": {}}, {"type": "B2", "data": {}}, {"type": "B3", "data": {}}]');
			v := v + 3;
		ELSE
			PERFORM event_store.append_event('burst-$w', v, 'One', '{}');
			v := v + 1;
		END IF;
		COMMIT;
	END LOOP;
END
\$\$;
SQL
done
writers_failed=0
for job in $(jobs -p); do
	[ "$job" = "$follower" ] && continue
	wait "$job" || writers_failed=$((writers_failed + 1))
done
burst_end=$(now_ms)
rc=0
wait "$follower" || rc=$?
reach_ms=$(($(now_ms) - burst_end))
want=$(p -c "SELECT coalesce(string_agg(global_position::text, ',' ORDER BY global_position), '')
	FROM event_store.events WHERE global_position > $start_pos")
got=$(sed -n 's/^NOTICE:  seen //p' "$dir/burst_follower.out")
t_eq "burst: every writer committed" \
	"$writers_failed $(p -c "SELECT count(*) FROM event_store.events WHERE global_position > $start_pos")" \
	"0 $expected"
if [ "$rc" = 0 ] && [ "$got" = "$want" ]; then
	t_ok "burst: the standby's follower read exactly the committed positions, in order"
else
	t_fail "burst: the standby's follower read exactly the committed positions, in order" \
		"rc $rc, read $(tr ',' '\n' <<<"$got" | grep -c .) of $expected; standby watermark $(s -c "SELECT event_store.watermark()"), primary's last $(p -c "SELECT max(global_position) FROM event_store.events"); $(head -c 300 "$dir/burst_follower.out")"
fi
echo "# burst: $writers writers, $expected events; the follower read $(sed -n 's/^NOTICE:  pages //p' "$dir/burst_follower.out") pages and reached the last event ${reach_ms} ms after the burst ended"
t_eq "burst: the standby's watermark reached the last position with no further append" \
	"$(s -c "SELECT event_store.watermark()")" \
	"$(p -c "SELECT max(global_position) FROM event_store.events")"
caught_up
t_eq "burst: read_all from 0 on the standby is exact (stored, read, distinct, out of order)" \
	"$(PGHOST=$dir PGPORT=$sport es_log_is_exact "$db")" \
	"$(es_log_is_exact "$db")"

# ---------------------------------------------------------------------------
# The latest append publishes in any case.  Writer A (its session's
# watermark_interval raised, so that its commit is not due by time: the
# test's timing does not matter) appends once, which publishes, then appends
# again and is held inside its window; B appends and commits the last
# position while A's window is open, so B cannot publish; released, A
# commits.  No append follows: the standby must still reach B's event.  (With
# the default interval the same happens whenever A's two commits are less
# than 100 ms apart.)

hold_take
mkfifo "$dir/a.in"
p <"$dir/a.in" >"$dir/a2.out" 2>&1 3>&- &
writer_a=$!
exec 4>"$dir/a.in"
echo "SELECT event_store.watermark() \g /dev/null" >&4
echo "SET event_store.watermark_interval = '1h';" >&4
echo "SELECT event_store.append_event('late-1', 0, 'First', '{}') \g /dev/null" >&4
echo "SELECT event_store.append_event('late-1', 1, 'Held', '{\"hold\": true}') \g /dev/null" >&4
hold_wait_for_append
first=$(p -c "SELECT global_position FROM event_store.events WHERE stream_id = 'late-1'")
t_eq "latest append: A's first append published the watermark" \
	"$(p -c "SELECT event_store.watermark()")" "$first"
p -c "SELECT event_store.append_event('late-2', 0, 'Last', '{}')" >/dev/null
hold_release
exec 4>&-
rc=0
wait "$writer_a" || rc=$?
last=$(p -c "SELECT max(global_position) FROM event_store.events")
t_eq "latest append: A and B committed" \
	"$rc $(p -c "SELECT string_agg(stream_id || '/' || version, ',' ORDER BY global_position)
		FROM event_store.events WHERE global_position > $first")" "0 late-1/2,late-2/1"
t_eq "latest append: with no further append, the standby reaches the last event" \
	"$(s_poll "SELECT event_store.watermark() || ' ' || coalesce((SELECT string_agg(stream_id || '/' || version, ',')
		FROM event_store.read_all($first)), '')" "$last late-1/2,late-2/1" 5)" \
	"$last late-1/2,late-2/1"

dropdb "$db"
t_done
