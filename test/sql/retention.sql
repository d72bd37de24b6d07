-- retention: truncate_stream, set_stream_retention (max_count, max_age) and
-- purge.  Hidden events leave every read function at once; purge removes
-- them physically, in bounded batches; visible events are never removed.
\i test/sql/helpers.inc

SELECT event_store.append_events('ret-1', 0,
	(SELECT jsonb_agg(jsonb_build_object('type', 'Tick', 'data', jsonb_build_object('i', i)))
	   FROM generate_series(1, 10) i));
SELECT event_store.append_events('ret-2', 0,
	(SELECT jsonb_agg(jsonb_build_object('type', 'Tick', 'data', jsonb_build_object('i', i)))
	   FROM generate_series(1, 10) i));

-- truncate_stream hides the versions below a bound, for good.
SELECT event_store.truncate_stream('ret-1', 4);
SELECT min(version), max(version), count(*) FROM event_store.read_stream('ret-1');
SELECT min(version), max(version) FROM event_store.read_stream('ret-1', NULL, NULL, true);
SELECT version FROM event_store.read_stream('ret-1', 2, 2);
SELECT count(*) AS read_all_rows FROM event_store.read_all(0, NULL) WHERE stream_id = 'ret-1';
SELECT count(*) AS category_rows FROM event_store.read_category('ret', 0) WHERE stream_id = 'ret-1';
SELECT event_store.truncate_stream('ret-1', 4);
SELECT pg_temp.try($$SELECT event_store.truncate_stream('ret-1', 3)$$);
SELECT pg_temp.try($$SELECT event_store.truncate_stream('ret-1', 12)$$);
SELECT pg_temp.try($$SELECT event_store.truncate_stream('ret-1', 0)$$);
SELECT pg_temp.try($$SELECT event_store.truncate_stream('ret-1', NULL)$$);
-- Truncating before head + 1 hides everything; appends go on.
SELECT event_store.truncate_stream('ret-2', 11);
SELECT count(*) FROM event_store.read_stream('ret-2');
SELECT event_store.append_event('ret-2', 0, 'Tick', '{"i": 11}');
SELECT version FROM event_store.read_stream('ret-2');

-- max_count: the latest N show, and the window moves with each append.
SELECT event_store.set_stream_retention('ret-1', max_count => 3);
SELECT version FROM event_store.read_stream('ret-1');
SELECT version FROM event_store.read_all(0, NULL) WHERE stream_id = 'ret-1';
SELECT event_store.append_event('ret-1', 10, 'Tick', '{"i": 11}');
SELECT version FROM event_store.read_stream('ret-1');
SELECT version FROM event_store.read_category('ret', 0) WHERE stream_id = 'ret-1';
SELECT version, first_visible_version, truncate_before, max_count, max_age
  FROM event_store.stream_info('ret-1');
-- The same setting again changes nothing (no lifecycle event).
SELECT event_store.set_stream_retention('ret-1', max_count => 3);
-- Raising it shows again what purge has not removed.
SELECT event_store.set_stream_retention('ret-1', max_count => 6);
SELECT version FROM event_store.read_stream('ret-1');
SELECT event_store.set_stream_retention('ret-1', max_count => 3);

-- max_age: events older than the limit, measured from the statement's
-- start, are hidden.
SELECT event_store.append_event('ret-age', 0, 'Old', '{}');
SELECT pg_sleep(1.5);
SELECT event_store.append_event('ret-age', 1, 'New', '{}');
SELECT event_store.set_stream_retention('ret-age', max_age => '1 second');
SELECT version, event_type FROM event_store.read_stream('ret-age');
SELECT version FROM event_store.read_all(0, NULL) WHERE stream_id = 'ret-age';
SELECT first_visible_version FROM event_store.stream_info('ret-age');
-- Clearing a limit shows the events again.
SELECT event_store.set_stream_retention('ret-age');
SELECT version FROM event_store.read_stream('ret-age');
-- (Purge below must not depend on the clock: hide the old one by count.)
SELECT event_store.set_stream_retention('ret-age', max_count => 1);

-- A retention limit set before a stream's first append.
SELECT event_store.set_stream_retention('ret-new', max_count => 2);
SELECT event_store.stream_version('ret-new');
SELECT event_store.append_events('ret-new', 0, '[{"type": "A", "data": 1},
	{"type": "B", "data": 2}, {"type": "C", "data": 3}]');
SELECT version, event_type FROM event_store.read_stream('ret-new');

SELECT pg_temp.try($$SELECT event_store.set_stream_retention('ret-1', max_count => 0)$$);
SELECT pg_temp.try($$SELECT event_store.set_stream_retention('ret-1', max_age => '0 seconds')$$);
SELECT pg_temp.try($$SELECT event_store.set_stream_retention('ret-1', max_age => '-1 day')$$);

-- purge removes the hidden events, at most max_events per call, and never
-- a visible one.
CREATE TEMP TABLE visible_before AS
	SELECT e.event_id FROM event_store.read_all(0, NULL) e;
SELECT event_store.purge(5);
SELECT event_store.purge(1000) > 0 AS purged_more;
SELECT event_store.purge(1000);
SELECT (SELECT count(*) FROM visible_before) =
	   (SELECT count(*) FROM event_store.events e JOIN visible_before v USING (event_id))
	   AS every_visible_event_kept;
SELECT stream_id, min(version), max(version), count(*)
  FROM event_store.events WHERE stream_id LIKE 'ret-%' GROUP BY 1 ORDER BY 1;
-- After a purge, raising a limit shows nothing that was removed.
SELECT event_store.set_stream_retention('ret-1', max_count => 100);
SELECT min(version), count(*) FROM event_store.read_stream('ret-1');
SELECT pg_temp.try($$SELECT event_store.purge(0)$$);
SELECT pg_temp.try($$SELECT event_store.purge(NULL)$$);

SELECT event_type, data FROM event_store.read_stream('$lifecycle')
 WHERE data->>'stream_id' LIKE 'ret-%' ORDER BY version;

-- A snapshot below the first visible version - 1 is not returned: loading
-- from it would skip the hidden events between.  One at that version is.
SELECT event_store.append_events('ret-snap', 0,
	(SELECT jsonb_agg(jsonb_build_object('type', 'Tick', 'data', i)) FROM generate_series(1, 8) i));
SELECT event_store.save_snapshot('ret-snap', 3, '{"at": 3}');
SELECT event_store.save_snapshot('ret-snap', 5, '{"at": 5}');
SELECT event_store.truncate_stream('ret-snap', 6);
SELECT version, state FROM event_store.read_snapshot('ret-snap');
SELECT version, state FROM event_store.read_snapshot('ret-snap', 4);
SELECT event_store.set_stream_retention('ret-snap', max_count => 2);
SELECT count(*) AS snapshot_rows FROM event_store.read_snapshot('ret-snap');

-- max_age: each field must be non-negative (a month is not 30 days), and
-- at most 1000 years.
SELECT pg_temp.try($$SELECT event_store.set_stream_retention('ret-1', max_age => '-2 mons +60 days')$$);
SELECT pg_temp.try($$SELECT event_store.set_stream_retention('ret-1', max_age => '300000 years')$$);
-- '1 mon' and '30 days' are different settings.
SELECT event_store.set_stream_retention('ret-x', max_age => '1 mon');
SELECT event_store.set_stream_retention('ret-x', max_age => '30 days');
SELECT max_age FROM event_store.stream_info('ret-x');
SELECT count(*) AS retention_events FROM event_store.read_stream('$lifecycle')
 WHERE data->>'stream_id' = 'ret-x';

-- The ids of purged events are forgotten: a retry of the append that stored
-- them is no longer a repeat.  With the exact expected version it fails
-- (the head moved on); with no check it stores the events again.
SELECT event_store.append_event('ret-ids', 0, 'Tick', '1', NULL,
	'00000000-0000-7000-8000-0000000000c1');
SELECT event_store.append_event('ret-ids', 1, 'Tick', '2');
SELECT event_store.truncate_stream('ret-ids', 2);
-- Before the purge, the hidden event's id is still stored: a repeat.
SELECT event_store.append_event('ret-ids', 0, 'Tick', '1', NULL,
	'00000000-0000-7000-8000-0000000000c1') AS repeat_before_purge;
SELECT event_store.purge() > 0 AS purged;
SELECT pg_temp.try($$SELECT event_store.append_event('ret-ids', 0, 'Tick', '1', NULL, '00000000-0000-7000-8000-0000000000c1')$$);
SELECT event_store.append_event('ret-ids', -2, 'Tick', '1', NULL,
	'00000000-0000-7000-8000-0000000000c1') AS stored_again_at;
SELECT version, data FROM event_store.read_stream('ret-ids');
