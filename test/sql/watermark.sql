-- The watermark for hot standbys: committing appends publish it, it never
-- goes back, publish_watermark() publishes on demand, and publishing never
-- fails or changes a commit (a read-only switch after the append, a
-- sequence whose bounds exclude the value, the extension dropped in the
-- transaction).  The test cluster runs with wal_level logical.
\i test/sql/helpers.inc
SELECT current_setting('wal_level') IN ('replica', 'logical') AS standbys_possible;

-- An append publishes: the watermark covers it once it committed.
SELECT event_store.append_event('wm-1', 0, 'A', '{}') AS version \gset
SELECT event_store.watermark() >= (SELECT max(global_position) FROM event_store.events
									WHERE stream_id = 'wm-1') AS covers_append;

-- publish_watermark returns the watermark, at least the last position taken.
SELECT event_store.publish_watermark() >= event_store.head_position() AS published;
SELECT event_store.watermark() = event_store.publish_watermark() AS stable;

-- A transaction that appended and then turned read-only still commits.
BEGIN;
SELECT event_store.append_event('wm-ro', 0, 'A', '{}');
SET TRANSACTION READ ONLY;
COMMIT;
SELECT count(*) AS read_only_commit_kept FROM event_store.events WHERE stream_id = 'wm-ro';

-- A sequence whose maximum excludes the next value is left alone, and the
-- append commits.
SELECT event_store.watermark() AS before_max \gset
ALTER SEQUENCE event_store.watermark_seq MAXVALUE :before_max;
SELECT event_store.append_event('wm-max', 0, 'A', '{}');
SELECT count(*) AS bounded_commit_kept FROM event_store.events WHERE stream_id = 'wm-max';
SELECT event_store.watermark() = :before_max AS stayed_within_bounds;
ALTER SEQUENCE event_store.watermark_seq NO MAXVALUE;
SELECT event_store.publish_watermark() >= event_store.head_position() AS published_again;

-- It never goes back: a lower value is not stored.
SELECT event_store.watermark() AS w \gset
SELECT event_store.publish_watermark() = :w AS not_lowered;

-- Privileges: a role without SELECT on the events cannot read or publish it.
CREATE ROLE es_wm_nobody;
GRANT USAGE ON SCHEMA event_store TO es_wm_nobody;
GRANT EXECUTE ON FUNCTION event_store.watermark(), event_store.publish_watermark()
	TO es_wm_nobody;
SET ROLE es_wm_nobody;
SELECT pg_temp.try('SELECT event_store.watermark()');
SELECT pg_temp.try('SELECT event_store.publish_watermark()');
RESET ROLE;
REVOKE ALL ON SCHEMA event_store FROM es_wm_nobody;
REVOKE ALL ON FUNCTION event_store.watermark(), event_store.publish_watermark()
	FROM es_wm_nobody;
DROP ROLE es_wm_nobody;

-- In a read-only transaction publish_watermark is refused.
BEGIN READ ONLY;
SELECT pg_temp.try('SELECT event_store.publish_watermark()');
ROLLBACK;

-- The extension dropped in the transaction that appended: the commit does
-- not trip over the relations it remembered (in a database of its own).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
DROP DATABASE IF EXISTS es_watermark_drop;
RESET client_min_messages;
CREATE DATABASE es_watermark_drop;
SELECT dblink_connect('d', 'dbname=es_watermark_drop port=' || current_setting('port')
	|| ' host=' || split_part(current_setting('unix_socket_directories'), ',', 1));
SELECT dblink_exec('d', 'CREATE EXTENSION event_store');
SELECT dblink_exec('d', 'BEGIN');
SELECT * FROM dblink('d', $$SELECT event_store.append_event('a-1', -2, 'T', '{}')$$) AS t(v bigint);
SELECT dblink_exec('d', 'DROP EXTENSION event_store');
SELECT dblink_exec('d', 'COMMIT');
SELECT * FROM dblink('d', $$SELECT count(*) FROM pg_extension WHERE extname = 'event_store'$$)
	AS t(extensions bigint);
SELECT dblink_disconnect('d');
DROP DATABASE es_watermark_drop;
