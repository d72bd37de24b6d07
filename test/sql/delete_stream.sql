-- delete_stream: a soft delete hides a stream's events from every read
-- function, for good, from the delete's commit; versions are never reused:
-- an append continues at the old head + 1.
\i test/sql/helpers.inc

SELECT event_store.append_events('del-1', 0, '[
	{"type": "Opened", "data": {"n": 1}, "id": "00000000-0000-7000-8000-00000000d001"},
	{"type": "Deposited", "data": {"n": 2}, "id": "00000000-0000-7000-8000-00000000d002"},
	{"type": "Deposited", "data": {"n": 3}, "id": "00000000-0000-7000-8000-00000000d003"}]');
SELECT event_store.append_event('del-2', 0, 'Opened', '{}');
SELECT event_store.save_snapshot('del-1', 2, '{"balance": 3}');

-- The expected version is checked as an append checks it.
SELECT pg_temp.try($$SELECT event_store.delete_stream('del-1', 2)$$);
SELECT pg_temp.try($$SELECT event_store.delete_stream('del-1', 0)$$);
SELECT event_store.delete_stream('del-1', 3);

-- The stream reads as empty everywhere; its head stays.
SELECT count(*) AS read_stream_rows FROM event_store.read_stream('del-1');
SELECT count(*) AS backward_rows FROM event_store.read_stream('del-1', NULL, NULL, true);
SELECT count(*) AS read_all_rows FROM event_store.read_all(0, NULL) WHERE stream_id = 'del-1';
SELECT stream_id, version FROM event_store.read_category('del', 0);
SELECT event_store.stream_version('del-1');
SELECT * FROM event_store.stream_info('del-1');
SELECT count(*) AS snapshots_left FROM event_store.read_snapshot('del-1');
-- The undeleted stream of the same category is untouched.
SELECT stream_id, version FROM event_store.read_stream('del-2');

-- Deleting again, or deleting a stream with no events, changes nothing and
-- writes no lifecycle event.
SELECT event_store.delete_stream('del-1', -2);
SELECT event_store.delete_stream('del-none', 0);
SELECT event_store.stream_version('del-none');

-- It reads as empty, so "no stream" (0) matches it, as does its version;
-- "stream exists" (-1) does not.
SELECT pg_temp.try($$SELECT event_store.append_event('del-1', -1, 'X', '{}')$$);
SELECT pg_temp.try($$SELECT event_store.append_event('del-1', 4, 'X', '{}')$$);
-- Event ids stored before the delete are still stored: a retry of the
-- append that stored them is still a repeat (it returns that append's
-- version and writes nothing), and any other use of them is refused.
SELECT event_store.append_events('del-1', 0, '[
	{"type": "Opened", "data": {"n": 1}, "id": "00000000-0000-7000-8000-00000000d001"},
	{"type": "Deposited", "data": {"n": 2}, "id": "00000000-0000-7000-8000-00000000d002"},
	{"type": "Deposited", "data": {"n": 3}, "id": "00000000-0000-7000-8000-00000000d003"}]');
SELECT pg_temp.try($$SELECT event_store.append_event('del-1', 0, 'X', '{}', NULL, '00000000-0000-7000-8000-00000000d002')$$);
SELECT event_store.stream_version('del-1');
SELECT event_store.append_event('del-1', 0, 'Reopened', '{"n": 4}', NULL,
	'00000000-0000-7000-8000-00000000d004');
-- A retry of that append (same id, same expectation) is a repeat.
SELECT event_store.append_event('del-1', 0, 'Reopened', '{"n": 4}', NULL,
	'00000000-0000-7000-8000-00000000d004');
SELECT event_store.append_event('del-1', 4, 'Deposited', '{"n": 5}');
-- The earlier events stay hidden; the new ones show from version 4.
SELECT version, event_type, data FROM event_store.read_stream('del-1');
SELECT version, event_type FROM event_store.read_stream('del-1', 1, 1);
SELECT version, event_type FROM event_store.read_stream('del-1', NULL, NULL, true);
SELECT version FROM event_store.read_all(0, NULL) WHERE stream_id = 'del-1';
SELECT stream_id, version FROM event_store.read_category('del', 0);
SELECT * FROM event_store.stream_info('del-1');
-- A snapshot cannot claim a deleted version.
SELECT pg_temp.try($$SELECT event_store.save_snapshot('del-1', 3, '{}')$$);
SELECT event_store.save_snapshot('del-1', 4, '{"balance": 4}');

-- A delete that rolls back hides nothing.
BEGIN;
SELECT event_store.delete_stream('del-2', 1);
SELECT count(*) AS inside FROM event_store.read_all(0, NULL) WHERE stream_id = 'del-2';
ROLLBACK;
SELECT count(*) AS after_rollback FROM event_store.read_all(0, NULL) WHERE stream_id = 'del-2';

-- The lifecycle event, in the reserved stream.
SELECT event_type, data FROM event_store.read_stream('$lifecycle')
 WHERE data->>'stream_id' LIKE 'del-%' ORDER BY version;

-- Bad input.
SELECT pg_temp.try($$SELECT event_store.delete_stream(NULL, 0)$$);
SELECT pg_temp.try($$SELECT event_store.delete_stream('del-2', NULL)$$);
SELECT pg_temp.try($$SELECT event_store.delete_stream('del-2', -3)$$);
SELECT pg_temp.try($$SELECT event_store.delete_stream('', 0)$$);
SELECT pg_temp.try($$SELECT event_store.delete_stream('$lifecycle', -2)$$);

-- The stored history was not touched by any of it: the hidden events are
-- still there until purge removes them.
SELECT count(*) AS stored_del_1 FROM event_store.events WHERE stream_id = 'del-1';
