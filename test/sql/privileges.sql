-- privileges: the extension works for roles that are not superusers, under
-- the privilege model of the README: PUBLIC gets no access; a writer appends
-- and reads; a reader only reads; a projection reads and saves checkpoints;
-- none of them can change stored events or heads by any path.
\i test/sql/helpers.inc

-- PUBLIC gets no access: no privilege on the schema, the tables or the
-- sequence, and EXECUTE only on event_store.category(text), which reads
-- nothing and which the category index calls on every insert.  The row type
-- keeps PostgreSQL's default USAGE, which reaches no data.
SELECT pg_describe_object(d.classid, d.objid, 0) AS object, a.privilege_type
  FROM pg_depend d
  JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'event_store'
  CROSS JOIN LATERAL (
	SELECT (aclexplode(COALESCE(p.proacl, acldefault('f'::"char", p.proowner)))).*
	  FROM pg_proc p WHERE d.classid = 'pg_proc'::regclass AND p.oid = d.objid
	UNION ALL
	SELECT (aclexplode(COALESCE(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner)))).*
	  FROM pg_class c WHERE d.classid = 'pg_class'::regclass AND c.oid = d.objid) a
 WHERE d.deptype = 'e' AND a.grantee = 0
UNION ALL
SELECT 'schema event_store', a.privilege_type
  FROM pg_namespace n, aclexplode(COALESCE(n.nspacl, acldefault('n'::"char", n.nspowner))) a
 WHERE n.nspname = 'event_store' AND a.grantee = 0
UNION ALL
SELECT format_type(t.oid, NULL), a.privilege_type
  FROM pg_type t, aclexplode(COALESCE(t.typacl, acldefault('T'::"char", t.typowner))) a
 WHERE t.typnamespace = 'event_store'::regnamespace AND t.typtype = 'c'
   AND t.typrelid IN (SELECT oid FROM pg_class WHERE relkind = 'c') AND a.grantee = 0
ORDER BY 1;

CREATE ROLE es_test_writer;
CREATE ROLE es_test_reader;
CREATE ROLE es_test_projection;
CREATE ROLE es_test_nobody;
CREATE ROLE es_test_narrow;

-- The grants of the README.
GRANT USAGE ON SCHEMA event_store TO es_test_writer;
GRANT SELECT ON event_store.events, event_store.streams TO es_test_writer;
GRANT EXECUTE ON FUNCTION
	event_store.append_event(text, bigint, text, jsonb, jsonb, uuid),
	event_store.append_events(text, bigint, jsonb),
	event_store.any_version(),
	event_store.new_event_id(),
	event_store.save_snapshot(text, bigint, jsonb),
	event_store.read_snapshot(text, bigint),
	event_store.read_stream(text, bigint, bigint, boolean),
	event_store.stream_version(text),
	event_store.stream_info(text),
	event_store.read_all(bigint, bigint, text[], text[]),
	event_store.read_category(text, bigint, bigint, integer, integer, text[]),
	event_store.safe_position(),
	event_store.consumer_group_member(text, integer)
	TO es_test_writer;
GRANT SELECT ON event_store.snapshots TO es_test_writer;

GRANT USAGE ON SCHEMA event_store TO es_test_reader;
GRANT SELECT ON event_store.events, event_store.streams TO es_test_reader;
GRANT EXECUTE ON FUNCTION
	event_store.read_stream(text, bigint, bigint, boolean),
	event_store.stream_version(text),
	event_store.read_all(bigint, bigint, text[], text[]),
	event_store.read_category(text, bigint, bigint, integer, integer, text[]),
	event_store.safe_position(),
	event_store.category(text),
	event_store.consumer_group_member(text, integer)
	TO es_test_reader;

GRANT es_test_reader TO es_test_projection;
GRANT SELECT, INSERT, UPDATE ON event_store.checkpoints TO es_test_projection;
GRANT EXECUTE ON FUNCTION event_store.save_checkpoint(text, bigint, boolean),
	event_store.checkpoint(text) TO es_test_projection;

-- A writer appends and reads.
SET ROLE es_test_writer;
SELECT event_store.append_event('pr-1', 0, 'Created', '{}');
SELECT event_store.append_events('pr-1', 1, '[{"type": "Changed", "data": 1}]');
SELECT version, event_type FROM event_store.read_stream('pr-1');
SELECT event_store.stream_version('pr-1');
SELECT stream_id, version FROM event_store.read_category('pr', 0);
SELECT count(*) FROM event_store.read_all(0, NULL) WHERE stream_id = 'pr-1';

-- ... but cannot change stored events or heads by any other path: direct
-- DML, TRUNCATE, the position sequence, switching the guard triggers off,
-- dropping them, or calling the trigger function.
SELECT pg_temp.try($$INSERT INTO event_store.events (stream_id, version, event_id, event_type, data) VALUES ('pr-1', 3, gen_random_uuid(), 'X', '{}')$$);
SELECT pg_temp.try($$UPDATE event_store.events SET data = '{}'$$);
SELECT pg_temp.try($$DELETE FROM event_store.events$$);
SELECT pg_temp.try($$TRUNCATE event_store.events$$);
SELECT pg_temp.try($$INSERT INTO event_store.streams VALUES ('pr-9', 5)$$);
SELECT pg_temp.try($$UPDATE event_store.streams SET version = 1$$);
SELECT pg_temp.try($$DELETE FROM event_store.streams$$);
SELECT pg_temp.try($$TRUNCATE event_store.streams$$);
SELECT pg_temp.try($$SELECT setval('event_store.events_global_position_seq', 1)$$);
SELECT pg_temp.try($$SELECT nextval('event_store.events_global_position_seq')$$);
SELECT pg_temp.try($$ALTER TABLE event_store.events DISABLE TRIGGER events_append_only$$);
SELECT pg_temp.try($$ALTER TABLE event_store.streams DISABLE TRIGGER ALL$$);
SELECT pg_temp.try($$DROP TRIGGER events_append_only ON event_store.events$$);
SELECT pg_temp.try($$ALTER TABLE event_store.events DISABLE ROW LEVEL SECURITY$$);
SELECT pg_temp.try($$SELECT event_store.refuse_change()$$);
SELECT pg_temp.try($$DROP EXTENSION event_store$$);
RESET ROLE;

-- EXECUTE on the append function alone is enough to append.
GRANT USAGE ON SCHEMA event_store TO es_test_narrow;
GRANT EXECUTE ON FUNCTION event_store.append_event(text, bigint, text, jsonb, jsonb, uuid)
	TO es_test_narrow;
SET ROLE es_test_narrow;
SELECT event_store.append_event('pr-1', 2, 'Narrow', '{}');
SELECT pg_temp.try($$SELECT count(*) FROM event_store.events$$);
RESET ROLE;

-- A reader reads, and cannot append or save checkpoints.
SET ROLE es_test_reader;
SELECT count(*) FROM event_store.read_stream('pr-1');
SELECT event_store.stream_version('pr-1');
SELECT count(*) FROM event_store.read_all(0, NULL) WHERE stream_id = 'pr-1';
SELECT pg_temp.try($$SELECT event_store.append_event('pr-1', 2, 'Changed', '{}')$$);
SELECT pg_temp.try($$SELECT event_store.append_events('pr-1', 2, '[]')$$);
SELECT pg_temp.try($$SELECT event_store.checkpoint('pr-projection')$$);
SELECT pg_temp.try($$SELECT event_store.save_checkpoint('pr-projection', 1)$$);
SELECT pg_temp.try($$INSERT INTO event_store.events (stream_id, version, event_id, event_type, data) VALUES ('pr-1', 3, gen_random_uuid(), 'X', '{}')$$);
SELECT pg_temp.try($$UPDATE event_store.events SET data = '{}'$$);
SELECT pg_temp.try($$DELETE FROM event_store.events$$);
SELECT pg_temp.try($$TRUNCATE event_store.events$$);
SELECT pg_temp.try($$UPDATE event_store.streams SET version = 1$$);
SELECT pg_temp.try($$SELECT setval('event_store.events_global_position_seq', 1)$$);
SELECT pg_temp.try($$ALTER TABLE event_store.events DISABLE TRIGGER ALL$$);
SELECT pg_temp.try($$SELECT event_store.refuse_change()$$);
RESET ROLE;

-- A projection reads and saves its checkpoint, and cannot append.
SET ROLE es_test_projection;
SELECT event_store.save_checkpoint('pr-projection', 2);
SELECT event_store.checkpoint('pr-projection');
SELECT pg_temp.try($$SELECT event_store.append_event('pr-1', 2, 'Changed', '{}')$$);
RESET ROLE;

-- A role with no grant (PUBLIC only) can do nothing at all.
SET ROLE es_test_nobody;
SELECT pg_temp.try($$SELECT event_store.stream_version('pr-1')$$);
SELECT pg_temp.try($$SELECT event_store.append_event('pr-1', 2, 'Changed', '{}')$$);
SELECT pg_temp.try($$SELECT * FROM event_store.read_all(0)$$);
SELECT pg_temp.try($$SELECT count(*) FROM event_store.events$$);
RESET ROLE;
SELECT count(*) AS functions_nobody_can_execute
  FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
	AND d.deptype = 'e' AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'event_store')
 WHERE NOT has_function_privilege('es_test_nobody', p.oid, 'EXECUTE');
SELECT count(*) AS functions_in_extension
  FROM pg_depend WHERE classid = 'pg_proc'::regclass AND deptype = 'e'
	AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'event_store');

-- Nothing the writer tried moved anything.
SELECT event_store.stream_version('pr-1');
SELECT count(*) FROM event_store.events WHERE stream_id = 'pr-1';

-- Column-level grants count as a SELECT would count them: SELECT on every
-- column a function reads is enough; on fewer columns it is refused.
CREATE ROLE es_test_columns;
GRANT USAGE ON SCHEMA event_store TO es_test_columns;
GRANT EXECUTE ON FUNCTION event_store.stream_version(text),
	event_store.read_all(bigint, bigint, text[], text[]) TO es_test_columns;
GRANT SELECT (stream_id, version) ON event_store.streams TO es_test_columns;
GRANT SELECT (global_position, stream_id, version, event_id, event_type, data)
	ON event_store.events TO es_test_columns;
SET ROLE es_test_columns;
SELECT event_store.stream_version('pr-1');
SELECT pg_temp.try($$SELECT count(*) FROM event_store.read_all(0)$$);
RESET ROLE;
GRANT SELECT (metadata, created_at) ON event_store.events TO es_test_columns;
SET ROLE es_test_columns;
SELECT count(*) > 0 AS reads_all_columns FROM event_store.read_all(0);
RESET ROLE;
DROP OWNED BY es_test_columns;
DROP ROLE es_test_columns;

-- Lifecycle.  A writer, even one granted EXECUTE on every function of the
-- schema (as the README's writer was before 0.4.0), can neither delete,
-- tombstone, truncate, set a retention, purge, erase nor redact: each
-- function also needs DELETE on event_store.events.
CREATE ROLE es_test_everything;
GRANT USAGE ON SCHEMA event_store TO es_test_everything;
GRANT SELECT ON event_store.events, event_store.streams TO es_test_everything;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA event_store TO es_test_everything;
SET ROLE es_test_writer;
SELECT pg_temp.try($$SELECT event_store.delete_stream('prl-1', -2)$$);
SET ROLE es_test_everything;
SELECT pg_temp.try($$SELECT event_store.refuse_change()$$);
SELECT event_store.append_event('prl-1', 0, 'Created', '{}', NULL,
	'00000000-0000-7000-8000-00000000a001');
SELECT pg_temp.try($$SELECT event_store.delete_stream('prl-1', -2)$$);
SELECT pg_temp.try($$SELECT event_store.tombstone_stream('prl-1', -2)$$);
SELECT pg_temp.try($$SELECT event_store.truncate_stream('prl-1', 2)$$);
SELECT pg_temp.try($$SELECT event_store.set_stream_retention('prl-1', 1)$$);
SELECT pg_temp.try($$SELECT event_store.purge()$$);
SELECT pg_temp.try($$SELECT event_store.erase_stream('prl-1', 'test')$$);
SELECT pg_temp.try($$SELECT event_store.redact_event('00000000-0000-7000-8000-00000000a001', 'test')$$);
SELECT pg_temp.try($$SELECT count(*) FROM event_store.erasures$$);
-- stream_info and read_stream need no more than reading.
SELECT version, first_visible_version, tombstoned
  FROM event_store.stream_info('prl-1');
RESET ROLE;
SELECT version, event_type FROM event_store.read_stream('prl-1');

-- The operator and data-protection roles of the README.
CREATE ROLE es_test_operator;
CREATE ROLE es_test_dpo;
GRANT USAGE ON SCHEMA event_store TO es_test_operator, es_test_dpo;
GRANT SELECT, DELETE ON event_store.events TO es_test_operator, es_test_dpo;
GRANT EXECUTE ON FUNCTION
	event_store.delete_stream(text, bigint),
	event_store.tombstone_stream(text, bigint),
	event_store.truncate_stream(text, bigint),
	event_store.set_stream_retention(text, bigint, interval),
	event_store.purge(integer),
	event_store.stream_info(text)
	TO es_test_operator;
GRANT EXECUTE ON FUNCTION
	event_store.erase_stream(text, text),
	event_store.redact_event(uuid, text, jsonb, jsonb)
	TO es_test_dpo;
GRANT SELECT ON event_store.erasures TO es_test_dpo;

SET ROLE es_test_operator;
SELECT event_store.truncate_stream('prl-1', 2);
SELECT event_store.purge();
SELECT pg_temp.try($$SELECT event_store.erase_stream('prl-1', 'test')$$);
SELECT pg_temp.try($$DELETE FROM event_store.events$$);
RESET ROLE;

SET ROLE es_test_dpo;
SELECT pg_temp.try($$SELECT event_store.append_event('prl-2', 0, 'Created', '{}')$$);
RESET ROLE;
SELECT event_store.append_event('prl-2', 0, 'Created', '{"email": "a@example.org"}', NULL,
	'00000000-0000-7000-8000-00000000a002');
SET ROLE es_test_dpo;
SELECT event_store.redact_event('00000000-0000-7000-8000-00000000a002', 'request 7') > 0 AS redacted;
SELECT event_store.erase_stream('prl-1', 'request 8');
SELECT pg_temp.try($$SELECT event_store.delete_stream('prl-2', -2)$$);
SELECT operation, stream_id, event_id, event_count, reason, erased_by
  FROM event_store.erasures ORDER BY erasure_id;
SELECT pg_temp.try($$DELETE FROM event_store.erasures$$);
RESET ROLE;
SELECT data FROM event_store.read_stream('prl-2');
DROP OWNED BY es_test_operator, es_test_dpo, es_test_everything;
DROP ROLE es_test_operator, es_test_dpo, es_test_everything;

DELETE FROM event_store.checkpoints WHERE subscriber = 'pr-projection';
DROP OWNED BY es_test_writer, es_test_reader, es_test_projection, es_test_nobody, es_test_narrow;
DROP ROLE es_test_writer, es_test_reader, es_test_projection, es_test_nobody, es_test_narrow;
