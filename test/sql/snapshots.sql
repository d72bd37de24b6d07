-- snapshots: save_snapshot and read_snapshot.
\i test/sql/helpers.inc

SELECT event_store.append_events('acct-1', 0, '[
  {"type": "Opened", "data": {"balance": 0}},
  {"type": "Deposited", "data": {"amount": 50}},
  {"type": "Deposited", "data": {"amount": 20}}]');

-- No snapshot yet: no row.
SELECT count(*) AS snapshots FROM event_store.read_snapshot('acct-1');

-- Save at versions the stream has; read the latest, or the latest at or
-- below a version.
SELECT event_store.save_snapshot('acct-1', 2, '{"balance": 50}');
SELECT event_store.save_snapshot('acct-1', 3, '{"balance": 70}');
SELECT version, state FROM event_store.read_snapshot('acct-1');
SELECT version, state FROM event_store.read_snapshot('acct-1', 2);
SELECT count(*) AS below_first FROM event_store.read_snapshot('acct-1', 1);

-- Loading: the latest snapshot, then the events after it.
SELECT event_store.append_event('acct-1', 3, 'Deposited', '{"amount": 5}');
SELECT s.version AS snapshot_version, s.state,
	   array_agg(e.version ORDER BY e.version) AS events_after
  FROM event_store.read_snapshot('acct-1') s
  CROSS JOIN LATERAL event_store.read_stream('acct-1', s.version + 1) e
 GROUP BY 1, 2;

-- Saving the same version again replaces its state (a snapshot is derived
-- data, rebuilt when the fold changes).
SELECT event_store.save_snapshot('acct-1', 3, '{"balance": 70, "currency": "EUR"}');
SELECT version, state FROM event_store.read_snapshot('acct-1', 3);
SELECT count(*) AS rows_for_version_3 FROM event_store.snapshots
 WHERE stream_id = 'acct-1' AND version = 3;

-- A snapshot never claims a version the stream does not have.
SELECT pg_temp.try($$SELECT event_store.save_snapshot('acct-1', 5, '{}')$$);
SELECT pg_temp.try($$SELECT event_store.save_snapshot('nobody-1', 1, '{}')$$);
SELECT pg_temp.try($$SELECT event_store.save_snapshot('acct-1', 0, '{}')$$);
SELECT pg_temp.try($$SELECT event_store.save_snapshot('acct-1', NULL, '{}')$$);
SELECT pg_temp.try($$SELECT event_store.save_snapshot(NULL, 1, '{}')$$);
SELECT pg_temp.try($$SELECT event_store.save_snapshot('acct-1', 1, NULL)$$);
SELECT count(*) AS snapshots_of_acct_1 FROM event_store.snapshots WHERE stream_id = 'acct-1';

-- Within the transaction that appended a version, a snapshot of it may be
-- saved; a rollback takes both away.  (Another session's save waits for
-- that transaction: test/specs/snapshot_waits_for_append.spec.)
BEGIN;
SELECT event_store.append_event('acct-1', 4, 'Deposited', '{"amount": 1}');
SELECT event_store.save_snapshot('acct-1', 5, '{"balance": 76}');
ROLLBACK;
SELECT count(*) AS snapshot_of_rolled_back_version
  FROM event_store.read_snapshot('acct-1', 5) WHERE version = 5;

-- save_snapshot holds the stream's lock until its transaction ends, as an
-- append does.
BEGIN;
SELECT event_store.save_snapshot('acct-1', 4, '{"balance": 75}');
SELECT count(*) AS stream_locks_held FROM pg_locks
 WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted;
COMMIT;

-- PUBLIC may not call the functions; a role with the README's grants may.
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute,
	   p.prosecdef AS security_definer
  FROM pg_proc p
 WHERE p.pronamespace = 'event_store'::regnamespace
   AND p.proname IN ('save_snapshot', 'read_snapshot')
 ORDER BY 1;
CREATE ROLE es_snap_writer;
GRANT USAGE ON SCHEMA event_store TO es_snap_writer;
GRANT EXECUTE ON FUNCTION event_store.save_snapshot(text, bigint, jsonb),
	event_store.read_snapshot(text, bigint) TO es_snap_writer;
GRANT SELECT ON event_store.snapshots, event_store.events TO es_snap_writer;
SET ROLE es_snap_writer;
-- Saving needs EXECUTE on save_snapshot only: it writes with the
-- extension's rights, as appends do ...
SELECT event_store.save_snapshot('acct-1', 4, '{"balance": 75}');
SELECT version, state FROM event_store.read_snapshot('acct-1');
-- ... and still checks the version.
SELECT pg_temp.try($$SELECT event_store.save_snapshot('acct-1', 1000000, '{}')$$);
-- The table itself is closed to the writer, so it cannot store a snapshot
-- past the check; nor delete one.
SELECT pg_temp.try($$INSERT INTO event_store.snapshots VALUES ('acct-1', 1000000, '{"forged": true}')$$);
SELECT pg_temp.try($$UPDATE event_store.snapshots SET version = 999 WHERE stream_id = 'acct-1'$$);
SELECT pg_temp.try($$DELETE FROM event_store.snapshots$$);
RESET ROLE;
SELECT max(version) AS highest_snapshot, event_store.stream_version('acct-1') AS head
  FROM event_store.snapshots WHERE stream_id = 'acct-1';

-- Snapshots are not history: the append-only guard does not cover the
-- table, and a role with DELETE on it (here the owner) may prune them.
DELETE FROM event_store.snapshots WHERE stream_id = 'acct-1' AND version = 2;
SELECT array_agg(version ORDER BY version) AS versions_left
  FROM event_store.snapshots WHERE stream_id = 'acct-1';
REVOKE ALL ON event_store.snapshots, event_store.events FROM es_snap_writer;
REVOKE ALL ON FUNCTION event_store.save_snapshot(text, bigint, jsonb),
	event_store.read_snapshot(text, bigint) FROM es_snap_writer;
REVOKE ALL ON SCHEMA event_store FROM es_snap_writer;
DROP ROLE es_snap_writer;
