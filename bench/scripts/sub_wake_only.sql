-- a subscriber that only waits (bench/subscriptions.sh): wait for an event
-- past its checkpoint (5 s at most), then move the checkpoint to the log's
-- head without reading the events: what the waiting costs without the
-- reading.  :last starts at the log's head (-D last=...).
SELECT event_store.wait_for_event(:last, '5 seconds');
SELECT coalesce(max(global_position), :last) AS last FROM event_store.events \gset
