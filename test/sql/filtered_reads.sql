-- filtered_reads: read_all filtered by event types and by categories,
-- read_category by event types (with consumer groups), last_read_position
-- (the checkpoint a filtered reader saves, also when nothing matched), the
-- views subscriptions and log_holders, and head_position.
\i test/sql/helpers.inc

-- Positions are shown relative to the last one handed out before this file.
CREATE FUNCTION pg_temp.last_taken() RETURNS bigint LANGUAGE sql AS $$
	SELECT CASE WHEN is_called THEN last_value ELSE 0 END
	  FROM event_store.events_global_position_seq $$;
SELECT pg_temp.last_taken() AS base \gset

SELECT event_store.append_events('frp-1', 0,
	'[{"type": "Created", "data": 1}, {"type": "Priced", "data": 2}]');
SELECT event_store.append_event('frc-1', 0, 'Registered', '3');
SELECT event_store.append_event('frp-2', 0, 'Created', '4');
SELECT event_store.append_event('frc-1', 1, 'Priced', '5');
-- No '-': the stream is its own category, frp.
SELECT event_store.append_event('frp', 0, 'Discontinued', '6');
SELECT event_store.append_event('frx-1', 0, 'Café', '7');
-- Nothing before the '-': the category is ''.
SELECT event_store.append_event('-fr', 0, 'Created', '8');

--
-- read_all by event types, by categories, by both.
--
SELECT global_position - :base AS pos, stream_id, event_type
  FROM event_store.read_all(:base, 100, ARRAY['Created']);
SELECT global_position - :base AS pos, stream_id, event_type
  FROM event_store.read_all(:base, 100, ARRAY['Priced', 'Created']);
SELECT global_position - :base AS pos, stream_id, event_type
  FROM event_store.read_all(:base, 100, NULL, ARRAY['frp']);
SELECT global_position - :base AS pos, stream_id, event_type
  FROM event_store.read_all(:base, 100, NULL, ARRAY['frp', 'frc']);
SELECT global_position - :base AS pos, stream_id, event_type
  FROM event_store.read_all(:base, 100, ARRAY['Priced'], ARRAY['frp']);
-- By name, with max_count left at its default.
SELECT global_position - :base AS pos, stream_id, event_type
  FROM event_store.read_all(after_position => :base, categories => ARRAY['frc'],
						   event_types => ARRAY['Registered', 'Created']);
-- A multibyte type; the category '' of '-fr'.
SELECT global_position - :base AS pos, stream_id, event_type
  FROM event_store.read_all(:base, 100, ARRAY['Café']);
SELECT global_position - :base AS pos, stream_id, event_type
  FROM event_store.read_all(:base, 100, NULL, ARRAY['']);
-- A repeated name matches once; matching is exact: no case folding, no
-- prefixes, and a stream id is not a category.
SELECT array_agg(global_position - :base) AS repeated
  FROM event_store.read_all(:base, 100, ARRAY['Created', 'Created']);
SELECT count(*) AS other_case FROM event_store.read_all(:base, 100, ARRAY['created']);
SELECT count(*) AS prefix FROM event_store.read_all(:base, 100, ARRAY['Create']);
SELECT count(*) AS category_prefix FROM event_store.read_all(:base, 100, NULL, ARRAY['fr']);
SELECT count(*) AS stream_id_as_category FROM event_store.read_all(:base, 100, NULL, ARRAY['frp-1']);
-- NULL filters filter nothing.
SELECT array_agg(global_position - :base) AS unfiltered
  FROM event_store.read_all(:base, 100, NULL, NULL);
-- The page counts matching events only.
SELECT array_agg(global_position - :base) AS page_of_two
  FROM event_store.read_all(:base, 2, ARRAY['Priced']);

--
-- read_category by event types, alone and with a consumer group.
--
SELECT global_position - :base AS pos, stream_id, event_type
  FROM event_store.read_category('frp', :base, 100, NULL, NULL, ARRAY['Created']);
SELECT global_position - :base AS pos, stream_id, event_type
  FROM event_store.read_category('frp', :base, 100, NULL, NULL, ARRAY['Discontinued', 'Priced']);
SELECT global_position - :base AS pos, stream_id, event_type
  FROM event_store.read_category('frc', :base, 100, NULL, NULL, ARRAY['Created']);
SELECT global_position - :base AS pos, stream_id, event_type
  FROM event_store.read_category(category => 'frp', after_position => :base,
								event_types => ARRAY['Priced']);

--
-- Empty arrays match nothing; NULL elements are refused.
--
SELECT count(*) AS no_types FROM event_store.read_all(:base, 100, '{}');
SELECT count(*) AS no_categories FROM event_store.read_all(:base, 100, NULL, '{}');
SELECT count(*) AS no_types_in_category
  FROM event_store.read_category('frp', :base, 100, NULL, NULL, '{}');
SELECT t.label, pg_temp.try(t.sql)
  FROM (VALUES
	('read_all null type',             $$SELECT * FROM event_store.read_all(0, 10, ARRAY[NULL]::text[])$$),
	('read_all null among types',      $$SELECT * FROM event_store.read_all(0, 10, ARRAY['Created', NULL])$$),
	('read_all null category',         $$SELECT * FROM event_store.read_all(0, 10, NULL, ARRAY['frp', NULL])$$),
	('read_all null type, count 0',    $$SELECT * FROM event_store.read_all(0, 0, ARRAY[NULL]::text[])$$),
	('read_all null type, far ahead',  $$SELECT * FROM event_store.read_all(9223372036854775806, 10, ARRAY[NULL]::text[])$$),
	('read_category null type',        $$SELECT * FROM event_store.read_category('frp', 0, 10, NULL, NULL, ARRAY[NULL]::text[])$$),
	('read_category group, null type', $$SELECT * FROM event_store.read_category('frp', 0, 10, 0, 2, ARRAY['Created', NULL])$$)
  ) AS t(label, sql);

--
-- Equivalence: a filtered read returns exactly what the unfiltered read
-- returns with the filter applied in SQL, for sets of many sizes of types
-- of many lengths.
--
SELECT pg_temp.last_taken() AS base_eq \gset
SELECT count(event_store.append_event(
		(ARRAY['freq_a-1', 'freq_a-2', 'freq_b-1', 'freq_c', 'freq_bb-1'])[1 + i % 5], -2,
		(ARRAY['A', 'BB', 'CCC', 'B', 'AA', 'Zzzzzz', 'Ab', 'Ba', 'Éé', 'Typ', 'Type', 'TypeLonger'])[1 + (i * 7) % 12],
		to_jsonb(i)))
  FROM generate_series(1, 120) i;
CREATE TEMP TABLE filters AS
SELECT k,
	   CASE WHEN k % 3 = 0 THEN NULL ELSE
	   ARRAY(SELECT n FROM unnest(ARRAY['A', 'BB', 'CCC', 'B', 'AA', 'Zzzzzz', 'Ab', 'Ba', 'Éé',
										'Typ', 'Type', 'TypeLonger', 'Missing']) WITH ORDINALITY u(n, i)
			  WHERE ((k * 2654435761) >> i::int) % 2 = 1) END AS types,
	   CASE WHEN k % 4 = 0 THEN NULL ELSE
	   ARRAY(SELECT n FROM unnest(ARRAY['freq_a', 'freq_b', 'freq_c', 'freq_bb', 'freq']) WITH ORDINALITY u(n, i)
			  WHERE ((k * 40503) >> i::int) % 2 = 1) END AS categories
  FROM generate_series(1, 60) k;
SELECT count(*) AS filters, count(*) FILTER (WHERE cardinality(types) = 0) AS empty_type_sets,
	   count(*) FILTER (WHERE cardinality(types) BETWEEN 1 AND 3) AS small_type_sets,
	   count(*) FILTER (WHERE cardinality(types) >= 6) AS large_type_sets
  FROM filters;
-- They are not all empty.
SELECT count(*) AS rows_read, count(DISTINCT f.k) AS filters_with_rows
  FROM filters f, event_store.read_all(:base_eq, NULL, f.types, f.categories);
SELECT count(*) AS read_all_mismatches
  FROM filters f
 WHERE ARRAY(SELECT global_position FROM event_store.read_all(:base_eq, NULL, f.types, f.categories))
	   IS DISTINCT FROM
	   ARRAY(SELECT global_position FROM event_store.read_all(:base_eq, NULL)
			  WHERE (f.types IS NULL OR event_type = ANY (f.types))
				AND (f.categories IS NULL OR event_store.category(stream_id) = ANY (f.categories))
			  ORDER BY global_position);
SELECT count(*) AS read_category_mismatches
  FROM filters f, unnest(ARRAY['freq_a', 'freq_b', 'freq_c']) c, generate_series(0, 2) m
 WHERE ARRAY(SELECT global_position
			   FROM event_store.read_category(c, :base_eq, NULL, m, 3, f.types))
	   IS DISTINCT FROM
	   ARRAY(SELECT global_position FROM event_store.read_category(c, :base_eq, NULL)
			  WHERE (f.types IS NULL OR event_type = ANY (f.types))
				AND event_store.consumer_group_member(stream_id, 3) = m
			  ORDER BY global_position);
DROP TABLE filters;

--
-- last_read_position: where this transaction's last read got to.
--
SELECT pg_temp.last_taken() - :base AS last_taken;
-- Outside a transaction block each statement is its own transaction: what
-- one statement read is forgotten by the next.
SELECT count(*) FROM event_store.read_all(:base, 100, ARRAY['Created']);
SELECT event_store.last_read_position() IS NULL AS forgotten_by_next_statement;

BEGIN;
SELECT event_store.last_read_position() IS NULL AS none_yet;
-- Nothing matched: it moves to the end of the log all the same.
SELECT count(*) FROM event_store.read_all(:base, 100, ARRAY['NoSuchType']);
SELECT event_store.last_read_position() - :base AS reached,
	   event_store.last_read_position() = pg_temp.last_taken() AS at_end;
-- The page is full: the last event returned, however far the next one is.
SELECT global_position - :base AS pos FROM event_store.read_all(:base, 2, ARRAY['Created']);
SELECT event_store.last_read_position() - :base AS reached;
-- The page is not full: the end.
SELECT global_position - :base AS pos FROM event_store.read_all(:base + 4, 2, ARRAY['Created']);
SELECT event_store.last_read_position() - :base AS reached;
-- Categories, and both filters.
SELECT global_position - :base AS pos FROM event_store.read_all(:base, 1, NULL, ARRAY['frc']);
SELECT event_store.last_read_position() - :base AS reached;
SELECT count(*) FROM event_store.read_all(:base, 100, ARRAY['Registered'], ARRAY['frp']);
SELECT event_store.last_read_position() - :base AS reached;
-- Empty filters read nothing and reach the end.
SELECT count(*) FROM event_store.read_all(:base, 100, '{}');
SELECT event_store.last_read_position() - :base AS reached;
SELECT count(*) FROM event_store.read_all(:base, 100, NULL, '{}');
SELECT event_store.last_read_position() - :base AS reached;
-- read_category: the same rules.
SELECT count(*) FROM event_store.read_category('frp', :base, 100, NULL, NULL, ARRAY['Registered']);
SELECT event_store.last_read_position() - :base AS reached;
SELECT global_position - :base AS pos
  FROM event_store.read_category('frp', :base, 2, NULL, NULL, ARRAY['Created', 'Discontinued']);
SELECT event_store.last_read_position() - :base AS reached;
SELECT count(*) FROM event_store.read_category('frp', :base, 100, NULL, NULL, '{}');
SELECT event_store.last_read_position() - :base AS reached;
SELECT count(*) FROM event_store.read_category('nosuchcategory', :base, 100);
SELECT event_store.last_read_position() - :base AS reached;
-- max_count 0 reads nothing and stays where it was asked to start; so does
-- a read from beyond the end.
SELECT count(*) FROM event_store.read_all(:base + 3, 0, ARRAY['Created']);
SELECT event_store.last_read_position() - :base AS reached;
SELECT count(*) FROM event_store.read_all(:base + 100000, 10, ARRAY['Created']);
SELECT event_store.last_read_position() - :base AS reached;
-- The last call counts, not the furthest.
SELECT count(*) FROM event_store.read_all(:base, 1);
SELECT event_store.last_read_position() - :base AS reached;
COMMIT;
SELECT event_store.last_read_position() IS NULL AS forgotten_after_commit;

-- A rolled-back position is settled: a read passes it, and reaches the last
-- position handed out, beyond the highest one stored.
BEGIN;
SELECT event_store.append_event('frp-3', 0, 'Created', '9');
ROLLBACK;
BEGIN;
SELECT count(*) FROM event_store.read_all(:base, 100, ARRAY['Created'], ARRAY['frp']);
SELECT event_store.last_read_position() = pg_temp.last_taken() AS at_last_taken,
	   event_store.last_read_position() > event_store.head_position() AS beyond_head;
ROLLBACK;
SELECT event_store.last_read_position() IS NULL AS forgotten_after_rollback;

-- Subtransactions: a read made in a subtransaction that rolls back is
-- forgotten; rolling back one that did not read keeps it; a released one's
-- read counts until a subtransaction around it rolls back.
BEGIN;
SELECT count(*) FROM event_store.read_all(:base, 2, ARRAY['Created']);
SELECT event_store.last_read_position() - :base AS reached;
SAVEPOINT s1;
SELECT count(*) FROM event_store.read_all(:base, 100, ARRAY['NoSuchType']);
SELECT event_store.last_read_position() = pg_temp.last_taken() AS at_end_in_s1;
ROLLBACK TO SAVEPOINT s1;
SELECT event_store.last_read_position() IS NULL AS forgotten_with_s1;
SELECT count(*) FROM event_store.read_all(:base, 1, ARRAY['Priced']);
SELECT event_store.last_read_position() - :base AS reached;
SAVEPOINT s2;
ROLLBACK TO SAVEPOINT s2;
SELECT event_store.last_read_position() - :base AS kept_after_empty_rollback;
SAVEPOINT s3;
SELECT count(*) FROM event_store.read_all(:base, 2, ARRAY['Priced']);
RELEASE SAVEPOINT s3;
SELECT event_store.last_read_position() - :base AS kept_after_release;
SAVEPOINT s4;
SAVEPOINT s5;
SELECT count(*) FROM event_store.read_all(:base, 1, NULL, ARRAY['frc']);
SELECT event_store.last_read_position() - :base AS reached_in_s5;
RELEASE SAVEPOINT s5;
ROLLBACK TO SAVEPOINT s4;
SELECT event_store.last_read_position() IS NULL AS forgotten_with_s4;
-- A read after the rollback is remembered again.
SELECT count(*) FROM event_store.read_category('frc', :base, 1);
SELECT event_store.last_read_position() - :base AS reached;
-- A failed read in a subtransaction (here a NULL element) changes nothing.
SAVEPOINT s6;
SELECT pg_temp.try($$SELECT * FROM event_store.read_all(0, 10, ARRAY[NULL]::text[])$$);
RELEASE SAVEPOINT s6;
SELECT event_store.last_read_position() - :base AS kept_after_failed_read;
COMMIT;
-- A PL/pgSQL block that catches an error rolls back its subtransaction.
CREATE FUNCTION pg_temp.read_then_fail(after bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
	BEGIN
		PERFORM * FROM event_store.read_all(after, 100, ARRAY['Created']);
		RAISE EXCEPTION 'fail';
	EXCEPTION WHEN raise_exception THEN
		RETURN event_store.last_read_position();
	END;
END $$;
SELECT pg_temp.read_then_fail(:base) IS NULL AS forgotten_with_block;

--
-- Events hidden by their stream's lifecycle are not returned by filtered
-- reads, and do not fill a page; the read passes them.
--
SELECT pg_temp.last_taken() AS base_h \gset
SELECT event_store.append_events('frh-1', 0,
	'[{"type": "X", "data": 1}, {"type": "Y", "data": 2}, {"type": "X", "data": 3}]');
SELECT event_store.append_event('frh-2', 0, 'X', '4');
SELECT event_store.append_events('frh-3', 0,
	'[{"type": "X", "data": 5}, {"type": "X", "data": 6}]');
SELECT event_store.delete_stream('frh-1', 3) > 0 AS deleted;
SELECT event_store.truncate_stream('frh-3', 2) > 0 AS truncated;
SELECT stream_id, version, event_type
  FROM event_store.read_all(:base_h, 100, ARRAY['X', 'Y']);
SELECT stream_id, version, event_type
  FROM event_store.read_all(:base_h, 100, NULL, ARRAY['frh']);
SELECT stream_id, version, event_type
  FROM event_store.read_category('frh', :base_h, 100, NULL, NULL, ARRAY['X', 'Y']);
SELECT count(*) AS in_group_of_two
  FROM generate_series(0, 1) m,
	   event_store.read_category('frh', :base_h, 100, m, 2, ARRAY['X', 'Y']);
-- The lifecycle events themselves are events of the log.
SELECT stream_id, event_type
  FROM event_store.read_all(:base_h, 100, ARRAY['$deleted', '$truncated']);
BEGIN;
SELECT stream_id, version FROM event_store.read_all(:base_h, 1, ARRAY['X']);
SELECT event_store.last_read_position() - :base_h AS reached;
SELECT count(*) FROM event_store.read_all(:base_h, 100, ARRAY['Y']);
SELECT event_store.last_read_position() = pg_temp.last_taken() AS at_end;
SELECT count(*) FROM event_store.read_category('frh', :base_h, 100, NULL, NULL, ARRAY['Y']);
SELECT event_store.last_read_position() = pg_temp.last_taken() AS at_end;
COMMIT;

--
-- A sparse subscriber: one type among many events, paged with a small
-- max_count, follows last_read_position to the end and gets every event of
-- its type exactly once, in order.
--
-- Follow a read from a position; the read is a query whose $1 is the
-- checkpoint and $2 the page size.  Checks every page against its call's
-- last_read_position, and returns what it got, how many calls it made, and
-- where it ended.
CREATE FUNCTION pg_temp.follow(query text, after bigint, page integer,
							   OUT positions bigint[], OUT calls integer,
							   OUT checkpoint bigint)
LANGUAGE plpgsql AS $$
DECLARE
	got bigint[];
	reached bigint;
BEGIN
	positions := '{}';
	calls := 0;
	checkpoint := after;
	LOOP
		EXECUTE format('SELECT array_agg(global_position) FROM (%s) r', query)
		   INTO got USING checkpoint, page;
		calls := calls + 1;
		reached := event_store.last_read_position();
		IF reached IS NULL THEN
			RAISE EXCEPTION 'no last_read_position after call %', calls;
		END IF;
		IF reached < checkpoint THEN
			RAISE EXCEPTION 'last_read_position % went back from %', reached, checkpoint;
		END IF;
		IF got IS NOT NULL THEN
			IF cardinality(got) > page THEN
				RAISE EXCEPTION 'page of % for max_count %', cardinality(got), page;
			END IF;
			IF got[1] <= checkpoint OR reached < got[cardinality(got)] THEN
				RAISE EXCEPTION 'page % outside (%, %]', got, checkpoint, reached;
			END IF;
			IF cardinality(got) = page AND reached <> got[cardinality(got)] THEN
				RAISE EXCEPTION 'full page % but last_read_position %', got, reached;
			END IF;
			positions := positions || got;
		END IF;
		EXIT WHEN got IS NULL AND reached = checkpoint;
		checkpoint := reached;
		IF calls > 10000 THEN
			RAISE EXCEPTION 'no end';
		END IF;
	END LOOP;
END $$;

SELECT pg_temp.last_taken() AS base_s \gset
SELECT count(event_store.append_event('frs-' || (i % 7), -2,
		CASE WHEN i % 61 = 0 THEN 'Rare' ELSE 'Common' || (i % 5) END, to_jsonb(i)))
  FROM generate_series(1, 600) i;
-- A rare event rolled back, a rare event of a deleted stream, more common
-- ones after the last rare one.
BEGIN;
SELECT event_store.append_event('frs-1', -2, 'Rare', '"lost"');
ROLLBACK;
SELECT event_store.append_event('frs_gone-1', 0, 'Rare', '"gone"');
SELECT event_store.delete_stream('frs_gone-1', 1) > 0 AS deleted;
SELECT count(event_store.append_event('frs-' || (i % 7), -2, 'Common', to_jsonb(i)))
  FROM generate_series(1, 50) i;

SELECT array_agg(global_position ORDER BY global_position) AS rare
  FROM event_store.events
 WHERE global_position > :base_s AND event_type = 'Rare' AND stream_id LIKE 'frs-%' \gset
SELECT cardinality(:'rare'::bigint[]) AS rare_events;

SELECT page, f.positions = :'rare'::bigint[] AS each_once_in_order, f.calls,
	   f.checkpoint = pg_temp.last_taken() AS reached_end
  FROM unnest(ARRAY[1, 2, 4, 1000]) page,
	   pg_temp.follow($$SELECT * FROM event_store.read_all($1, $2, ARRAY['Rare'])$$,
					  :base_s, page) f;
SELECT page, f.positions = :'rare'::bigint[] AS each_once_in_order, f.calls,
	   f.checkpoint = pg_temp.last_taken() AS reached_end
  FROM unnest(ARRAY[1, 3]) page,
	   pg_temp.follow($$SELECT * FROM event_store.read_all($1, $2, ARRAY['Rare'], ARRAY['frs'])$$,
					  :base_s, page) f;
SELECT page, f.positions = :'rare'::bigint[] AS each_once_in_order, f.calls,
	   f.checkpoint = pg_temp.last_taken() AS reached_end
  FROM unnest(ARRAY[1, 3]) page,
	   pg_temp.follow($$SELECT * FROM event_store.read_category('frs', $1, $2, NULL, NULL, ARRAY['Rare'])$$,
					  :base_s, page) f;
-- A consumer group of three, each member following its own checkpoint:
-- together every rare event once, each on the member of its stream.
WITH f AS (
	SELECT m, f.*
	  FROM generate_series(0, 2) m,
		   pg_temp.follow(format($$SELECT * FROM event_store.read_category('frs', $1, $2, %s, 3, ARRAY['Rare'])$$, m),
						  :base_s, 2) f)
SELECT (SELECT array_agg(p ORDER BY p) FROM f, unnest(f.positions) p) = :'rare'::bigint[]
		AS each_once,
	   (SELECT bool_and(event_store.consumer_group_member(e.stream_id, 3) = f.m)
		  FROM f, unnest(f.positions) p JOIN event_store.events e ON e.global_position = p)
		AS right_member,
	   (SELECT count(*) FROM f WHERE cardinality(f.positions) > 0) AS members_with_events,
	   (SELECT bool_and(f.checkpoint = pg_temp.last_taken()) FROM f) AS all_reached_end;

--
-- Row-level security with filters: the policies decide, and
-- last_read_position is where the read got to for the tenant.
--
CREATE ROLE es_fr_a;
CREATE ROLE es_fr_b;
GRANT USAGE ON SCHEMA event_store TO es_fr_a, es_fr_b;
GRANT SELECT ON event_store.events TO es_fr_a, es_fr_b;
GRANT EXECUTE ON FUNCTION event_store.read_all(bigint, bigint, text[], text[]),
	event_store.read_category(text, bigint, bigint, integer, integer, text[]),
	event_store.last_read_position(), event_store.category(text)
	TO es_fr_a, es_fr_b;

SELECT pg_temp.last_taken() AS base_r \gset
SELECT event_store.append_event('fra-1', 0, 'T1', '1');
-- A long run of b's events of the same type between a's: more than one
-- chunk of positions to read back through the policies.
SELECT event_store.append_events('frb-1', 0,
	(SELECT jsonb_agg(jsonb_build_object('type', 'T1', 'data', i))
	   FROM generate_series(1, 5000) i));
SELECT event_store.append_event('fra-1', 1, 'T2', '2');
SELECT event_store.append_event('frb-2', 0, 'T1', '3');
SELECT event_store.append_event('fra-2', 0, 'T1', '4');
SELECT event_store.append_event('frb-2', 1, 'T2', '5');
SELECT pg_temp.last_taken() AS end_r \gset
SELECT array_agg(global_position ORDER BY global_position) AS a_t1
  FROM event_store.events
 WHERE global_position > :base_r AND stream_id LIKE 'fra-%' AND event_type = 'T1' \gset

ALTER TABLE event_store.events ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON event_store.events FOR SELECT TO es_fr_a, es_fr_b
	USING (event_store.category(stream_id) =
		   CASE current_user WHEN 'es_fr_a' THEN 'fra' WHEN 'es_fr_b' THEN 'frb' END);

SET ROLE es_fr_a;
BEGIN;
SELECT stream_id, version, event_type FROM event_store.read_all(:base_r, 10, ARRAY['T1']);
SELECT event_store.last_read_position() = :end_r AS at_end;
-- A full page: the last event the tenant got, not where the scan got.
SELECT stream_id, version, event_type FROM event_store.read_all(:base_r, 1, ARRAY['T1']);
SELECT event_store.last_read_position() - :base_r AS reached;
SELECT stream_id, version, event_type
  FROM event_store.read_all(:base_r + 1, 1, ARRAY['T1']);
SELECT event_store.last_read_position() = (:'a_t1'::bigint[])[2] AS at_second_a_event;
-- Only b's category asked for: nothing, and the end.
SELECT count(*) FROM event_store.read_all(:base_r, 10, NULL, ARRAY['frb']);
SELECT event_store.last_read_position() = :end_r AS at_end;
SELECT stream_id, version, event_type
  FROM event_store.read_all(:base_r, 10, ARRAY['T2'], ARRAY['fra', 'frb']);
SELECT event_store.last_read_position() = :end_r AS at_end;
SELECT stream_id, version, event_type
  FROM event_store.read_category('fra', :base_r, 10, NULL, NULL, ARRAY['T2']);
SELECT event_store.last_read_position() = :end_r AS at_end;
SELECT count(*) FROM event_store.read_category('frb', :base_r, 10, NULL, NULL, ARRAY['T1']);
SELECT event_store.last_read_position() = :end_r AS at_end;
COMMIT;
SELECT page, f.positions = :'a_t1'::bigint[] AS each_once_in_order, f.calls,
	   f.checkpoint = :end_r AS reached_end
  FROM unnest(ARRAY[1, 2]) page,
	   pg_temp.follow($$SELECT * FROM event_store.read_all($1, $2, ARRAY['T1'])$$,
					  :base_r, page) f;
RESET ROLE;
SET ROLE es_fr_b;
SELECT count(*) AS b_t2, min(stream_id), max(stream_id)
  FROM event_store.read_all(:base_r, NULL, ARRAY['T2']);
SELECT count(*) AS b_t1 FROM event_store.read_all(:base_r, NULL, ARRAY['T1'], ARRAY['fra', 'frb']);
RESET ROLE;

DROP POLICY tenant ON event_store.events;
ALTER TABLE event_store.events DISABLE ROW LEVEL SECURITY;
DROP OWNED BY es_fr_a, es_fr_b;
DROP ROLE es_fr_a, es_fr_b;

--
-- head_position, the view subscriptions, the view log_holders.
--
SELECT event_store.head_position() = (SELECT max(global_position) FROM event_store.events)
	AS head_is_highest_stored;
-- A rolled-back append does not move the head.
SELECT event_store.head_position() AS head \gset
BEGIN;
SELECT event_store.append_event('frv-1', 0, 'Lost', '{}');
SELECT event_store.head_position() - :head AS own_uncommitted_counts;
ROLLBACK;
SELECT event_store.head_position() - :head AS after_rollback,
	   pg_temp.last_taken() - :head AS last_taken;

SELECT event_store.save_checkpoint('fr_behind', :head) - :head AS saved;
SELECT event_store.append_events('frv-1', 0,
	'[{"type": "A", "data": 1}, {"type": "B", "data": 2}, {"type": "C", "data": 3}]');
SELECT event_store.save_checkpoint('fr_one_behind', event_store.head_position() - 1) - :head AS saved;
SELECT event_store.save_checkpoint('fr_caught_up', event_store.head_position()) - :head AS saved;
SELECT event_store.save_checkpoint('fr_ahead', event_store.head_position() + 10) - :head AS saved;
SELECT pg_sleep(0.01);
SELECT subscriber, checkpoint - :head AS checkpoint, head_position - :head AS head_position,
	   head_position = event_store.head_position() AS is_head,
	   lag_positions, lag_events, lag > '0' AS lagging, lag = '0' AS no_lag,
	   saved_at = (SELECT updated_at FROM event_store.checkpoints c
					WHERE c.subscriber = s.subscriber) AS saved_at
  FROM event_store.subscriptions s
 WHERE subscriber LIKE 'fr\_%'
 ORDER BY checkpoint;
-- The lag is measured from the first event after the checkpoint.
SELECT s.lag = now() - e.created_at AS lag_from_next_event
  FROM event_store.subscriptions s, event_store.events e
 WHERE s.subscriber = 'fr_behind' AND e.global_position = :head + 2;
DELETE FROM event_store.checkpoints WHERE subscriber LIKE 'fr\_%';

-- Nothing open: no holder.
SELECT count(*) AS holders FROM event_store.log_holders;
SELECT count(*) AS holder_rows FROM event_store.log_holder();
-- This transaction's own open append holds the log, at its first position.
BEGIN;
SELECT event_store.append_events('frv-2', 0, '[{"type": "A", "data": 1}, {"type": "B", "data": 2}]');
SELECT "position" = event_store.head_position() - 1 AS at_first_position,
	   pid = pg_backend_pid() AS own_pid,
	   role_name = current_user AS own_role,
	   application_name = current_setting('application_name') AS own_application,
	   state, xact_age >= '0' AS has_age, query LIKE '%log_holders%' AS own_query
  FROM event_store.log_holders;
ROLLBACK;
-- Also when the append was made in a subtransaction.
BEGIN;
SAVEPOINT s;
SELECT event_store.append_event('frv-3', 0, 'A', '{}');
SELECT "position" = event_store.head_position() AS at_position,
	   pid = pg_backend_pid() AS own_pid
  FROM event_store.log_holder();
RELEASE SAVEPOINT s;
SELECT count(*) AS holders, bool_and(pid = pg_backend_pid()) AS own_pid
  FROM event_store.log_holder();
ROLLBACK;
SELECT count(*) AS holders FROM event_store.log_holders;
