-- stream_version: the current version of a stream, 0 when it does not exist.
\i test/sql/helpers.inc

SELECT event_store.stream_version('sv-1');
SELECT event_store.append_event('sv-1', 0, 'Created', '{}');
SELECT event_store.stream_version('sv-1');
SELECT event_store.append_events('sv-1', 1, '[{"type": "A", "data": 1}, {"type": "B", "data": 2}]');
SELECT event_store.stream_version('sv-1');
SELECT event_store.stream_version(NULL) IS NULL AS null_for_null;

-- A failed append leaves the version as it was.
SELECT pg_temp.try($$SELECT event_store.append_event('sv-1', 1, 'C', '3')$$);
SELECT event_store.stream_version('sv-1');

-- The version always equals the number of events and the last version.
SELECT s.stream_id, s.version, count(e.*) AS events, max(e.version) AS last
  FROM event_store.streams s JOIN event_store.events e USING (stream_id)
 WHERE s.stream_id = 'sv-1'
 GROUP BY s.stream_id, s.version;

-- Inside a transaction it sees the transaction's own appends.
BEGIN;
SELECT event_store.append_event('sv-2', 0, 'Created', '{}');
SELECT event_store.stream_version('sv-2');
ROLLBACK;
SELECT event_store.stream_version('sv-2');
