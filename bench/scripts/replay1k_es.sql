-- replay of a 1,000-event stream, event_store.
SELECT * FROM event_store.read_stream('replay-1k');
