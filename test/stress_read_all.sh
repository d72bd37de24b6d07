#!/usr/bin/env bash
# test/stress_read_all.sh: the global log under concurrent writers.
#
# Several pgbench clients append to many streams, single events and batches,
# each transaction sleeping a random time before it commits or (one in four)
# rolls back.  Meanwhile one reader follows read_all from checkpoint to
# checkpoint (checkpoint, read_all, save_checkpoint, commit), recording every
# event it receives.  When the writers stop, the reader catches up, and the
# test checks that it received every committed event exactly once, in
# ascending position order, and that every stream's versions are 1..head.
#
# Needs a running server (PGHOST, PGPORT, PGUSER) with the extension
# installed.  ES_STRESS_SECONDS (default 8) and ES_STRESS_CLIENTS (default 8)
# set its length and width.  Reports by test/lib.sh.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
seconds=${ES_STRESS_SECONDS:-8}
clients=${ES_STRESS_CLIENTS:-8}
es_test_start stress es_stress
q <<'SQL'
CREATE TABLE stress_received (seq bigserial PRIMARY KEY, position bigint NOT NULL);
CREATE TABLE stress_done (done boolean NOT NULL);
CREATE PROCEDURE stress_follow() LANGUAGE plpgsql AS $$
DECLARE
	cp bigint;
	got bigint;
	last bigint;
	writers_done boolean;
BEGIN
	LOOP
		SELECT EXISTS (SELECT FROM stress_done) INTO writers_done;
		cp := event_store.checkpoint('stress');
		WITH batch AS (
			SELECT global_position FROM event_store.read_all(cp, 200)
		), ins AS (
			INSERT INTO stress_received (position)
			SELECT global_position FROM batch ORDER BY global_position
			RETURNING position
		)
		SELECT count(*), max(position) INTO got, last FROM ins;
		IF got > 0 THEN
			PERFORM event_store.save_checkpoint('stress', last);
		END IF;
		COMMIT;
		EXIT WHEN got = 0 AND writers_done;
		IF got = 0 THEN
			PERFORM pg_sleep(0.005);
		END IF;
	END LOOP;
END $$;
SQL

cat >"$work/writer.sql" <<'SQL'
\set s random(1, 200)
\set kind random(1, 10)
\set delay random(0, 3000)
\set fate random(1, 4)
BEGIN;
\if :kind <= 7
SELECT event_store.append_event('stress-' || :s, -2, 'E', '{"k": 1}');
\else
SELECT event_store.append_events('stress-' || :s, -2, '[{"type": "B", "data": 1}, {"type": "B", "data": 2}, {"type": "B", "data": 3}]');
\endif
\sleep :delay us
\if :fate = 1
ROLLBACK;
\else
COMMIT;
\endif
SQL

q -c "CALL stress_follow()" >"$work/reader.log" 2>&1 &
reader=$!
if pgbench -n -M prepared -c "$clients" -j 2 -T "$seconds" -f "$work/writer.sql" "$db" \
	>"$work/pgbench.log" 2>&1; then
	t_ok "stress: the writers ran without an error"
else
	t_fail "stress: the writers ran without an error" "$(cat "$work/pgbench.log")"
fi
q -c "INSERT INTO stress_done VALUES (true)"
if wait "$reader"; then
	t_ok "stress: the reader ran without an error"
else
	t_fail "stress: the reader ran without an error" "$(cat "$work/reader.log")"
fi

result=$(q <<'SQL'
WITH committed AS (
	SELECT global_position FROM event_store.events WHERE stream_id LIKE 'stress-%'
), received AS (
	SELECT position FROM stress_received
)
SELECT format('%s %s %s %s %s %s %s',
	(SELECT count(*) FROM committed),
	(SELECT count(*) FROM received),
	(SELECT count(DISTINCT position) FROM received),
	(SELECT count(*) FROM (SELECT global_position FROM committed
						   EXCEPT SELECT position FROM received) missing),
	(SELECT count(*) FROM (SELECT position FROM received
						   EXCEPT SELECT global_position FROM committed) extra),
	(SELECT count(*) FROM (SELECT position <= lag(position) OVER (ORDER BY seq) AS back
							 FROM stress_received) o WHERE back),
	0)
SQL
)
read -r committed received distinct missing extra backwards _ <<<"$result"
tps=$(grep -Eo 'tps = [0-9.]+' "$work/pgbench.log" | head -1)
echo "stress: $clients writers for ${seconds}s ($tps transactions, a quarter rolled back)"
echo "stress: $committed committed events; reader received $received ($distinct distinct)," \
	"missing $missing, extra $extra, out of order $backwards"

t_eq "stress: the writers committed events" "$([ "$committed" -gt 0 ] && echo yes)" yes
t_eq "stress: the reader received every committed event" "$received/$missing" "$committed/0"
t_eq "stress: no event twice, none extra" "$distinct/$extra" "$received/0"
t_eq "stress: positions came in ascending order" "$backwards" 0
t_eq "stress: stream versions are 1..head" "$(es_bad_streams "$db")" 0

dropdb "$db"
t_done
