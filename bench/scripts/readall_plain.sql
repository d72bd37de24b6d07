-- a page of 1,000 events of the global log, plain SELECT.
\set p random(0, :maxp)
SELECT * FROM event_store.events WHERE global_position > :p ORDER BY global_position LIMIT 1000;
