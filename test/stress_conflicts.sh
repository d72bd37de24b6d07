#!/usr/bin/env bash
# test/stress_conflicts.sh: many more clients than cores on a few hot streams.
#
# pgbench clients (32 by default, on 2 cores) hammer 4 streams with a mix of
# appends expecting the version just read (often stale by the time they
# run), appends expecting a version known to be stale, immediate retries of
# a successful append with the same event id, batches of three, and reads.
# Every append goes through a wrapper that catches only the conflict
# SQLSTATE (VE001); any other error (a deadlock, a unique violation, an
# internal error) aborts the client and fails the test.  A retry must return
# the version of the call it repeats.  At the end the events written by the
# successful appends must add up to the sum of the stream versions, and the
# invariants of every stream must hold.
#
# Needs a running server (PGHOST, PGPORT, PGUSER) with the extension
# installed.  ES_CONFLICT_SECONDS (default 8) and ES_CONFLICT_CLIENTS
# (default 32) set its length and width.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
seconds=${ES_CONFLICT_SECONDS:-8}
clients=${ES_CONFLICT_CLIENTS:-32}
es_test_start conflicts es_conflicts
q <<'SQL'
CREATE UNLOGGED TABLE outcome (kind text, ok boolean, written int);
-- Append, recording the outcome; only a conflict is caught.
CREATE FUNCTION try_append(p_kind text, p_stream text, p_expected bigint,
						   p_id uuid, p_batch boolean) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	v bigint;
BEGIN
	IF p_batch THEN
		v := event_store.append_events(p_stream, p_expected, jsonb_build_array(
				jsonb_build_object('type', 'B', 'data', 1, 'id', p_id),
				jsonb_build_object('type', 'B', 'data', 2),
				jsonb_build_object('type', 'B', 'data', 3)));
		INSERT INTO outcome VALUES (p_kind, true, 3);
	ELSE
		v := event_store.append_event(p_stream, p_expected, 'E', '{}', NULL, p_id);
		INSERT INTO outcome VALUES (p_kind, true, 1);
	END IF;
	RETURN v;
EXCEPTION WHEN SQLSTATE 'VE001' THEN
	INSERT INTO outcome VALUES (p_kind, false, 0);
	RETURN 0;
END $$;
-- Repeat a successful single append with the same id and expectation: it
-- must write nothing and return the same version.  (0: the first conflicted.)
CREATE FUNCTION retry_append(p_stream text, p_expected bigint, p_id uuid,
							 p_first bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	v bigint;
BEGIN
	IF p_first = 0 THEN
		RETURN;
	END IF;
	v := event_store.append_event(p_stream, p_expected, 'E', '{}', NULL, p_id);
	IF v IS DISTINCT FROM p_first THEN
		RAISE EXCEPTION 'retry of % returned % instead of %', p_id, v, p_first;
	END IF;
	INSERT INTO outcome VALUES ('retry', true, 0);
END $$;
SQL

cat >"$work/mix.sql" <<'SQL'
\set s random(1, 4)
\set kind random(1, 100)
\if :kind <= 40
SELECT event_store.stream_version('hot-' || :s) AS v \gset
SELECT try_append('read_then_append', 'hot-' || :s, :v, NULL, false);
\elif :kind <= 55
SELECT greatest(event_store.stream_version('hot-' || :s) - 1, 1) AS v \gset
SELECT try_append('stale', 'hot-' || :s, :v, NULL, false);
\elif :kind <= 75
SELECT event_store.stream_version('hot-' || :s) AS v, gen_random_uuid() AS id \gset
SELECT try_append('retried', 'hot-' || :s, :v, :id, false) AS first \gset
SELECT retry_append('hot-' || :s, :v, :id, :first);
\elif :kind <= 90
SELECT event_store.stream_version('hot-' || :s) AS v \gset
SELECT try_append('batch', 'hot-' || :s, :v, gen_random_uuid(), true);
\else
SELECT count(*) FROM event_store.read_stream('hot-' || :s, NULL, 10, true);
\endif
SQL

if pgbench -n -M prepared -c "$clients" -j 2 -T "$seconds" -f "$work/mix.sql" "$db" \
	>"$work/pgbench.log" 2>&1 && ! grep -Eq 'aborted|ERROR' "$work/pgbench.log"; then
	t_ok "conflicts: every failure was a version conflict (VE001)"
else
	t_fail "conflicts: every failure was a version conflict (VE001)" \
		"$(grep -E 'aborted|ERROR' "$work/pgbench.log" | head -5)"
fi

result=$(q <<'SQL'
SELECT format('%s %s %s %s %s %s %s %s',
	(SELECT count(*) FILTER (WHERE ok AND kind <> 'retry') FROM outcome),
	(SELECT count(*) FILTER (WHERE NOT ok) FROM outcome),
	(SELECT count(*) FILTER (WHERE kind = 'retry') FROM outcome),
	(SELECT COALESCE(sum(written), 0) FROM outcome),
	(SELECT COALESCE(sum(version), 0) FROM event_store.streams),
	(SELECT count(*) FROM event_store.events),
	(SELECT count(*) - count(DISTINCT event_id) FROM event_store.events),
	0)
SQL
)
read -r ok conflicts retries written versions stored dup_ids _ <<<"$result"
tps=$(grep -Eo 'tps = [0-9.]+' "$work/pgbench.log" | head -1)
rate=$(awk -v c="$conflicts" -v o="$ok" 'BEGIN { if (c + o > 0) printf "%.1f", 100 * c / (c + o); else print 0 }')
echo "conflicts: $clients clients on 4 streams for ${seconds}s ($tps transactions)"
echo "conflicts: $ok successful appends, $conflicts conflicts ($rate%), $retries idempotent retries;" \
	"events written $written, sum of versions $versions, stored $stored," \
	"duplicate ids $dup_ids"

t_eq "conflicts: some appends succeeded and some conflicted" \
	"$([ "$ok" -gt 0 ] && [ "$conflicts" -gt 0 ] && echo yes)" yes
t_eq "conflicts: the events written add up to the sum of the stream versions" "$written" "$versions"
t_eq "conflicts: the events stored add up to the sum of the stream versions" "$stored" "$versions"
t_eq "conflicts: no event id stored twice" "$dup_ids" 0
t_eq "conflicts: stream versions are 1..head" "$(es_bad_streams "$db")" 0

dropdb "$db"
t_done
