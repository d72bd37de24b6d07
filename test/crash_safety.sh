#!/usr/bin/env bash
# test/crash_safety.sh: nothing acknowledged is lost by a crash.
#
# Writers append to streams of their own with exact expected versions and
# known event ids, one psql session each, and log every append the server
# acknowledged (stream, version, event id).  In the middle of the load the
# server is killed (pg_ctl stop -m immediate: no shutdown checkpoint, no
# flush beyond what commits already forced), restarted, and checked:
#   - every acknowledged event is stored, with the same stream, version, id;
#   - every stream's versions are exactly 1..head, and head = last version;
#   - no event id appears twice;
#   - read_all from 0 returns every event once, in ascending order.
# Then the writers start again from the stored versions, and the cycle
# repeats.
#
# Needs the throwaway cluster of scripts/lib.sh (PGHOST, PGPORT, PGUSER and
# ES_DATA, the data directory, which it stops and starts).  ES_CRASH_ROUNDS
# (default 3) and ES_CRASH_WRITERS (default 4) set its size.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rounds=${ES_CRASH_ROUNDS:-3}
writers=${ES_CRASH_WRITERS:-4}
: "${ES_DATA:?ES_DATA must name the data directory of the server under test}"
es_test_start crash es_crash

# One writer: 10 streams of its own, exact expected versions read from the
# store at start, ids made from writer, round and sequence number.
writer() {
	local k=$1 round=$2
	declare -A version
	local s v
	while read -r s v; do
		version[$s]=$v
	done < <(q -F ' ' -c "SELECT s, event_store.stream_version(s)
	                        FROM (SELECT 'w$k-' || i AS s FROM generate_series(0, 9) i) x")
	for ((i = 0; i < 1000000; i++)); do
		s="w$k-$((i % 10))"
		v=${version[$s]}
		printf "SELECT 'ACK|%s|' || event_store.append_event('%s', %d, 'E', '{\"i\": %d}', NULL, '%08x-%04x-4000-8000-%012x') || '|%08x-%04x-4000-8000-%012x';\n" \
			"$s" "$s" "$v" "$i" "$k" "$round" "$i" "$k" "$round" "$i"
		version[$s]=$((v + 1))
	done | psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" >>"$work/acks.$k" 2>/dev/null || true
}

check() {
	local round=$1
	cat "$work"/acks.* 2>/dev/null | grep '^ACK|' | cut -d'|' -f2- >"$work/acks.all" || true
	q <<SQL
CREATE TEMP TABLE acks (stream_id text, version bigint, event_id uuid);
\copy acks FROM '$work/acks.all' WITH (DELIMITER '|')
SELECT format('%s %s %s %s %s',
	(SELECT count(*) FROM acks),
	(SELECT count(*) FROM event_store.events),
	(SELECT count(*) FROM acks a WHERE NOT EXISTS
		(SELECT FROM event_store.events e WHERE e.event_id = a.event_id)),
	(SELECT count(*) FROM acks a JOIN event_store.events e USING (event_id)
	  WHERE (e.stream_id, e.version) IS DISTINCT FROM (a.stream_id, a.version)),
	(SELECT count(*) - count(DISTINCT event_id) FROM event_store.events));
SQL
}

for round in $(seq "$rounds"); do
	pids=()
	for k in $(seq "$writers"); do
		writer "$k" "$round" &
		pids+=($!)
	done
	sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.1f", 1 + (r % 20) / 10 }')"
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$ES_DATA" -m immediate stop >/dev/null
	wait "${pids[@]}" || true
	# restart reuses the options of the first start (postmaster.opts).
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$ES_DATA" -l "$ES_DATA/../server.log" \
		-w restart >/dev/null 2>&1
	read -r acked stored lost changed dup_ids <<<"$(check "$round")"
	echo "crash: round $round: $acked acknowledged, $stored stored"
	t_eq "crash round $round: appends were acknowledged before the kill" \
		"$([ "$acked" -gt 0 ] && echo yes)" yes
	t_eq "crash round $round: no acknowledged event lost or changed" "$lost/$changed" 0/0
	t_eq "crash round $round: no event id stored twice" "$dup_ids" 0
	t_eq "crash round $round: stream versions are 1..head" "$(es_bad_streams "$db")" 0
	read -r n_stored n_read n_distinct n_back <<<"$(es_log_is_exact "$db")"
	t_eq "crash round $round: read_all returns every event once, in order" \
		"$n_read/$n_distinct/$n_back" "$n_stored/$n_stored/0"
done

dropdb "$db"
t_done
