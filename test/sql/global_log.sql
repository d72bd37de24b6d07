-- global_log: read_all, read_category, consumer groups, safe_position.
\i test/sql/helpers.inc

-- Start from a known position: remember the last position handed out.
SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS base
  FROM event_store.events_global_position_seq \gset

SELECT event_store.append_events('gl_prod-1', 0, '[{"type": "A", "data": 1}, {"type": "B", "data": 2}]');
SELECT event_store.append_event('gl_cust-1', 0, 'C', '3');
SELECT event_store.append_event('gl_prod-2', 0, 'D', '4');
SELECT event_store.append_event('gl_prod', 0, 'E', '5');
SELECT event_store.append_event('gl_cust-2', 0, 'F', '6');

-- read_all: every event after a position, ascending, at most max_count.
SELECT global_position - :base AS pos, stream_id, version, event_type
  FROM event_store.read_all(:base);
SELECT array_agg(global_position - :base) FROM event_store.read_all(:base, 2);
SELECT array_agg(global_position - :base) FROM event_store.read_all(:base + 2, 3);
SELECT count(*) FROM event_store.read_all(:base + 6);
SELECT count(*) FROM event_store.read_all(:base, 0);
SELECT count(*) = count(DISTINCT global_position) AS distinct,
	   count(*) >= 6 AS has_all FROM event_store.read_all(0, NULL);
-- Rows are exactly the stored rows.
SELECT count(*) AS identical
  FROM event_store.read_all(:base) r JOIN event_store.events e USING (global_position)
 WHERE (r.stream_id, r.version, r.event_id, r.event_type, r.data, r.created_at)
	 = (e.stream_id, e.version, e.event_id, e.event_type, e.data, e.created_at);

-- A category is the stream id up to the first '-'.
SELECT event_store.category('gl_prod-1'), event_store.category('gl_prod'),
	   event_store.category('a-b-c'), event_store.category('-x');
SELECT global_position - :base AS pos, stream_id FROM event_store.read_category('gl_prod', :base);
SELECT global_position - :base AS pos, stream_id FROM event_store.read_category('gl_cust', :base);
SELECT array_agg(global_position - :base) FROM event_store.read_category('gl_prod', :base + 1, 2);
SELECT count(*) FROM event_store.read_category('gl_none');

-- Consumer groups: members split a category's streams with no overlap and no
-- gap, and each stream stays whole on one member.
SELECT count(event_store.append_event('gl_grp-' || i, 0, 'G', to_jsonb(i)))
  FROM generate_series(1, 40) i;
WITH m AS (
	SELECT member, r.stream_id, r.global_position
	  FROM generate_series(0, 2) member,
		   event_store.read_category('gl_grp', :base, NULL, member, 3) r)
SELECT count(*) AS received, count(DISTINCT global_position) AS distinct_events,
	   (SELECT count(*) FROM event_store.read_category('gl_grp', :base, NULL)) AS in_category,
	   count(DISTINCT member) AS members_used,
	   bool_and(member = event_store.consumer_group_member(stream_id, 3)) AS as_documented
  FROM m;
SELECT count(*) AS streams_on_two_members FROM (
	SELECT r.stream_id FROM generate_series(0, 2) member,
		   event_store.read_category('gl_grp', :base, NULL, member, 3) r
	 GROUP BY r.stream_id HAVING count(DISTINCT member) > 1) x;
-- A group of one reads the whole category.
SELECT count(*) FROM event_store.read_category('gl_grp', :base, NULL, 0, 1);
-- The member of a stream is stable: the same hash for the same id.
SELECT event_store.consumer_group_member('gl_grp-1', 7) = event_store.consumer_group_member('gl_grp-1', 7) AS stable,
	   event_store.consumer_group_member('gl_grp-1', 1) AS only_member;

-- safe_position: with nothing open, everything is settled.
SELECT event_store.safe_position() = (SELECT max(global_position) FROM event_store.events) AS all_settled;
-- An open append of this transaction holds it just below its position.
BEGIN;
SELECT event_store.append_event('gl_open', 0, 'Open', '{}');
SELECT event_store.safe_position() = (SELECT global_position - 1 FROM event_store.events WHERE stream_id = 'gl_open') AS held_below_open;
-- The transaction's own events are visible to its reads.
SELECT stream_id FROM event_store.read_all((SELECT max(global_position) - 1 FROM event_store.events));
ROLLBACK;
-- A rolled-back position is skipped, not waited for.
SELECT event_store.append_event('gl_after', 0, 'After', '{}');
SELECT array_agg(stream_id) FROM event_store.read_all(:base + 6) WHERE stream_id NOT LIKE 'gl_grp-%';

-- Bad arguments.
SELECT t.label, pg_temp.try(t.sql)
  FROM (VALUES
	('read_all negative max_count',  $$SELECT * FROM event_store.read_all(0, -1)$$),
	('read_category null category',  $$SELECT * FROM event_store.read_category(NULL)$$),
	('read_category negative count', $$SELECT * FROM event_store.read_category('x', 0, -1)$$),
	('member without size',          $$SELECT * FROM event_store.read_category('x', 0, 10, 0, NULL)$$),
	('size without member',          $$SELECT * FROM event_store.read_category('x', 0, 10, NULL, 2)$$),
	('size zero',                    $$SELECT * FROM event_store.read_category('x', 0, 10, 0, 0)$$),
	('member negative',              $$SELECT * FROM event_store.read_category('x', 0, 10, -1, 2)$$),
	('member equal to size',         $$SELECT * FROM event_store.read_category('x', 0, 10, 2, 2)$$),
	('group member of size zero',    $$SELECT event_store.consumer_group_member('x', 0)$$)
  ) AS t(label, sql);
-- NULL after_position reads from the start; a NULL max_count means no limit.
SELECT count(*) = (SELECT count(*) FROM event_store.events) AS whole_log
  FROM event_store.read_all(NULL, NULL);

-- The sequence must hand out one position at a time.
BEGIN;
ALTER SEQUENCE event_store.events_global_position_seq CACHE 10;
SELECT pg_temp.try($$SELECT event_store.append_event('gl_cache', 0, 'X', '{}')$$);
ROLLBACK;
BEGIN;
ALTER SEQUENCE event_store.events_global_position_seq INCREMENT -1;
SELECT pg_temp.try($$SELECT event_store.append_event('gl_cache', 0, 'X', '{}')$$);
ROLLBACK;
BEGIN;
ALTER SEQUENCE event_store.events_global_position_seq CYCLE;
SELECT pg_temp.try($$SELECT event_store.append_event('gl_cache', 0, 'X', '{}')$$);
ROLLBACK;
SELECT event_store.append_event('gl_cache', 0, 'X', '{}');

-- A read of the global log from inside an append (here, a constraint that
-- calls it) is refused: it would not wait for that append's own position.
CREATE FUNCTION pg_temp.peek() RETURNS boolean LANGUAGE sql
	AS $$ SELECT count(*) >= 0 FROM event_store.read_all(0, 1) $$;
BEGIN;
ALTER TABLE event_store.events ADD CONSTRAINT peeks CHECK (pg_temp.peek());
SELECT pg_temp.try($$SELECT event_store.append_event('gl_peek', 0, 'X', '{}')$$);
ROLLBACK;

-- An invalid category index (as a failed CREATE INDEX CONCURRENTLY leaves
-- it) is refused rather than read.
BEGIN;
UPDATE pg_index SET indisvalid = false
 WHERE indexrelid = 'event_store.events_category_idx'::regclass;
SELECT pg_temp.try($$SELECT * FROM event_store.read_category('gl_prod')$$);
ROLLBACK;
SELECT count(*) > 0 AS category_readable FROM event_store.read_category('gl_prod');

-- safe_position never goes backwards: a rolled-back append's position stays
-- settled after VACUUM has removed its tuple.
SELECT event_store.append_event('gl_sp', 0, 'A', '{}');
BEGIN;
SELECT event_store.append_event('gl_sp', 1, 'Lost', '{}');
ROLLBACK;
SELECT event_store.safe_position() = last_value AS at_last_position
  FROM event_store.events_global_position_seq;
VACUUM event_store.events;
SELECT event_store.safe_position() = last_value AS still_at_last_position
  FROM event_store.events_global_position_seq;

-- Each call's result is freed once the query is done with it: at the end of
-- a query that calls a read function 20,000 times (LATERAL), the backend
-- holds less than 2 MB more than after one that calls it 1,000 times.  (Each
-- call used to keep a 1 MB context, and then a 1 kB row descriptor, until
-- the query ended.)
CREATE FUNCTION pg_temp.memory_at_end(calls integer, fn text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	bytes bigint;
BEGIN
	EXECUTE format($q$
		SELECT (SELECT sum(total_bytes) FROM pg_backend_memory_contexts)
		  FROM (SELECT count(*) FROM generate_series(1, %s) g, LATERAL %s r) s
		$q$, calls, fn) INTO bytes;
	RETURN bytes;
END $$;
SELECT pg_temp.memory_at_end(20000, 'event_store.read_all(g % 5, 1)')
	 - pg_temp.memory_at_end(1000, 'event_store.read_all(g % 5, 1)')
	 < 2 * 1024 * 1024 AS read_all_memory_flat;
SELECT pg_temp.memory_at_end(20000, $$event_store.read_category('gl_prod', g % 3, 1)$$)
	 - pg_temp.memory_at_end(1000, $$event_store.read_category('gl_prod', g % 3, 1)$$)
	 < 2 * 1024 * 1024 AS read_category_memory_flat;
