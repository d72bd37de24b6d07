-- a subscriber to one event type that the writers never append
-- (bench/subscriptions.sh): wait for an event of that type past its
-- checkpoint (5 s at most), read a page of that type from the checkpoint,
-- and move the checkpoint to where the read got.  :last starts at the log's
-- head (-D last=...).
SELECT event_store.wait_for_event(:last, '5 seconds', NULL, '{NeverAppended}');
BEGIN;
SELECT * FROM event_store.read_all(:last, 1000, '{NeverAppended}');
SELECT coalesce(event_store.last_read_position(), :last) AS last \gset
END;
