-- checkpoints: save_checkpoint and checkpoint.
\i test/sql/helpers.inc

SELECT event_store.checkpoint('projector');
SELECT event_store.save_checkpoint('projector', 10);
SELECT event_store.checkpoint('projector');
-- It never moves backwards by default ...
SELECT event_store.save_checkpoint('projector', 7);
SELECT event_store.checkpoint('projector');
-- ... only when asked to.
SELECT event_store.save_checkpoint('projector', 7, true);
SELECT event_store.checkpoint('projector');
SELECT event_store.save_checkpoint('projector', 12);
SELECT subscriber, position FROM event_store.checkpoints ORDER BY subscriber;

-- A checkpoint saved in a transaction that rolls back is not saved.
BEGIN;
SELECT event_store.save_checkpoint('projector', 99);
ROLLBACK;
SELECT event_store.checkpoint('projector');

-- Bad arguments.
SELECT split_part(pg_temp.try($$SELECT event_store.save_checkpoint('projector', -1)$$), E'\n', 1);
SELECT event_store.save_checkpoint(NULL, 1) IS NULL AS null_subscriber_saves_nothing;
SELECT event_store.checkpoint(NULL) IS NULL AS null_for_null;

-- The exactly-once pattern: read a batch, update the read model and save the
-- checkpoint in one transaction.
CREATE TABLE product_count (n bigint);
INSERT INTO product_count VALUES (0);
SELECT count(event_store.append_events('cp_prod-' || i, 0, '[{"type": "Created", "data": {}}]'))
  FROM generate_series(1, 5) i;
SELECT COALESCE(min(global_position), 1) - 1 AS start FROM event_store.read_category('cp_prod') \gset
SELECT event_store.save_checkpoint('counter', :start) = :start AS saved;
BEGIN;
WITH batch AS (
	SELECT * FROM event_store.read_category('cp_prod', event_store.checkpoint('counter'), 3)
), counted AS (
	UPDATE product_count SET n = n + (SELECT count(*) FROM batch) RETURNING n
)
SELECT (SELECT n FROM counted) AS counted,
	   event_store.save_checkpoint('counter', (SELECT max(global_position) FROM batch)) - :start AS checkpoint;
COMMIT;
BEGIN;
WITH batch AS (
	SELECT * FROM event_store.read_category('cp_prod', event_store.checkpoint('counter'), 3)
), counted AS (
	UPDATE product_count SET n = n + (SELECT count(*) FROM batch) RETURNING n
)
SELECT (SELECT n FROM counted) AS counted,
	   event_store.save_checkpoint('counter', (SELECT max(global_position) FROM batch)) - :start AS checkpoint;
COMMIT;
SELECT n AS counted_once FROM product_count;
DROP TABLE product_count;

-- Checkpoints are kept by pg_dump.
SELECT 'event_store.checkpoints'::regclass = ANY (extconfig) AS dumped
  FROM pg_extension WHERE extname = 'event_store';
