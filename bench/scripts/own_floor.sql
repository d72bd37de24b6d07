-- own streams, floor: a bare INSERT of the next version of the client's stream.
\set v :v + 1
INSERT INTO bench.floor_events (stream_id, version, event_id, event_type, data)
VALUES ('own-' || :run || '-' || :client_id, :v, gen_random_uuid(), 'Bench', '{"customer": {"id": 12345, "name": "Jane Doe", "email": "jane@example.com"}, "items": [{"sku": "A-100", "qty": 2, "price": 19.99}, {"sku": "B-200", "qty": 1, "price": 5.49}], "total": 45.47, "currency": "EUR"}');
