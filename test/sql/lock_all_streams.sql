-- lock_all_streams: one transaction appends to more streams than the
-- cluster's lock table could hold stream locks for.  Each append holds its
-- stream's lock until the transaction ends; with the defaults
-- (max_locks_per_transaction = 64, 100 connections) about 14,000 streams in
-- one transaction exhaust the shared lock table.  lock_all_streams keeps
-- every other append out of the store instead, with one lock.
\i test/sql/helpers.inc

BEGIN;
SELECT event_store.lock_all_streams();
SELECT count(event_store.append_event('imp-' || g, 0, 'Imported',
			jsonb_build_object('g', g)))
  FROM generate_series(1, 20000) g;
SELECT count(*) AS stream_locks FROM pg_locks
 WHERE locktype = 'advisory' AND objsubid = 17747 AND pid = pg_backend_pid();
SELECT mode FROM pg_locks
 WHERE relation = 'event_store.streams'::regclass AND pid = pg_backend_pid()
 ORDER BY mode;
-- The expected-version checks still apply, and a batch still gets
-- consecutive versions.
SELECT pg_temp.try($$SELECT event_store.append_event('imp-1', 0, 'Again', '{}')$$);
SELECT event_store.append_events('imp-2', 1, '[{"type": "A", "data": 1}, {"type": "B", "data": 2}]');
COMMIT;

SELECT count(*) AS streams, min(version), max(version), sum(version) AS events
  FROM event_store.streams WHERE stream_id LIKE 'imp-%';
SELECT count(*) AS events FROM event_store.events WHERE stream_id LIKE 'imp-%';

-- Without it, every stream appended to holds a lock of its own.
BEGIN;
SELECT count(event_store.append_event('imp-' || g, 1, 'Again', '{}'))
  FROM generate_series(3, 5) g;
SELECT count(*) AS stream_locks FROM pg_locks
 WHERE locktype = 'advisory' AND objsubid = 17747 AND pid = pg_backend_pid();
ROLLBACK;

-- Not in a read-only transaction.
BEGIN READ ONLY;
SELECT pg_temp.try('SELECT event_store.lock_all_streams()');
ROLLBACK;
