-- a subscriber following the global log (bench/subscriptions.sh): wait for an
-- event past its checkpoint (5 s at most), read a page of up to 1,000 events
-- from the checkpoint, and move the checkpoint to where the read got.
-- :last starts at the log's head (-D last=...).
SELECT event_store.wait_for_event(:last, '5 seconds');
BEGIN;
SELECT * FROM event_store.read_all(:last, 1000);
SELECT coalesce(event_store.last_read_position(), :last) AS last \gset
END;
