-- tombstone_stream: a hard delete removes the stream's events and
-- snapshots, and the stream id never takes another append: every later
-- append fails with VE003, a retry of an append stored before included.
\i test/sql/helpers.inc

SELECT event_store.append_events('tomb-1', 0, '[
	{"type": "Opened", "data": {"n": 1}, "id": "00000000-0000-7000-8000-00000000e001"},
	{"type": "Closed", "data": {"n": 2}, "id": "00000000-0000-7000-8000-00000000e002"}]');
SELECT event_store.save_snapshot('tomb-1', 2, '{"open": false}');

SELECT pg_temp.try($$SELECT event_store.tombstone_stream('tomb-1', 1)$$);
SELECT event_store.tombstone_stream('tomb-1', 2);

-- Its events and snapshots are gone, not hidden.
SELECT count(*) AS stored FROM event_store.events WHERE stream_id = 'tomb-1';
SELECT count(*) AS snapshots FROM event_store.snapshots WHERE stream_id = 'tomb-1';
SELECT count(*) AS read_stream_rows FROM event_store.read_stream('tomb-1');
SELECT count(*) AS read_all_rows FROM event_store.read_all(0, NULL) WHERE stream_id = 'tomb-1';
SELECT * FROM event_store.stream_info('tomb-1');

-- Every append fails with VE003: any expectation, an empty batch, and the
-- retry of the append that was stored before the tombstone.
SELECT pg_temp.try($$SELECT event_store.append_event('tomb-1', 2, 'X', '{}')$$);
SELECT pg_temp.try($$SELECT event_store.append_event('tomb-1', 0, 'X', '{}')$$);
SELECT pg_temp.try($$SELECT event_store.append_event('tomb-1', -2, 'X', '{}')$$);
SELECT pg_temp.try($$SELECT event_store.append_events('tomb-1', -2, '[]')$$);
SELECT pg_temp.try($$SELECT event_store.append_events('tomb-1', 0, '[
	{"type": "Opened", "data": {"n": 1}, "id": "00000000-0000-7000-8000-00000000e001"},
	{"type": "Closed", "data": {"n": 2}, "id": "00000000-0000-7000-8000-00000000e002"}]')$$);
SELECT pg_temp.try($$SELECT event_store.save_snapshot('tomb-1', 1, '{}')$$);
-- No other lifecycle operation applies to it, except a repeated tombstone
-- (a no-op) and an erasure.
SELECT pg_temp.try($$SELECT event_store.delete_stream('tomb-1', -2)$$);
SELECT pg_temp.try($$SELECT event_store.truncate_stream('tomb-1', 2)$$);
SELECT pg_temp.try($$SELECT event_store.set_stream_retention('tomb-1', 5)$$);
SELECT event_store.tombstone_stream('tomb-1', -2);

-- The ids of its removed events are free again; another stream may store
-- them (documented: a tombstone forgets its events' ids).
SELECT event_store.append_event('tomb-2', 0, 'Opened', '{}', NULL,
	'00000000-0000-7000-8000-00000000e001');

-- A stream with no events can be tombstoned: its id is reserved.
SELECT event_store.tombstone_stream('tomb-none', 0);
SELECT pg_temp.try($$SELECT event_store.append_event('tomb-none', 0, 'X', '{}')$$);
SELECT * FROM event_store.stream_info('tomb-none');

-- A soft-deleted stream can be tombstoned; "no stream" matches it.
SELECT event_store.append_event('tomb-3', 0, 'Opened', '{}');
SELECT event_store.delete_stream('tomb-3', 1);
SELECT event_store.tombstone_stream('tomb-3', 0);

-- A tombstone that rolls back removes nothing.
BEGIN;
SELECT event_store.tombstone_stream('tomb-2', 1);
ROLLBACK;
SELECT version, event_type FROM event_store.read_stream('tomb-2');
SELECT event_store.append_event('tomb-2', 1, 'Used', '{}');

SELECT event_type, data FROM event_store.read_stream('$lifecycle')
 WHERE data->>'stream_id' LIKE 'tomb-%' ORDER BY version;

SELECT pg_temp.try($$SELECT event_store.tombstone_stream('$lifecycle', -2)$$);
SELECT pg_temp.try($$SELECT event_store.tombstone_stream('tomb-2', NULL)$$);
