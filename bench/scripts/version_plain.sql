-- stream version of one of 1,000 streams, plain index probe of the heads table.
\set s random(1, 1000)
SELECT version FROM event_store.streams WHERE stream_id = 'ver-' || :s;
