-- batch of 100, floor: one 100-row INSERT.
\set v :v + 100
INSERT INTO bench.floor_events (stream_id, version, event_id, event_type, data)
SELECT 'batch-' || :run || '-' || :client_id, :v - 100 + i, gen_random_uuid(), 'Bench', '{"customer": {"id": 12345, "name": "Jane Doe", "email": "jane@example.com"}, "items": [{"sku": "A-100", "qty": 2, "price": 19.99}, {"sku": "B-200", "qty": 1, "price": 5.49}], "total": 45.47, "currency": "EUR"}'
  FROM generate_series(1, 100) i;
