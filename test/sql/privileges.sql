-- privileges: the extension works for roles that are not superusers.
\i test/sql/helpers.inc

CREATE ROLE es_test_writer LOGIN;
CREATE ROLE es_test_reader LOGIN;
CREATE ROLE es_test_nobody LOGIN;
GRANT USAGE ON SCHEMA event_store TO es_test_writer, es_test_reader;
GRANT SELECT ON event_store.events, event_store.streams TO es_test_writer, es_test_reader;
GRANT EXECUTE ON FUNCTION event_store.append_event(text, bigint, text, jsonb, jsonb, uuid),
	event_store.append_events(text, bigint, jsonb) TO es_test_writer;

-- A writer appends and reads, without any privilege on the tables beyond SELECT.
SET ROLE es_test_writer;
SELECT event_store.append_event('pr-1', 0, 'Created', '{}');
SELECT event_store.append_events('pr-1', 1, '[{"type": "Changed", "data": 1}]');
SELECT version, event_type FROM event_store.read_stream('pr-1');
SELECT event_store.stream_version('pr-1');
-- ... but cannot write the tables directly.
SELECT pg_temp.try($$INSERT INTO event_store.events (stream_id, version, event_id, event_type, data) VALUES ('pr-1', 3, gen_random_uuid(), 'X', '{}')$$);
SELECT pg_temp.try($$UPDATE event_store.streams SET version = 1$$);
RESET ROLE;

-- A reader reads, and cannot append.
SET ROLE es_test_reader;
SELECT count(*) FROM event_store.read_stream('pr-1');
SELECT pg_temp.try($$SELECT event_store.append_event('pr-1', 2, 'Changed', '{}')$$);
RESET ROLE;

-- A role with no grant can do neither.
SET ROLE es_test_nobody;
SELECT pg_temp.try($$SELECT event_store.stream_version('pr-1')$$);
SELECT pg_temp.try($$SELECT event_store.append_event('pr-1', 2, 'Changed', '{}')$$);
RESET ROLE;

SELECT event_store.stream_version('pr-1');

DROP OWNED BY es_test_writer, es_test_reader, es_test_nobody;
DROP ROLE es_test_writer, es_test_reader, es_test_nobody;
