-- hot streams, event_store: all clients append to the same 4 streams with NULL.
\set s random(1, 4)
SELECT event_store.append_event('hot-' || :run || '-' || :s, -2, 'Bench', '{"customer": {"id": 12345, "name": "Jane Doe", "email": "jane@example.com"}, "items": [{"sku": "A-100", "qty": 2, "price": 19.99}, {"sku": "B-200", "qty": 1, "price": 5.49}], "total": 45.47, "currency": "EUR"}');
