-- table_changes: appends refuse, with a clear error, tables whose shape or
-- indexes they cannot write correctly, and recover when the change is undone.
\i test/sql/helpers.inc

SELECT event_store.append_event('tc-1', 0, 'Created', '{}');

-- An extra column on either table.
BEGIN;
ALTER TABLE event_store.streams ADD COLUMN note text;
SELECT pg_temp.try($$SELECT event_store.append_event('tc-2', 0, 'Created', '{}')$$);
ROLLBACK;
BEGIN;
ALTER TABLE event_store.events ADD COLUMN note text;
SELECT pg_temp.try($$SELECT event_store.append_event('tc-1', 1, 'Changed', '{}')$$);
ROLLBACK;

-- A dropped column.
BEGIN;
ALTER TABLE event_store.streams ADD COLUMN note text;
ALTER TABLE event_store.streams DROP COLUMN note;
SELECT pg_temp.try($$SELECT event_store.append_event('tc-2', 0, 'Created', '{}')$$);
ROLLBACK;

-- A deferrable constraint: appends that pass it work; one whose check would
-- have to be deferred is refused rather than let through unchecked.
BEGIN;
ALTER TABLE event_store.events ADD CONSTRAINT events_one_dup
	EXCLUDE USING btree (event_type WITH =) WHERE (event_type = 'Dup')
	DEFERRABLE INITIALLY DEFERRED;
SELECT pg_temp.try($$SELECT event_store.append_event('tc-1', 1, 'Dup', '{}')$$);
SELECT pg_temp.try($$SELECT event_store.append_event('tc-1', 2, 'Dup', '{}')$$);
ROLLBACK;

-- A CHECK constraint added by the user is enforced, and a failed check
-- writes nothing.
BEGIN;
ALTER TABLE event_store.events ADD CONSTRAINT events_data_is_object
	CHECK (jsonb_typeof(data) = 'object') NOT VALID;
-- (Only the first line: the DETAIL shows the row, with its generated values.)
SELECT split_part(pg_temp.try($$SELECT event_store.append_event('tc-1', 1, 'Scalar', '1')$$), E'\n', 1);
SELECT split_part(pg_temp.try($$SELECT event_store.append_events('tc-1', 1, '[{"type": "A", "data": {}}, {"type": "B", "data": 2}]')$$), E'\n', 1);
SELECT event_store.stream_version('tc-1');
SELECT event_store.append_event('tc-1', 1, 'Object', '{}');
ROLLBACK;

-- With every constraint and default of the events table dropped but the
-- indexes the appends need, appends still work.
BEGIN;
ALTER TABLE event_store.events
	DROP CONSTRAINT events_version_check,
	ALTER COLUMN global_position DROP DEFAULT,
	ALTER COLUMN created_at DROP DEFAULT,
	ALTER COLUMN stream_id DROP NOT NULL,
	ALTER COLUMN version DROP NOT NULL,
	ALTER COLUMN event_type DROP NOT NULL,
	ALTER COLUMN data DROP NOT NULL,
	ALTER COLUMN created_at DROP NOT NULL;
SELECT event_store.append_event('tc-bare', 0, 'Created', '{}');
ROLLBACK;

-- A partition's constraint would not be checked: a partition is refused.
BEGIN;
CREATE TABLE events_parent (LIKE event_store.events) PARTITION BY LIST (stream_id);
ALTER TABLE events_parent ATTACH PARTITION event_store.events DEFAULT;
SELECT pg_temp.try($$SELECT event_store.append_event('tc-1', 1, 'Changed', '{}')$$);
ROLLBACK;

-- A user's own index is maintained by appends.
CREATE INDEX events_type_test_idx ON event_store.events (event_type);
SELECT event_store.append_event('tc-1', 1, 'IndexedType', '{}');
SET enable_seqscan = off;
SELECT stream_id, version FROM event_store.events WHERE event_type = 'IndexedType';
RESET enable_seqscan;
DROP INDEX event_store.events_type_test_idx;

-- After every undone change, appends work again.
SELECT event_store.append_event('tc-2', 0, 'Created', '{}');
SELECT event_store.append_event('tc-1', 2, 'Changed', '{}');
SELECT stream_id, version FROM event_store.streams WHERE stream_id LIKE 'tc-%' ORDER BY 1;

-- The row type the read functions return must keep the events table's
-- layout: they return stored tuples as they are.  A changed type gives an
-- error, never a crash.
BEGIN;
ALTER TYPE event_store.event ALTER ATTRIBUTE version TYPE text;
SELECT pg_temp.try($$SELECT * FROM event_store.read_all(0, 10)$$);
SELECT pg_temp.try($$SELECT * FROM event_store.read_category('tc', 0, 10)$$);
SELECT pg_temp.try($$SELECT count(*) FROM event_store.read_stream('tc-1')$$);
ROLLBACK;
BEGIN;
ALTER TYPE event_store.event DROP ATTRIBUTE created_at;
SELECT pg_temp.try($$SELECT * FROM event_store.read_all(0, 10)$$);
ROLLBACK;
BEGIN;
ALTER TYPE event_store.event ADD ATTRIBUTE extra integer;
SELECT pg_temp.try($$SELECT * FROM event_store.read_all(0, 10)$$);
ROLLBACK;
SELECT count(*) > 0 AS readable_again FROM event_store.read_all(0, 10);

-- The reads trust the order of the indexes they scan, and appends trust the
-- uniqueness of theirs, so an index is used only if it has the expected
-- shape, whatever its name: one replaced by another shape under the same
-- name gives 55000, never a crash or a wrong order.
BEGIN;
DROP INDEX event_store.events_category_idx;
CREATE INDEX events_category_idx ON event_store.events
	(lower(stream_id), global_position);
SELECT pg_temp.try($$SELECT * FROM event_store.read_category('tc', 0, 10)$$);
ROLLBACK;
BEGIN;
DROP INDEX event_store.events_category_idx;
CREATE INDEX events_category_idx ON event_store.events
	(event_store.category(stream_id), global_position DESC);
SELECT pg_temp.try($$SELECT * FROM event_store.read_category('tc', 0, 10)$$);
ROLLBACK;
BEGIN;
ALTER TABLE event_store.events DROP CONSTRAINT events_pkey,
	ADD CONSTRAINT events_pkey PRIMARY KEY (event_id);
SELECT pg_temp.try($$SELECT * FROM event_store.read_all(0, 10)$$);
ROLLBACK;
BEGIN;
ALTER TABLE event_store.streams DROP CONSTRAINT streams_pkey,
	ADD CONSTRAINT streams_pkey PRIMARY KEY (stream_id, version);
SELECT pg_temp.try($$SELECT event_store.stream_version('tc-1')$$);
SELECT pg_temp.try($$SELECT event_store.append_event('tc-1', 2, 'X', '{}')$$);
ROLLBACK;
BEGIN;
ALTER TABLE event_store.events DROP CONSTRAINT events_event_id_key;
SELECT pg_temp.try($$SELECT event_store.append_event('tc-1', 2, 'X', '{}')$$);
ROLLBACK;
-- The scans compare text with the C collation, so an index whose text key
-- has another collation (sorted in another order) is not used.
BEGIN;
DROP INDEX event_store.events_category_idx;
CREATE INDEX events_category_idx ON event_store.events
	((event_store.category(stream_id)) COLLATE "POSIX", global_position);
SELECT pg_temp.try($$SELECT * FROM event_store.read_category('tc', 0, 10)$$);
ROLLBACK;
BEGIN;
ALTER TABLE event_store.streams DROP CONSTRAINT streams_pkey;
CREATE UNIQUE INDEX streams_posix_key ON event_store.streams (stream_id COLLATE "POSIX");
SELECT pg_temp.try($$SELECT event_store.stream_version('tc-1')$$);
ROLLBACK;
-- A renamed category function leaves appends and other reads working; only
-- read_category, which needs the index on it, refuses.  (The table change
-- makes the session look its catalog up again.)
BEGIN;
ALTER FUNCTION event_store.category(text) RENAME TO category_renamed;
ALTER TABLE event_store.events SET (fillfactor = 100);
SELECT event_store.append_event('tc-renamed', 0, 'X', '{}');
SELECT event_store.stream_version('tc-renamed');
SELECT pg_temp.try($$SELECT * FROM event_store.read_category('tc', 0, 10)$$);
ROLLBACK;
-- An index rebuilt concurrently gets a new OID; the next calls find it.
REINDEX INDEX CONCURRENTLY event_store.events_event_id_key;
REINDEX INDEX CONCURRENTLY event_store.events_category_idx;
REINDEX INDEX CONCURRENTLY event_store.events_pkey;
REINDEX INDEX CONCURRENTLY event_store.streams_pkey;
SELECT event_store.append_event('tc-1', 3, 'AfterReindex', '{}');
SELECT event_store.stream_version('tc-1');
SELECT count(*) > 0 AS reads_after_reindex FROM event_store.read_category('tc', 0, 10);
-- The right shape under another name is used.
BEGIN;
ALTER INDEX event_store.events_category_idx RENAME TO my_category_idx;
SELECT count(*) AS read_through_renamed FROM event_store.read_category('tc', 0, 10);
ROLLBACK;
SELECT count(*) > 0 AS readable_again FROM event_store.read_category('tc', 0, 10);
