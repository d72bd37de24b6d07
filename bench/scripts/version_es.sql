-- stream version of one of 1,000 streams, event_store.
\set s random(1, 1000)
SELECT event_store.stream_version('ver-' || :s);
