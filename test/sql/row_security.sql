-- row_security: row-level security on the events table is honoured by every
-- read function: a tenant sees only its own streams, in read_stream,
-- read_all (paged or not) and read_category (with consumer groups), and,
-- with a policy on the heads table too, stream_version.
\i test/sql/helpers.inc

CREATE ROLE es_rls_a;
CREATE ROLE es_rls_b;
GRANT USAGE ON SCHEMA event_store TO es_rls_a, es_rls_b;
GRANT SELECT ON event_store.events, event_store.streams TO es_rls_a, es_rls_b;
GRANT EXECUTE ON FUNCTION event_store.read_stream(text, bigint, bigint, boolean),
	event_store.stream_version(text), event_store.read_all(bigint, bigint, text[], text[]),
	event_store.read_category(text, bigint, bigint, integer, integer, text[]),
	event_store.safe_position(), event_store.category(text),
	event_store.stream_info(text) TO es_rls_a, es_rls_b;

-- Tenant a's events sit among many of tenant b's: a long run of b's between
-- a's first and second events makes paged reads go through several chunks.
SELECT event_store.append_event('rlsa-1', 0, 'A1', '1');
SELECT event_store.append_events('rlsb-1', 0,
	(SELECT jsonb_agg(jsonb_build_object('type', 'B', 'data', i))
	   FROM generate_series(1, 5000) i));
SELECT event_store.append_event('rlsa-2', 0, 'A2', '2');
SELECT event_store.append_event('rlsb-2', 0, 'B', '3');
SELECT event_store.append_event('rlsa-1', 1, 'A3', '4');

ALTER TABLE event_store.events ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON event_store.events FOR SELECT TO es_rls_a, es_rls_b
	USING (event_store.category(stream_id) =
		   CASE current_user WHEN 'es_rls_a' THEN 'rlsa' WHEN 'es_rls_b' THEN 'rlsb' END);

ALTER TABLE event_store.streams ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON event_store.streams FOR SELECT TO es_rls_a, es_rls_b
	USING (event_store.category(stream_id) =
		   CASE current_user WHEN 'es_rls_a' THEN 'rlsa' WHEN 'es_rls_b' THEN 'rlsb' END);

SET ROLE es_rls_a;
-- Only a's streams, in order, from every read function.
SELECT event_store.stream_version('rlsa-1') AS own_version,
	   event_store.stream_version('rlsb-1') AS others_version;
SELECT stream_id, version, event_type FROM event_store.read_stream('rlsa-1');
-- stream_info reads heads below the executor: it refuses rather than
-- bypass the heads table's policies.
SELECT pg_temp.try($$SELECT * FROM event_store.stream_info('rlsb-1')$$);
SELECT count(*) AS b_in_read_stream FROM event_store.read_stream('rlsb-1');
SELECT stream_id, version, event_type FROM event_store.read_all(0);
SELECT stream_id, version, event_type FROM event_store.read_all(0, 2);
SELECT stream_id, version, event_type FROM event_store.read_category('rlsa');
SELECT count(*) AS b_in_read_category FROM event_store.read_category('rlsb');
SELECT count(*) AS a_in_group FROM generate_series(0, 2) m,
	event_store.read_category('rlsa', 0, NULL, m, 3);

-- Paging one event at a time passes b's long run without an empty page.
CREATE FUNCTION pg_temp.page_through(fn text, page integer) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	after bigint := 0;
	got text[] := '{}';
	r record;
	n integer;
BEGIN
	LOOP
		n := 0;
		FOR r IN EXECUTE format(fn, after, page) LOOP
			got := got || (r.stream_id || '@' || r.version);
			after := r.global_position;
			n := n + 1;
		END LOOP;
		EXIT WHEN n = 0;
	END LOOP;
	RETURN array_to_string(got, ' ');
END $$;
SELECT pg_temp.page_through('SELECT * FROM event_store.read_all(%s, %s)', 1) AS read_all_pages;
SELECT pg_temp.page_through($$SELECT * FROM event_store.read_category('rlsa', %s, %s)$$, 1)
	AS read_category_pages;

-- safe_position returns a position, no event, and works for tenants.
SELECT event_store.safe_position() = (SELECT max(global_position) FROM event_store.events)
	AS safe_position;

-- With row_security off, a tenant's read fails, as a query's would.
SET row_security = off;
SELECT pg_temp.try($$SELECT * FROM event_store.read_all(0)$$);
SELECT pg_temp.try($$SELECT * FROM event_store.read_category('rlsa')$$);
RESET row_security;
RESET ROLE;

-- Tenant b gets its own, all 5,001 of them, and none of a's.
SET ROLE es_rls_b;
SELECT count(*), min(stream_id), max(stream_id) FROM event_store.read_all(0, NULL);
SELECT count(*) FROM event_store.read_all(0, 4999);
SELECT count(*) FROM event_store.read_category('rlsb', 0, 10000);
RESET ROLE;

-- The owner, not subject to the policy, reads everything.
SELECT count(*) AS owner_reads FROM event_store.read_all(0, NULL)
 WHERE stream_id LIKE 'rls%';

DROP POLICY tenant ON event_store.events;
DROP POLICY tenant ON event_store.streams;
ALTER TABLE event_store.events DISABLE ROW LEVEL SECURITY;
ALTER TABLE event_store.streams DISABLE ROW LEVEL SECURITY;
DROP OWNED BY es_rls_a, es_rls_b;
DROP ROLE es_rls_a, es_rls_b;
