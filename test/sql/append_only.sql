-- append_only: stored history and heads change only through the appends.
\i test/sql/helpers.inc

SELECT event_store.append_event('ao-1', 0, 'Created', '{"n": 1}');
SELECT event_store.append_event('ao-1', 1, 'Changed', '{"n": 2}');

SELECT t.label, pg_temp.try(t.sql)
  FROM (VALUES
	('update events',        $$UPDATE event_store.events SET data = '{}' WHERE stream_id = 'ao-1'$$),
	('update no event',      $$UPDATE event_store.events SET data = '{}' WHERE false$$),
	('delete events',        $$DELETE FROM event_store.events WHERE stream_id = 'ao-1'$$),
	('truncate events',      $$TRUNCATE event_store.events$$),
	('move head back',       $$UPDATE event_store.streams SET version = 1 WHERE stream_id = 'ao-1'$$),
	('move head forward',    $$UPDATE event_store.streams SET version = 9 WHERE stream_id = 'ao-1'$$),
	('delete head',          $$DELETE FROM event_store.streams WHERE stream_id = 'ao-1'$$),
	('truncate heads',       $$TRUNCATE event_store.streams$$),
	('truncate both',        $$TRUNCATE event_store.streams, event_store.events$$),
	('call guard directly',  $$SELECT event_store.refuse_change()$$)
  ) AS t(label, sql);

-- Everything is as it was.
SELECT version, data FROM event_store.read_stream('ao-1');
SELECT event_store.stream_version('ao-1');

-- The tables and the position sequence are marked for pg_dump.
SELECT unnest(extconfig)::regclass AS dumped
  FROM pg_extension WHERE extname = 'event_store' ORDER BY dumped::text;

-- The extension is not relocatable and lives in its own schema.
SELECT extrelocatable, extnamespace::regnamespace
  FROM pg_extension WHERE extname = 'event_store';

-- Appends are refused in a read-only transaction.
BEGIN READ ONLY;
SELECT pg_temp.try($$SELECT event_store.append_event('ao-1', 2, 'Changed', '{}')$$);
ROLLBACK;

-- The guard holds under session_replication_role = replica as well (here a
-- superuser's session); only logical replication's apply workers pass it,
-- which test/logical_replication.sh tests.
SET session_replication_role = replica;
SELECT t.label, pg_temp.try(t.sql)
  FROM (VALUES
	('replica: delete events',   $$DELETE FROM event_store.events WHERE stream_id = 'ao-1'$$),
	('replica: update events',   $$UPDATE event_store.events SET data = '{}' WHERE stream_id = 'ao-1'$$),
	('replica: truncate events', $$TRUNCATE event_store.events$$),
	('replica: update streams',  $$UPDATE event_store.streams SET version = 1 WHERE stream_id = 'ao-1'$$),
	('replica: delete streams',  $$DELETE FROM event_store.streams$$)
  ) AS t(label, sql);
RESET session_replication_role;
SELECT version, data FROM event_store.read_stream('ao-1');
SELECT tgname, tgenabled FROM pg_trigger
 WHERE tgrelid IN ('event_store.events'::regclass, 'event_store.streams'::regclass)
 ORDER BY tgname;
