-- read then append, floor: read the last version, insert the next one unchecked.
\set s random(1, 8)
SELECT COALESCE(max(version), 0) AS v FROM bench.floor_events WHERE stream_id = 'rta-' || :run || '-' || :s || '-' || :client_id \gset
INSERT INTO bench.floor_events (stream_id, version, event_id, event_type, data)
VALUES ('rta-' || :run || '-' || :s || '-' || :client_id, :v + 1, gen_random_uuid(), 'Bench', '{"customer": {"id": 12345, "name": "Jane Doe", "email": "jane@example.com"}, "items": [{"sku": "A-100", "qty": 2, "price": 19.99}, {"sku": "B-200", "qty": 1, "price": 5.49}], "total": 45.47, "currency": "EUR"}');
