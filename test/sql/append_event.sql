-- append_event: every expected-version mode, and what an append stores.
\i test/sql/helpers.inc

-- 0: the stream must not exist yet.  Versions start at 1.
SELECT event_store.append_event('ae-1', 0, 'Created', '{"n": 1}');
SELECT pg_temp.try($$SELECT event_store.append_event('ae-1', 0, 'Created', '{"n": 2}')$$);

-- N: the stream must be exactly at N.
SELECT event_store.append_event('ae-1', 1, 'Changed', '{"n": 2}');
SELECT pg_temp.try($$SELECT event_store.append_event('ae-1', 1, 'Changed', '{"n": 3}')$$);
SELECT pg_temp.try($$SELECT event_store.append_event('ae-1', 3, 'Changed', '{"n": 3}')$$);
SELECT event_store.append_event('ae-1', 2, 'Changed', '{"n": 3}');

-- -1: the stream must exist.
SELECT pg_temp.try($$SELECT event_store.append_event('ae-new', -1, 'Changed', '{}')$$);
SELECT event_store.append_event('ae-1', -1, 'Changed', '{"n": 4}');

-- -2, which event_store.any_version() returns: any version, including a
-- stream that does not exist.
SELECT event_store.any_version();
SELECT event_store.append_event('ae-1', event_store.any_version(), 'Changed', '{"n": 5}');
SELECT event_store.append_event('ae-any', -2, 'Created', '{}');

-- NULL is refused (22004), before anything is read or written: a client's
-- undefined or None must not turn the check off.  Below -2 is invalid.
SELECT pg_temp.try($$SELECT event_store.append_event('ae-1', NULL, 'Changed', '{}')$$);
SELECT pg_temp.try($$SELECT event_store.append_events('ae-1', NULL, '[]')$$);
SELECT pg_temp.try($$SELECT event_store.append_event('ae-1', -3, 'Changed', '{}')$$);

-- Only the successful appends were stored, at versions 1..5 with no gap.
SELECT version, event_type, data FROM event_store.events
 WHERE stream_id = 'ae-1' ORDER BY version;
SELECT stream_id, version FROM event_store.streams
 WHERE stream_id IN ('ae-1', 'ae-new', 'ae-any') ORDER BY stream_id;

-- The conflict DETAIL has a fixed form that clients can parse.
DO $$
DECLARE
	d text;
	m text[];
BEGIN
	PERFORM event_store.append_event('ae-1', 2, 'Changed', '{}');
	RAISE EXCEPTION 'the stale append was not rejected';
EXCEPTION WHEN SQLSTATE 'VE001' THEN
	GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
	m := regexp_match(d, '^Expected version (-?\d+), actual version (\d+)\.$');
	RAISE NOTICE 'expected=% actual=%', m[1], m[2];
END $$;

-- Metadata and a caller-chosen event id are stored as given.
SELECT event_store.append_event('ae-2', 0, 'Created', '{"sku": "A-1"}',
	'{"user": "bob"}', 'a0000000-0000-4000-8000-000000000001');
SELECT version, event_id, event_type, data, metadata
  FROM event_store.read_stream('ae-2');

-- Generated ids are version 7 uuids; created_at is the transaction's start.
BEGIN;
SELECT event_store.append_event('ae-3', 0, 'Created', '{}');
SELECT substr(event_id::text, 15, 1) AS uuid_version,
	   created_at = now() AS created_now
  FROM event_store.events WHERE stream_id = 'ae-3';
COMMIT;

-- Global positions rise with every append.
SELECT bool_and(a.global_position < b.global_position) AS ascending
  FROM event_store.events a
  JOIN event_store.events b ON a.stream_id = b.stream_id AND b.version = a.version + 1
 WHERE a.stream_id = 'ae-1';

-- Several appends in one statement and in one transaction see each other.
SELECT event_store.append_event('ae-4', -2, 'Tick', to_jsonb(i))
  FROM generate_series(1, 3) AS i;
BEGIN;
SELECT event_store.append_event('ae-4', 3, 'Tick', '4');
SELECT event_store.append_event('ae-4', 4, 'Tick', '5');
SELECT event_store.stream_version('ae-4');
COMMIT;

-- A rolled-back append leaves nothing behind: the next one takes its version.
BEGIN;
SELECT event_store.append_event('ae-4', 5, 'Tick', '"rolled back"');
ROLLBACK;
SELECT event_store.append_event('ae-4', 5, 'Tick', '6');
SELECT version, data FROM event_store.read_stream('ae-4');

-- A conflict inside a transaction can be caught in a savepoint; the
-- transaction goes on and commits what it had.
BEGIN;
SELECT event_store.append_event('ae-5', 0, 'Created', '{}');
SAVEPOINT s;
SELECT pg_temp.try($$SELECT event_store.append_event('ae-5', 0, 'Created', '{}')$$);
ROLLBACK TO SAVEPOINT s;
SELECT event_store.append_event('ae-5', 1, 'Changed', '{}');
COMMIT;
SELECT version, event_type FROM event_store.read_stream('ae-5');

-- The stream lock shows in pg_locks as an advisory lock with objsubid 17747,
-- held until the transaction ends.
BEGIN;
SELECT event_store.append_event('ae-6', 0, 'Created', '{}');
SELECT locktype, mode, granted, objsubid FROM pg_locks
 WHERE pid = pg_backend_pid() AND locktype = 'advisory';
COMMIT;
SELECT count(*) AS advisory_locks_after_commit FROM pg_locks
 WHERE pid = pg_backend_pid() AND locktype = 'advisory';

-- Stream ids are stored and matched byte for byte.
SELECT event_store.append_event('ae-Case', 0, 'Created', '{}');
SELECT event_store.append_event('AE-case', 0, 'Created', '{}');
SELECT event_store.append_event($$ae'; DROP TABLE event_store.events; --$$, 0, 'Created', '{}');
SELECT stream_id, version FROM event_store.streams
 WHERE lower(stream_id) LIKE 'ae-case' OR stream_id LIKE 'ae''%' ORDER BY stream_id;

-- Hundreds of appends to one stream in one transaction: the head row's
-- updates outgrow its page and cannot all stay heap-only.
SELECT max(event_store.append_event(repeat('h', 1000), -2, 'Tick', to_jsonb(i)))
  FROM generate_series(1, 300) AS i;
-- With an index on the version column no head update can be heap-only.
CREATE INDEX streams_version_test_idx ON event_store.streams (version);
SELECT event_store.append_event('ae-7', 0, 'Created', '{}');
SELECT event_store.append_event('ae-7', 1, 'Changed', '{}');
SELECT count(*) FROM event_store.streams WHERE version = 2 AND stream_id = 'ae-7';
DROP INDEX event_store.streams_version_test_idx;
SELECT count(*), max(version), event_store.stream_version(repeat('h', 1000))
  FROM event_store.read_stream(repeat('h', 1000));

-- new_event_id: a version 7 uuid, time-ordered.
SELECT substr(event_store.new_event_id()::text, 15, 1) AS uuid_version,
	   substr(event_store.new_event_id()::text, 20, 1) IN ('8', '9', 'a', 'b') AS rfc_variant;
SELECT count(DISTINCT event_store.new_event_id()) AS distinct_ids FROM generate_series(1, 1000);
SELECT bool_and(a < b) AS ids_rise_with_time
  FROM (SELECT event_store.new_event_id() AS a, pg_sleep(0.002), event_store.new_event_id() AS b
		  FROM generate_series(1, 3)) x;
