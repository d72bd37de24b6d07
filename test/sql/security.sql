-- security: search_path attacks and read privileges (row_security.sql has
-- row-level security).
\i test/sql/helpers.inc

-- Hostile objects on the search_path are not picked up.
CREATE SCHEMA evil;
CREATE FUNCTION evil.now() RETURNS timestamptz
	LANGUAGE sql AS $$ SELECT '2000-01-01'::timestamptz $$;
CREATE FUNCTION evil.nextval(regclass) RETURNS bigint
	LANGUAGE sql AS $$ SELECT 0::bigint $$;
CREATE FUNCTION evil.split_part(text, text, integer) RETURNS text
	LANGUAGE sql AS $$ SELECT 'evil' $$;
CREATE FUNCTION evil.coalesce_text(text, text) RETURNS boolean
	LANGUAGE sql AS $$ SELECT true $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.coalesce_text);
CREATE TABLE evil.events (LIKE event_store.events);
CREATE TABLE evil.streams (stream_id text, version bigint);
INSERT INTO evil.streams VALUES ('sec-1', 999);
SET search_path = evil, public, pg_catalog;
SELECT event_store.append_event('sec-1', 0, 'Created', '{"a": 1}');
SELECT event_store.append_events('sec-1', 1, '[{"type": "B", "data": 2}]');
SELECT event_store.stream_version('sec-1'), event_store.category('sec-1');
SELECT version, data FROM event_store.read_stream('sec-1');
SELECT count(*) FROM event_store.read_category('sec', 0);
SELECT event_store.save_checkpoint('sec', 5);
SELECT event_store.checkpoint('sec');
SELECT bool_and(created_at > '2000-01-02') AS real_now, bool_and(global_position > 0) AS real_positions
  FROM event_store.read_stream('sec-1');
SELECT count(*) AS evil_events FROM evil.events;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA evil CASCADE;
RESET client_min_messages;

-- The global-log functions check the caller's SELECT privilege on the events
-- table, as a query would.
CREATE ROLE es_sec_nosel;
GRANT USAGE ON SCHEMA event_store TO es_sec_nosel;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA event_store TO es_sec_nosel;
SET ROLE es_sec_nosel;
SELECT pg_temp.try($$SELECT * FROM event_store.read_all(0)$$);
SELECT pg_temp.try($$SELECT * FROM event_store.read_category('sec')$$);
SELECT pg_temp.try($$SELECT event_store.safe_position()$$);
SELECT pg_temp.try($$SELECT * FROM event_store.read_stream('sec-1')$$);
RESET ROLE;

DROP OWNED BY es_sec_nosel;
DROP ROLE es_sec_nosel;
