-- read_stream: directions, bounds, and a replay that streams.
\i test/sql/helpers.inc

SELECT event_store.append_events('rs-1', 0,
	(SELECT jsonb_agg(jsonb_build_object('type', 'E' || i, 'data', i)) FROM generate_series(1, 10) i));
SELECT event_store.append_event('rs-other', 0, 'Other', '0');

-- The row type, column by column.
SELECT attnum, attname, format_type(atttypid, atttypmod)
  FROM pg_attribute
 WHERE attrelid = 'event_store.event'::regclass AND attnum > 0
 ORDER BY attnum;

-- Forward: all, from a version, at most max_count.
SELECT version, event_type, data FROM event_store.read_stream('rs-1');
SELECT array_agg(version) FROM event_store.read_stream('rs-1', 7);
SELECT array_agg(version) FROM event_store.read_stream('rs-1', 3, 4);
SELECT array_agg(version) FROM event_store.read_stream('rs-1', NULL, 2);
SELECT array_agg(version) FROM event_store.read_stream('rs-1', -5, 2);
SELECT count(*) FROM event_store.read_stream('rs-1', 11);

-- Backward: from the last, or from a version, descending.
SELECT array_agg(version) FROM event_store.read_stream('rs-1', backward => true);
SELECT array_agg(version) FROM event_store.read_stream('rs-1', 4, NULL, true);
SELECT array_agg(version) FROM event_store.read_stream('rs-1', NULL, 3, true);
SELECT array_agg(version) FROM event_store.read_stream('rs-1', 100, 2, true);
SELECT count(*) FROM event_store.read_stream('rs-1', 0, NULL, true);

-- max_count 0, an unknown stream, a NULL stream id: no rows, no error.
SELECT count(*) FROM event_store.read_stream('rs-1', NULL, 0);
SELECT count(*) FROM event_store.read_stream('rs-unknown');
SELECT count(*) FROM event_store.read_stream(NULL);
-- backward NULL reads forward.
SELECT array_agg(version) FROM event_store.read_stream('rs-1', 9, NULL, NULL);

-- A negative max_count is refused.
SELECT pg_temp.try($$SELECT * FROM event_store.read_stream('rs-1', NULL, -1)$$);

-- Only the named stream is returned, in the same row as stored.
SELECT count(*) FROM event_store.read_stream('rs-other');
SELECT (SELECT count(*) FROM event_store.read_stream('rs-1') r
		  JOIN event_store.events e USING (global_position)
		 WHERE (r.stream_id, r.version, r.event_id, r.event_type, r.data, r.created_at)
			 = (e.stream_id, e.version, e.event_id, e.event_type, e.data, e.created_at)) AS identical;

-- The function is inlined into the calling query: the replay runs as part of
-- the caller's plan, reading the events table directly, so its rows are
-- streamed (or sorted within work_mem, spilling beyond it) instead of being
-- collected whole in a function's result set.
CREATE FUNCTION pg_temp.plan_of(sql text) RETURNS TABLE (inlined bool, reads_events bool)
LANGUAGE plpgsql AS $$
DECLARE
	plan text := '';
	line text;
BEGIN
	FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || sql LOOP
		plan := plan || line || E'\n';
	END LOOP;
	RETURN QUERY SELECT plan !~ 'Function Scan', plan ~ ' on events ';
END $$;
SELECT * FROM pg_temp.plan_of($$SELECT * FROM event_store.read_stream('rs-1')$$);
SELECT * FROM pg_temp.plan_of($$SELECT * FROM event_store.read_stream('rs-1', 3, 2, true)$$);
PREPARE replay(text, bigint, bigint, boolean) AS
	SELECT version, event_type FROM event_store.read_stream($1, $2, $3, $4);
SET plan_cache_mode = force_generic_plan;
SELECT * FROM pg_temp.plan_of($$EXECUTE replay('rs-1', NULL, NULL, false)$$);
EXECUTE replay('rs-1', 8, NULL, false);
EXECUTE replay('rs-1', 8, 2, true);
RESET plan_cache_mode;
DEALLOCATE replay;

-- A replay much larger than work_mem returns every row, in order.
SET work_mem = '64kB';
SELECT event_store.append_events('rs-big', 0,
	(SELECT jsonb_agg(jsonb_build_object('type', 'Big', 'data', repeat('x', 200)))
	   FROM generate_series(1, 5000)));
SELECT count(*), sum(length(data #>> '{}')),
	   bool_and(version = rn) AS in_order
  FROM (SELECT version, data, row_number() OVER () AS rn
		  FROM event_store.read_stream('rs-big')) r;
RESET work_mem;
