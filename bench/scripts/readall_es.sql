-- a page of 1,000 events of the global log, event_store.
\set p random(0, :maxp)
SELECT * FROM event_store.read_all(:p, 1000);
