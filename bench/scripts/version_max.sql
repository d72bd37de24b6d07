-- stream version of one of 1,000 streams, max(version) over a bare events
-- table with an index on (stream_id, version) (the same streams, in the floor
-- table).
\set s random(1, 1000)
SELECT max(version) FROM bench.floor_events WHERE stream_id = 'ver-' || :s;
