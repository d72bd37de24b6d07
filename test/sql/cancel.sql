-- cancel: cancel and statement_timeout stop an append of any size, whether
-- its batch is being parsed, checked or inserted, and nothing of it stays.
-- Without interrupt checks in those loops, a batch of a million events ran
-- to its end (seconds) before the timeout took effect.
\i test/sql/helpers.inc

-- Runs a statement that must be cancelled; says whether the cancel came
-- within the given time.
CREATE FUNCTION pg_temp.cancelled_within(sql text, bound interval) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	EXECUTE sql;
	RETURN 'not cancelled';
EXCEPTION WHEN query_canceled THEN
	RETURN CASE WHEN clock_timestamp() - t0 < bound THEN 'cancelled in time'
		   ELSE 'cancelled after ' || (clock_timestamp() - t0) END;
END $$;

-- Batches of a million events, built before the timed statements: one with
-- no ids, one where every event has an id (so the id checks run too).
CREATE TEMP TABLE big AS
SELECT jsonb_agg(jsonb_build_object('type', 'Big', 'data', i)) AS events
  FROM generate_series(1, 1000000) i;
CREATE TEMP TABLE big_ids AS
SELECT jsonb_agg(jsonb_build_object('type', 'Big', 'data', i,
		'id', md5(i::text)::uuid)) AS events
  FROM generate_series(1, 1000000) i;

-- Cancelled while the batch is parsed (a million elements take seconds).
SET statement_timeout = '200ms';
SELECT pg_temp.cancelled_within(
	$$SELECT event_store.append_events('cancel-1', 0, events) FROM big$$,
	'3 s');
-- Cancelled later on: in the id checks or the inserts.
SET statement_timeout = '2500ms';
SELECT pg_temp.cancelled_within(
	$$SELECT event_store.append_events('cancel-2', 0, events) FROM big_ids$$,
	'6 s');
SELECT pg_temp.cancelled_within(
	$$SELECT event_store.append_events('cancel-3', 0, events) FROM big$$,
	'6 s');
RESET statement_timeout;

-- Nothing was stored, and the store goes on.
SELECT count(*) AS stored FROM event_store.events
 WHERE stream_id IN ('cancel-1', 'cancel-2', 'cancel-3');
SELECT event_store.append_event('cancel-1', 0, 'After', '{}');
SELECT stream_id, version
  FROM event_store.read_all((SELECT last_value - 1 FROM event_store.events_global_position_seq));
