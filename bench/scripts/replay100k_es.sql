-- replay of a 100,000-event stream, event_store.
SELECT * FROM event_store.read_stream('replay-100k');
