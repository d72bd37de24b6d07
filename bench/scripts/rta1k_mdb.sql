-- read then append on 1,000 streams, each its own category (Message DB locks a
-- category), Message DB: read the version (the last message's 0-based
-- position, NULL for a new stream), append expecting it (-1 for a new
-- stream: NULL would skip the check).
\set s random(1, 1000)
SELECT COALESCE(message_store.stream_version('r' || :run || 'x' || :s || '-1'), -1) AS v \gset
SELECT bench.try_mdb('r' || :run || 'x' || :s || '-1', :v, '{"customer": {"id": 12345, "name": "Jane Doe", "email": "jane@example.com"}, "items": [{"sku": "A-100", "qty": 2, "price": 19.99}, {"sku": "B-200", "qty": 1, "price": 5.49}], "total": 45.47, "currency": "EUR"}');
