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
# Then the same with the stream lifecycle, in a database of its own: the
# writers append as above while one session runs delete_stream,
# truncate_stream, set_stream_retention, redact_event, tombstone_stream and
# erase_stream on their streams, and another runs purge, each logging what
# the server acknowledged.  The server crashes (odd rounds: pg_ctl stop -m
# immediate and a restart; even rounds: kill -9 of the lifecycle session's
# backend, after which the postmaster reinitializes), comes back, and:
#   - every stream's head is at or above the last version it stores;
#   - a stream that is not tombstoned and never had a retention limit stores
#     every version from its first visible one to its head;
#   - a tombstoned stream stores no event;
#   - every acknowledged append is stored as acknowledged, unless a
#     lifecycle operation removed it (tombstone, erasure, or purge of a
#     hidden version);
#   - every acknowledged lifecycle operation has its $lifecycle event, the
#     $lifecycle versions are 1..head, each lifecycle event's operation is
#     reflected in the heads, the erasure audit and the events (a
#     $tombstoned stream is tombstoned, a $redacted event holds the redacted
#     data, ...), and every lifecycle state has its event;
#   - no event id is stored twice;
#   - read_all returns exactly the stored events that are not hidden, once
#     each, in order.
# After the last round, every stream that is not tombstoned takes an append
# at head + 1 and every tombstoned one refuses it with VE003.
#
# Needs the throwaway cluster of scripts/lib.sh (PGHOST, PGPORT, PGUSER and
# ES_DATA, the data directory, which it stops and starts).  ES_CRASH_ROUNDS
# (default 3) and ES_CRASH_WRITERS (default 4) set its size;
# ES_CRASH_LIFECYCLE_ROUNDS (default 2) the lifecycle part's rounds.

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

# ---- The stream lifecycle ----
lc_rounds=${ES_CRASH_LIFECYCLE_ROUNDS:-2}
lcdb=es_crash_lc
dropdb --if-exists "$lcdb" 2>/dev/null
createdb "$lcdb"
qd "$lcdb" -c "CREATE EXTENSION event_store"

# One writer: streams lc<k>-0 .. lc<k>-7, and two of the round's own,
# lc<k>-r<round>-0 and -1, that the lifecycle session may tombstone or
# erase.  Exact expected versions as above; an append that fails (a
# tombstoned stream) is skipped, not the end of the writer.
lc_writer() {
	local k=$1 round=$2
	declare -A version
	local s v i
	local streams=()
	for i in 0 1 2 3 4 5 6 7; do
		streams+=("lc$k-$i")
	done
	streams+=("lc$k-r$round-0" "lc$k-r$round-1")
	while read -r s v; do
		version[$s]=$v
	done < <(qd "$lcdb" -F ' ' -c "SELECT s, event_store.stream_version(s)
	                                 FROM unnest(ARRAY['$(IFS=,; echo "${streams[*]}" | sed "s/,/','/g")']) s")
	for ((i = 0; i < 1000000; i++)); do
		s=${streams[$((i % 10))]}
		v=${version[$s]}
		printf "SELECT 'ACK|%s|' || event_store.append_event('%s', %d, 'E', '{\"i\": %d}', NULL, '%08x-%04x-4000-8000-%012x') || '|%08x-%04x-4000-8000-%012x';\n" \
			"$s" "$s" "$v" "$i" "$k" "$round" "$i" "$k" "$round" "$i"
		version[$s]=$((v + 1))
	done | PGAPPNAME=es_crash_lc_writer psql -X -q -At -d "$lcdb" >>"$work/lc_acks.$k" 2>/dev/null || true
}

# The lifecycle session: one operation at a time on the writers' streams,
# through pg_temp.op, which returns the operation, its stream, its result
# and the head of $lifecycle before and after it (after > before: the
# operation appended its event at version "after").
lc_operator() {
	local round=$1 i r k j
	{
	cat <<'SQL'
CREATE FUNCTION pg_temp.op(kind text, s text, arg bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	r text;
	id uuid;
	lv0 bigint := event_store.stream_version('$lifecycle');
BEGIN
	CASE kind
	WHEN 'delete' THEN
		r := event_store.delete_stream(s, -2);
	WHEN 'truncate' THEN
		r := event_store.truncate_stream(s, GREATEST(
			(SELECT i.truncate_before FROM event_store.stream_info(s) i),
			event_store.stream_version(s) - arg));
	WHEN 'retention' THEN
		PERFORM event_store.set_stream_retention(s, NULLIF(arg, 0));
		r := COALESCE(arg::text, '');
	WHEN 'redact' THEN
		SELECT e.event_id INTO id FROM event_store.events e
		 WHERE e.stream_id = s ORDER BY e.version DESC LIMIT 1 OFFSET arg;
		IF id IS NULL THEN
			RETURN 'NONE';
		END IF;
		r := event_store.redact_event(id, 'crash test', '{"redacted": true}');
	WHEN 'tombstone' THEN
		r := event_store.tombstone_stream(s, -2);
	WHEN 'erase' THEN
		r := event_store.erase_stream(s, 'crash test');
	END CASE;
	RETURN format('LACK|%s|%s|%s|%s|%s', kind, s, r, lv0, event_store.stream_version('$lifecycle'));
END $$;
SQL
	for ((i = 0; i < 1000000; i++)); do
		r=$((RANDOM % 100))
		k=$((RANDOM % writers + 1))
		j=$((RANDOM % 2))
		if [ "$r" -lt 25 ]; then
			echo "SELECT pg_temp.op('delete', 'lc$k-$((RANDOM % 4))', 0);"
		elif [ "$r" -lt 45 ]; then
			echo "SELECT pg_temp.op('truncate', 'lc$k-$((RANDOM % 6))', $((RANDOM % 4)));"
		elif [ "$r" -lt 65 ]; then
			echo "SELECT pg_temp.op('retention', 'lc$k-$((6 + j))', $((RANDOM % 8)));"
		elif [ "$r" -lt 75 ]; then
			echo "SELECT pg_temp.op('redact', 'lc$k-$((RANDOM % 8))', $((RANDOM % 3)));"
		elif [ "$r" -lt 76 ]; then
			echo "SELECT pg_temp.op('tombstone', 'lc$k-r$round-$j', 0);"
		elif [ "$r" -lt 77 ]; then
			echo "SELECT pg_temp.op('erase', 'lc$k-r$round-$j', 0);"
		elif [ "$r" -lt 78 ]; then
			# A stream with no events: tombstoning reserves its id.
			echo "SELECT pg_temp.op('tombstone', 'lc$k-none-$round-$i', 0);"
		fi
		echo "SELECT pg_sleep(0.002);"
	done
	} | PGAPPNAME=es_crash_lc_ops psql -X -q -At -d "$lcdb" 2>/dev/null |
		grep --line-buffered '^LACK|' >>"$work/lc_ops" || true
}

lc_purger() {
	while :; do
		echo "SELECT 'PACK|' || event_store.purge(50);"
		echo "SELECT pg_sleep(0.005);"
	done | PGAPPNAME=es_crash_lc_purge psql -X -q -At -d "$lcdb" >>"$work/lc_purges" 2>/dev/null || true
}

# Each invariant as one line "name|offenders": offenders is empty when it
# holds, else how many and the first few.
lc_check() {
	cat "$work"/lc_acks.* 2>/dev/null | grep '^ACK|' | cut -d'|' -f2- >"$work/lc_acks.all" || true
	grep '^LACK|' "$work/lc_ops" 2>/dev/null | cut -d'|' -f2- >"$work/lc_ops.all" || true
	qd "$lcdb" <<SQL
CREATE TEMP TABLE wacks (stream_id text, version bigint, event_id uuid);
\copy wacks FROM '$work/lc_acks.all' WITH (DELIMITER '|')
CREATE TEMP TABLE lacks (kind text, stream_id text, result text, lv0 bigint, lv1 bigint);
\copy lacks FROM '$work/lc_ops.all' WITH (DELIMITER '|', NULL '\N')
CREATE TEMP TABLE lc AS
SELECT version, event_type AS t, data AS d, data->>'stream_id' AS sid
  FROM event_store.events WHERE stream_id = '\$lifecycle';
CREATE TEMP TABLE hd AS
SELECT s.*, event_store.first_visible_version(s.stream_id) AS fvv,
	   EXISTS (SELECT FROM lc WHERE lc.t = '\$retention' AND lc.sid = s.stream_id) AS had_retention,
	   (SELECT count(*) FROM event_store.events e
		 WHERE e.stream_id = s.stream_id AND e.version >= event_store.first_visible_version(s.stream_id)) AS n_visible
  FROM event_store.streams s WHERE NOT starts_with(s.stream_id, '\$');
CREATE TEMP TABLE ev AS
SELECT stream_id, count(*) AS n, max(version) AS hi
  FROM event_store.events WHERE NOT starts_with(stream_id, '\$') GROUP BY stream_id;
CREATE FUNCTION pg_temp.report(name text, offenders text[]) RETURNS text
LANGUAGE sql RETURN name || '|' || CASE WHEN cardinality(offenders) = 0 THEN ''
	ELSE cardinality(offenders) || ': ' || array_to_string(offenders[1:5], '; ') END;

SELECT pg_temp.report('every head is at or above its stream''s last stored version', ARRAY(
	SELECT format('%s head %s, last stored %s', ev.stream_id, hd.version, ev.hi)
	  FROM ev LEFT JOIN hd USING (stream_id)
	 WHERE hd.version IS NULL OR hd.version < ev.hi));
SELECT pg_temp.report('streams without tombstone or retention store every version from the first visible one to the head', ARRAY(
	SELECT format('%s: visible from %s, head %s, %s stored', stream_id, fvv, version, n_visible)
	  FROM hd
	 WHERE NOT tombstoned AND NOT had_retention AND max_count IS NULL AND max_age IS NULL
	   AND n_visible <> GREATEST(version - fvv + 1, 0)));
SELECT pg_temp.report('tombstoned streams store no event', ARRAY(
	SELECT format('%s: %s stored', stream_id, n) FROM hd JOIN ev USING (stream_id) WHERE tombstoned));
SELECT pg_temp.report('every acknowledged append is stored, unless a lifecycle operation removed it', ARRAY(
	SELECT format('%s/%s %s', a.stream_id, a.version, a.event_id)
	  FROM wacks a LEFT JOIN hd USING (stream_id)
	 WHERE NOT EXISTS (SELECT FROM event_store.events e WHERE e.event_id = a.event_id)
	   AND NOT COALESCE(hd.tombstoned OR a.version < hd.fvv OR hd.had_retention, false)));
SELECT pg_temp.report('every stored acknowledged append has its acknowledged stream and version', ARRAY(
	SELECT format('%s: acknowledged %s/%s, stored %s/%s', event_id, a.stream_id, a.version, e.stream_id, e.version)
	  FROM wacks a JOIN event_store.events e USING (event_id)
	 WHERE (e.stream_id, e.version) IS DISTINCT FROM (a.stream_id, a.version)));
SELECT pg_temp.report('no event id is stored twice', ARRAY(
	SELECT event_id::text FROM event_store.events GROUP BY event_id HAVING count(*) > 1));
SELECT pg_temp.report('the \$lifecycle versions are 1..head', ARRAY(
	SELECT format('head %s, %s stored, %s..%s', s.version, count(l.version), min(l.version), max(l.version))
	  FROM event_store.streams s LEFT JOIN lc l ON true
	 WHERE s.stream_id = '\$lifecycle' GROUP BY s.version
	HAVING count(l.version) <> s.version OR min(l.version) <> 1 OR max(l.version) <> s.version));
SELECT pg_temp.report('every acknowledged lifecycle operation has its \$lifecycle event', ARRAY(
	SELECT format('%s %s -> \$lifecycle %s', kind, stream_id, lv1)
	  FROM lacks a
	 WHERE lv1 > lv0 AND NOT EXISTS (SELECT FROM lc WHERE lc.version = a.lv1 AND lc.sid = a.stream_id
		   AND lc.t = CASE a.kind WHEN 'delete' THEN '\$deleted' WHEN 'truncate' THEN '\$truncated'
						WHEN 'retention' THEN '\$retention' WHEN 'redact' THEN '\$redacted'
						WHEN 'tombstone' THEN '\$tombstoned' WHEN 'erase' THEN '\$erased' END)));
SELECT pg_temp.report('every \$lifecycle event''s operation is reflected', ARRAY(
	SELECT format('%s %s (\$lifecycle %s)', lc.t, lc.sid, lc.version)
	  FROM lc LEFT JOIN hd ON hd.stream_id = lc.sid
	 WHERE CASE lc.t
		   WHEN '\$tombstoned' THEN NOT COALESCE(hd.tombstoned, false)
		   WHEN '\$erased' THEN NOT COALESCE(hd.tombstoned, false)
				OR NOT EXISTS (SELECT FROM event_store.erasures x
							   WHERE x.erasure_id = (lc.d->>'erasure_id')::bigint
								 AND x.stream_id = lc.sid AND x.operation = 'erase_stream')
		   WHEN '\$deleted' THEN NOT COALESCE(hd.visible_from >= (lc.d->>'first_visible_version')::bigint, false)
		   WHEN '\$truncated' THEN NOT COALESCE(hd.visible_from >= (lc.d->>'first_visible_version')::bigint, false)
		   WHEN '\$retention' THEN hd.stream_id IS NULL
				OR (NOT hd.tombstoned
					AND lc.version = (SELECT max(l2.version) FROM lc l2 WHERE l2.t = '\$retention' AND l2.sid = lc.sid)
					AND hd.max_count IS DISTINCT FROM (lc.d->>'max_count')::bigint)
		   WHEN '\$redacted' THEN NOT EXISTS (SELECT FROM event_store.erasures x
											  WHERE x.erasure_id = (lc.d->>'erasure_id')::bigint
												AND x.event_id = (lc.d->>'event_id')::uuid
												AND x.operation = 'redact_event')
				OR EXISTS (SELECT FROM event_store.events e WHERE e.event_id = (lc.d->>'event_id')::uuid
						   AND (e.data <> '{"redacted": true}' OR e.metadata IS NOT NULL
								OR e.global_position <> (lc.d->>'global_position')::bigint))
		   ELSE true END));
SELECT pg_temp.report('every lifecycle state has its \$lifecycle event', ARRAY(
	SELECT 'tombstoned ' || stream_id FROM hd
	 WHERE tombstoned AND NOT EXISTS (SELECT FROM lc WHERE lc.sid = hd.stream_id AND lc.t IN ('\$tombstoned', '\$erased'))
	UNION ALL
	SELECT format('%s visible from %s', stream_id, visible_from) FROM hd
	 WHERE NOT tombstoned AND visible_from <> COALESCE((SELECT max((lc.d->>'first_visible_version')::bigint) FROM lc
			WHERE lc.sid = hd.stream_id AND lc.t IN ('\$deleted', '\$truncated')), 1)
	UNION ALL
	SELECT format('%s max_count %s', stream_id, max_count) FROM hd
	 WHERE NOT tombstoned AND max_count IS DISTINCT FROM (SELECT (lc.d->>'max_count')::bigint FROM lc
			WHERE lc.sid = hd.stream_id AND lc.t = '\$retention' ORDER BY lc.version DESC LIMIT 1)
	UNION ALL
	SELECT 'erasure ' || erasure_id FROM event_store.erasures x
	 WHERE NOT EXISTS (SELECT FROM lc WHERE lc.t IN ('\$erased', '\$redacted')
					   AND (lc.d->>'erasure_id')::bigint = x.erasure_id)
	UNION ALL
	SELECT 'redacted event ' || event_id FROM event_store.events e
	 WHERE e.data = '{"redacted": true}'
	   AND NOT EXISTS (SELECT FROM lc WHERE lc.t = '\$redacted' AND (lc.d->>'event_id')::uuid = e.event_id)));
WITH vis AS (
	SELECT e.global_position FROM event_store.events e
	  JOIN (SELECT stream_id, event_store.first_visible_version(stream_id) AS fvv FROM event_store.streams) b
	 USING (stream_id) WHERE e.version >= b.fvv),
ra AS (
	SELECT global_position, global_position <= lag(global_position) OVER () AS back
	  FROM event_store.read_all(0, NULL))
SELECT pg_temp.report('read_all returns every stored event that is not hidden, once, in order', ARRAY(
	SELECT format('%s not hidden, %s read, %s distinct, %s out of order, %s missing, %s extra',
		(SELECT count(*) FROM vis), (SELECT count(*) FROM ra), (SELECT count(DISTINCT global_position) FROM ra),
		(SELECT count(*) FROM ra WHERE back),
		(SELECT count(*) FROM (SELECT global_position FROM vis EXCEPT SELECT global_position FROM ra) m),
		(SELECT count(*) FROM (SELECT global_position FROM ra EXCEPT SELECT global_position FROM vis) x))
	 WHERE (SELECT count(*) FROM ra) <> (SELECT count(*) FROM vis)
		OR (SELECT count(DISTINCT global_position) FROM ra) <> (SELECT count(*) FROM vis)
		OR EXISTS (SELECT FROM ra WHERE back)
		OR EXISTS (SELECT global_position FROM vis EXCEPT SELECT global_position FROM ra)));
SQL
}

lc_invariants=11
for round in $(seq "$lc_rounds"); do
	qd "$lcdb" -c "SET client_min_messages = warning; DROP TABLE IF EXISTS crash_marker;
	               CREATE UNLOGGED TABLE crash_marker AS SELECT 1 AS x"
	pids=()
	for k in $(seq "$writers"); do
		lc_writer "$k" "$round" &
		pids+=($!)
	done
	lc_operator "$round" &
	pids+=($!)
	lc_purger &
	pids+=($!)
	sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.1f", 1.5 + (r % 15) / 10 }')"
	if [ $((round % 2)) -eq 1 ]; then
		how="pg_ctl stop -m immediate"
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$ES_DATA" -m immediate stop >/dev/null
		wait "${pids[@]}" || true
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$ES_DATA" -l "$ES_DATA/../server.log" \
			-w restart >/dev/null 2>&1
	else
		how="kill -9 of the lifecycle session's backend"
		victim=$(qd "$lcdb" -c "SELECT pid FROM pg_stat_activity
		                        WHERE application_name LIKE 'es_crash_lc%'
		                        ORDER BY application_name = 'es_crash_lc_ops' DESC LIMIT 1")
		if [ -z "$victim" ]; then
			t_fail "crash lifecycle round $round: a backend to kill" "none of the test's sessions is connected"
			t_done
		fi
		kill -9 "$victim"
		wait "${pids[@]}" || true
	fi
	# The server is back when it answers and the unlogged table, emptied
	# by crash recovery, is empty.
	recovered=
	for _ in $(seq 120); do
		if [ "$(psql -X -q -At -d "$lcdb" -c "SELECT count(*) FROM crash_marker" 2>/dev/null)" = 0 ]; then
			recovered=yes
			break
		fi
		sleep 0.5
	done
	t_eq "crash lifecycle round $round ($how): the server ran crash recovery and is back" "$recovered" yes
	[ -n "$recovered" ] || t_done

	read -r acked ops effective purged <<<"$(
		echo "$(cat "$work"/lc_acks.* 2>/dev/null | grep -c '^ACK|' || true)" \
			"$(grep -c '^LACK|' "$work/lc_ops" 2>/dev/null || true)" \
			"$(awk -F'|' '$1 == "LACK" && $6 > $5' "$work/lc_ops" 2>/dev/null | wc -l)" \
			"$(awk -F'|' '$1 == "PACK" { n += $2 } END { print n + 0 }' "$work/lc_purges" 2>/dev/null)")"
	echo "crash lifecycle: round $round: $acked appends and $ops lifecycle operations ($effective changing something:" \
		"$(awk -F'|' '$1 == "LACK" && $6 > $5 { n[$2]++ } END { for (k in n) printf "%s %d, ", k, n[k] }' "$work/lc_ops" |
			sed 's/, $//')) acknowledged, $purged events purged so far"
	t_eq "crash lifecycle round $round: appends and lifecycle operations were acknowledged before the crash" \
		"$([ "$acked" -gt 0 ] && [ "$effective" -gt 0 ] && echo yes)" yes
	if ! report=$(lc_check 2>"$work/lc_check.err") || [ -s "$work/lc_check.err" ]; then
		t_fail "crash lifecycle round $round: the invariants could be checked" "$(cat "$work/lc_check.err")"
		t_done
	fi
	n=0
	while IFS='|' read -r name offenders; do
		t_eq "crash lifecycle round $round: $name" "$offenders" ""
		n=$((n + 1))
	done <<<"$report"
	t_eq "crash lifecycle round $round: every invariant was checked" "$n" "$lc_invariants"
done

t_eq "crash lifecycle: purge removed events during the load" \
	"$([ "$(awk -F'|' '$1 == "PACK" { n += $2 } END { print n + 0 }' "$work/lc_purges")" -gt 0 ] && echo yes)" yes
# After the crashes: appends go on at head + 1 wherever the stream is not
# tombstoned, and VE003 wherever it is.
t_eq "crash lifecycle: every stream not tombstoned takes an append at head + 1" \
	"$(qd "$lcdb" -c "SELECT count(*) || ' ' || count(*) FILTER (WHERE event_store.append_event(stream_id, version,
	                   'After', '{}') = version + 1)
	                   FROM event_store.streams WHERE NOT tombstoned AND NOT starts_with(stream_id, '\$')" 2>&1 |
		awk '{ print ($1 > 0 && $1 == $2) ? "yes" : $0 }')" yes
t_eq "crash lifecycle: every tombstoned stream refuses an append with VE003" \
	"$(qd "$lcdb" 2>&1 <<'SQL'
CREATE FUNCTION pg_temp.refused(s text, v bigint) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM event_store.append_event(s, v, 'After', '{}');
	RETURN 'appended';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END $$;
SELECT count(*) || ' ' || count(*) FILTER (WHERE pg_temp.refused(stream_id, version) = 'VE003')
  FROM event_store.streams WHERE tombstoned;
SQL
	)" "$(qd "$lcdb" -c "SELECT CASE WHEN count(*) > 0 THEN count(*) || ' ' || count(*) ELSE 'some tombstoned stream' END
	                   FROM event_store.streams WHERE tombstoned")"

dropdb "$lcdb"
t_done
