-- parked_events: park_event, read_parked and unpark_event; a projection's
-- batch that parks the event it cannot apply and still moves its checkpoint,
-- in one transaction; the replay; bad input; the README's grants.
\i test/sql/helpers.inc

-- Six events of a category of this file's own.  Positions are shown as
-- offsets from :start, so that the output does not depend on what earlier
-- files appended.
SELECT count(event_store.append_event('pkord-' || i, 0, 'Placed',
									  jsonb_build_object('n', i)))
	   AS appended
  FROM generate_series(1, 6) i;
SELECT min(global_position) - 1 AS start FROM event_store.read_category('pkord') \gset
SELECT max(global_position) - :start AS p6,
	   array_agg(global_position - :start ORDER BY global_position) AS offsets
  FROM event_store.read_category('pkord');
SELECT :start + 1 AS p1, :start + 2 AS p2, :start + 3 AS p3,
	   :start + 4 AS p4, :start + 5 AS p5, :start + 6 AS p6 \gset

-- Park: the first park of an event returns 1 attempt.
SELECT event_store.park_event('pk_proj', :p1, 'first failure');
SELECT event_store.park_event('pk_proj', :p3, 'no such product');
SELECT event_store.park_event('pk_other', :p2, 'another subscriber');

-- Parking it again replaces the error and the time, and counts the attempt.
SELECT parked_at AS first_parked_at FROM event_store.parked_events
 WHERE subscriber = 'pk_proj' AND global_position = :p1 \gset
SELECT pg_sleep(0.01);
SELECT event_store.park_event('pk_proj', :p1, 'second failure');
SELECT global_position - :start AS "offset", error, attempts
  FROM event_store.parked_events
 WHERE subscriber = 'pk_proj' ORDER BY global_position;
SELECT parked_at > :'first_parked_at' AS parked_at_moved
  FROM event_store.parked_events
 WHERE subscriber = 'pk_proj' AND global_position = :p1;

-- read_parked: the subscriber's own parkings only, in position order, with
-- the event as stored and the parking's error and attempts.
SELECT global_position - :start AS "offset", stream_id, version, event_type,
	   data, metadata, error, attempts,
	   event_id = (SELECT e.event_id FROM event_store.events e
					WHERE e.global_position = r.global_position) AS same_event_id,
	   created_at = (SELECT e.created_at FROM event_store.events e
					  WHERE e.global_position = r.global_position) AS same_created_at
  FROM event_store.read_parked('pk_proj') r;
SELECT global_position - :start AS "offset", stream_id, error
  FROM event_store.read_parked('pk_other');
-- max_count and after_position page through them.
SELECT global_position - :start AS "offset" FROM event_store.read_parked('pk_proj', 1);
SELECT global_position - :start AS "offset" FROM event_store.read_parked('pk_proj', 1, :p1);
SELECT global_position - :start AS "offset" FROM event_store.read_parked('pk_proj', 100, :p3);
SELECT count(*) AS max_count_0 FROM event_store.read_parked('pk_proj', 0);
SELECT count(*) AS max_count_null FROM event_store.read_parked('pk_proj', NULL);
SELECT count(*) AS after_null FROM event_store.read_parked('pk_proj', 100, NULL);
SELECT count(*) AS unknown_subscriber FROM event_store.read_parked('pk_nobody');
SELECT count(*) AS null_subscriber FROM event_store.read_parked(NULL);
SELECT pg_temp.try($$SELECT * FROM event_store.read_parked('pk_proj', -1)$$);

-- unpark_event: true when this call removed the parking, false after.
SELECT event_store.unpark_event('pk_proj', :p3) AS unparked;
SELECT event_store.unpark_event('pk_proj', :p3) AS unparked_again;
SELECT event_store.unpark_event('pk_proj', :p2) AS never_parked_here;
SELECT event_store.unpark_event(NULL, :p1) IS NULL AS null_subscriber,
	   event_store.unpark_event('pk_proj', NULL) IS NULL AS null_position;
SELECT global_position - :start AS "offset" FROM event_store.read_parked('pk_proj');
SELECT event_store.unpark_event('pk_proj', :p1) AS unparked,
	   event_store.unpark_event('pk_other', :p2) AS other_unparked;
SELECT count(*) AS parked_left FROM event_store.parked_events;

-- Bad input changes nothing: NULL arguments (22004), a position where no
-- event is stored (P0002).
SELECT pg_temp.try($$SELECT event_store.park_event(NULL, 1, 'e')$$);
SELECT pg_temp.try($$SELECT event_store.park_event('pk_proj', NULL, 'e')$$);
SELECT pg_temp.try($$SELECT event_store.park_event('pk_proj', 1, NULL)$$);
SELECT pg_temp.try($$SELECT event_store.park_event('pk_proj', 0, 'e')$$);
SELECT pg_temp.try($$SELECT event_store.park_event('pk_proj', -1, 'e')$$);
SELECT pg_temp.try($$SELECT event_store.park_event('pk_proj', 9223372036854775807, 'e')$$);
SELECT count(*) AS parked_after_bad_input FROM event_store.parked_events;
-- The same with psql's own report of the error and its SQLSTATE.
\set VERBOSITY sqlstate
SELECT event_store.park_event(NULL, :p1, 'e');
SELECT event_store.park_event('pk_proj', 9223372036854775807, 'e');
\set VERBOSITY default

-- The pattern of a projection's batch: each event applied in a savepoint;
-- an apply that fails is rolled back to the savepoint and parked, and the
-- batch goes on; the checkpoint is saved at the end, in the same
-- transaction.  The read model refuses n = 5.
CREATE TABLE pk_orders (stream_id text PRIMARY KEY, n integer NOT NULL,
						CONSTRAINT pk_orders_n_check CHECK (n <> 5));
CREATE FUNCTION pg_temp.apply(p bigint) RETURNS text
LANGUAGE sql AS $$
	INSERT INTO pk_orders
	SELECT stream_id, (data->>'n')::integer FROM event_store.events
	 WHERE global_position = p
	RETURNING stream_id
$$;
SELECT event_store.save_checkpoint('pk_batch', :p3) - :start AS checkpoint;

BEGIN;
SELECT pg_advisory_xact_lock(hashtextextended('pk_batch', 0));
SELECT global_position - :start AS batch
  FROM event_store.read_category('pkord', event_store.checkpoint('pk_batch'), 3);
SAVEPOINT apply;
SELECT pg_temp.apply(:p4);
RELEASE SAVEPOINT apply;
SAVEPOINT apply;
SELECT pg_temp.apply(:p5);
ROLLBACK TO SAVEPOINT apply;
SELECT event_store.park_event('pk_batch', :p5, 'n must not be 5');
SAVEPOINT apply;
SELECT pg_temp.apply(:p6);
RELEASE SAVEPOINT apply;
SELECT event_store.save_checkpoint('pk_batch', :p6) - :start AS checkpoint;
COMMIT;
-- Applied once each but the one that failed; parked; the checkpoint moved.
SELECT stream_id, n FROM pk_orders ORDER BY stream_id;
SELECT global_position - :start AS "offset", stream_id, error, attempts
  FROM event_store.read_parked('pk_batch');
SELECT event_store.checkpoint('pk_batch') - :start AS checkpoint;
SELECT count(*) AS batch_after_checkpoint
  FROM event_store.read_category('pkord', event_store.checkpoint('pk_batch'));

-- A batch whose transaction rolls back leaves neither its parkings nor its
-- checkpoint (nor a re-park's attempt).
SELECT event_store.append_event('pkord-7', 0, 'Placed', jsonb_build_object('n', 5))
	   AS version;
SELECT global_position AS p7 FROM event_store.read_stream('pkord-7') \gset
BEGIN;
SAVEPOINT apply;
SELECT pg_temp.apply(:p7);
ROLLBACK TO SAVEPOINT apply;
SELECT event_store.park_event('pk_batch', :p7, 'n must not be 5');
SELECT event_store.park_event('pk_batch', :p5, 'parked again, then rolled back');
SELECT event_store.save_checkpoint('pk_batch', :p7) - :start AS checkpoint;
ROLLBACK;
SELECT global_position - :start AS "offset", error, attempts
  FROM event_store.read_parked('pk_batch');
SELECT event_store.checkpoint('pk_batch') - :start AS checkpoint;

-- Replay: in a transaction, take the subscriber's lock, read its parked
-- events, apply and unpark each, commit.  A replay that fails again parks
-- the event again (a second attempt).
BEGIN;
SELECT pg_advisory_xact_lock(hashtextextended('pk_batch', 0));
SELECT global_position - :start AS "offset", attempts
  FROM event_store.read_parked('pk_batch');
SAVEPOINT apply;
SELECT pg_temp.apply(:p5);
ROLLBACK TO SAVEPOINT apply;
SELECT event_store.park_event('pk_batch', :p5, 'still n = 5');
COMMIT;
-- The read model is fixed; the replay applies the event and unparks it.
ALTER TABLE pk_orders DROP CONSTRAINT pk_orders_n_check;
BEGIN;
SELECT pg_advisory_xact_lock(hashtextextended('pk_batch', 0));
SELECT pg_temp.apply(r.global_position) AS applied, r.attempts, r.error,
	   event_store.unpark_event('pk_batch', r.global_position) AS unparked
  FROM event_store.read_parked('pk_batch') r;
COMMIT;
SELECT stream_id, n FROM pk_orders ORDER BY stream_id;
SELECT count(*) AS parked_for_pk_batch FROM event_store.read_parked('pk_batch');
DROP TABLE pk_orders;

-- An event deleted, truncated away or erased after it was parked: the
-- parking still shows, with NULL event columns, and can be unparked; such
-- an event can no longer be parked.  (In a transaction rolled back at the
-- end, so that the erasure leaves no audit row for later files.)
SELECT event_store.append_event('pkgone-1', 0, 'Placed', '{}') AS deleted_version,
	   event_store.append_event('pkgone-2', 0, 'Placed', '{}') AS erased_version,
	   event_store.append_event('pkgone-3', 0, 'Placed', '{}') AS truncated_version;
SELECT (SELECT global_position FROM event_store.read_stream('pkgone-1')) AS g1,
	   (SELECT global_position FROM event_store.read_stream('pkgone-2')) AS g2,
	   (SELECT global_position FROM event_store.read_stream('pkgone-3')) AS g3 \gset
SELECT event_store.park_event('pk_gone', :g1, 'e1'),
	   event_store.park_event('pk_gone', :g2, 'e2'),
	   event_store.park_event('pk_gone', :g3, 'e3');
BEGIN;
SELECT event_store.delete_stream('pkgone-1', 1);
SELECT event_store.erase_stream('pkgone-2', 'pk test');
SELECT event_store.truncate_stream('pkgone-3', 2);
SELECT global_position - :g1 AS "offset", stream_id, version, event_id,
	   event_type, data, metadata, created_at, error, attempts
  FROM event_store.read_parked('pk_gone');
SELECT regexp_replace(pg_temp.try(format('SELECT event_store.park_event(%L, %s, %L)',
										 'pk_gone', g, 'again')),
					  'position \d+', 'position N')
  FROM unnest(ARRAY[:g1, :g2, :g3]::bigint[]) g;
SELECT attempts FROM event_store.parked_events WHERE subscriber = 'pk_gone'
 ORDER BY global_position;
SELECT event_store.unpark_event('pk_gone', g) AS unparked
  FROM unnest(ARRAY[:g1, :g2, :g3]::bigint[]) g;
SELECT count(*) AS parked_for_pk_gone FROM event_store.read_parked('pk_gone');
ROLLBACK;
SELECT global_position - :g1 AS "offset", stream_id, version, error, attempts
  FROM event_store.read_parked('pk_gone');
DELETE FROM event_store.parked_events WHERE subscriber = 'pk_gone';

-- The table is kept by pg_dump; every object has a comment; the functions
-- run with the caller's rights.
SELECT 'event_store.parked_events'::regclass = ANY (extconfig) AS dumped
  FROM pg_extension WHERE extname = 'event_store';
SELECT o::regprocedure AS function, p.prosecdef AS security_definer,
	   obj_description(o, 'pg_proc') IS NOT NULL AS commented
  FROM unnest(ARRAY['event_store.park_event(text, bigint, text)',
					'event_store.read_parked(text, bigint, bigint)',
					'event_store.unpark_event(text, bigint)']::regprocedure[]) o
  JOIN pg_proc p ON p.oid = o;
SELECT obj_description('event_store.parked_events'::regclass, 'pg_class') IS NOT NULL
	   AS table_commented;
SELECT conname FROM pg_constraint
 WHERE conrelid = 'event_store.parked_events'::regclass
   AND contype <> 'n'   -- 18 records NOT NULL constraints here too
 ORDER BY conname;

-- Privileges.  A reader (the README's grants) and a role with no grant at
-- all can neither park, read parkings nor unpark (42501); a projection with
-- the README's grants can, as itself, run the whole pattern.
CREATE ROLE es_park_nobody;
CREATE ROLE es_park_reader;
CREATE ROLE es_park_projection;
GRANT USAGE ON SCHEMA event_store TO es_park_reader;
GRANT SELECT ON event_store.events, event_store.streams TO es_park_reader;
GRANT EXECUTE ON FUNCTION
	event_store.read_stream(text, bigint, bigint, boolean),
	event_store.stream_version(text),
	event_store.read_all(bigint, bigint, text[], text[]),
	event_store.read_category(text, bigint, bigint, integer, integer, text[]),
	event_store.safe_position(),
	event_store.category(text),
	event_store.consumer_group_member(text, integer),
	event_store.read_snapshot(text, bigint),
	event_store.stream_info(text)
	TO es_park_reader;
GRANT SELECT ON event_store.snapshots TO es_park_reader;
GRANT es_park_reader TO es_park_projection;
GRANT SELECT, INSERT, UPDATE ON event_store.checkpoints TO es_park_projection;
GRANT SELECT, INSERT, UPDATE, DELETE ON event_store.parked_events TO es_park_projection;
GRANT EXECUTE ON FUNCTION
	event_store.save_checkpoint(text, bigint, boolean),
	event_store.checkpoint(text),
	event_store.park_event(text, bigint, text),
	event_store.read_parked(text, bigint, bigint),
	event_store.unpark_event(text, bigint)
	TO es_park_projection;

SELECT event_store.park_event('pk_priv', :p1, 'parked by the owner');

SET ROLE es_park_nobody;
SELECT pg_temp.try(format('SELECT event_store.park_event(%L, %s, %L)', 'pk_priv', :p2, 'e'));
SELECT pg_temp.try($$SELECT * FROM event_store.read_parked('pk_priv')$$);
SELECT pg_temp.try(format('SELECT event_store.unpark_event(%L, %s)', 'pk_priv', :p1));
SELECT pg_temp.try($$SELECT count(*) FROM event_store.parked_events$$);
RESET ROLE;

SET ROLE es_park_reader;
SELECT pg_temp.try(format('SELECT event_store.park_event(%L, %s, %L)', 'pk_priv', :p2, 'e'));
SELECT pg_temp.try($$SELECT * FROM event_store.read_parked('pk_priv')$$);
SELECT pg_temp.try(format('SELECT event_store.unpark_event(%L, %s)', 'pk_priv', :p1));
SELECT pg_temp.try($$SELECT count(*) FROM event_store.parked_events$$);
SELECT pg_temp.try($$DELETE FROM event_store.parked_events$$);
RESET ROLE;
SELECT global_position - :start AS "offset", error, attempts
  FROM event_store.read_parked('pk_priv');

SET ROLE es_park_projection;
BEGIN;
SELECT pg_advisory_xact_lock(hashtextextended('pk_priv', 0));
SELECT event_store.park_event('pk_priv', :p2, 'parked by the projection');
SELECT event_store.park_event('pk_priv', :p1, 'parked again by the projection');
SELECT event_store.save_checkpoint('pk_priv', :p2) - :start AS checkpoint;
COMMIT;
BEGIN;
SELECT pg_advisory_xact_lock(hashtextextended('pk_priv', 0));
SELECT global_position - :start AS "offset", stream_id, error, attempts,
	   event_store.unpark_event('pk_priv', global_position) AS unparked
  FROM event_store.read_parked('pk_priv');
COMMIT;
SELECT count(*) AS parked_left FROM event_store.read_parked('pk_priv');
-- A rebuild from position 0 clears the subscriber's parkings.
SELECT event_store.park_event('pk_priv', :p3, 'to be cleared');
DELETE FROM event_store.parked_events WHERE subscriber = 'pk_priv';
SELECT event_store.save_checkpoint('pk_priv', 0, true) AS checkpoint;
RESET ROLE;

-- Under row-level security, an event the policies hide from the caller
-- cannot be parked, and shows with NULL event columns.
SELECT event_store.park_event('pk_rls', :p2, 'parked by the owner');
ALTER TABLE event_store.events ENABLE ROW LEVEL SECURITY;
CREATE POLICY pk_only_pkord_1 ON event_store.events FOR SELECT TO es_park_projection
	USING (stream_id = 'pkord-1');
SET ROLE es_park_projection;
SELECT event_store.park_event('pk_rls', :p1, 'visible to the projection');
SELECT regexp_replace(pg_temp.try(format('SELECT event_store.park_event(%L, %s, %L)',
										 'pk_rls', :p3, 'hidden')),
					  'position \d+', 'position N');
SELECT global_position - :start AS "offset", stream_id, error
  FROM event_store.read_parked('pk_rls');
RESET ROLE;
DROP POLICY pk_only_pkord_1 ON event_store.events;
ALTER TABLE event_store.events DISABLE ROW LEVEL SECURITY;
SELECT global_position - :start AS "offset", stream_id, error
  FROM event_store.read_parked('pk_rls');
DELETE FROM event_store.parked_events WHERE subscriber = 'pk_rls';

DELETE FROM event_store.checkpoints WHERE subscriber IN ('pk_batch', 'pk_priv');
DROP OWNED BY es_park_nobody, es_park_reader, es_park_projection;
DROP ROLE es_park_nobody, es_park_reader, es_park_projection;
SELECT count(*) AS parked_left FROM event_store.parked_events;
