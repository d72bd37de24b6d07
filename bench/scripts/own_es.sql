-- own streams, event_store: append expecting the version the last call returned.
SELECT event_store.append_event('own-' || :run || '-' || :client_id, :v, 'Bench', '{"customer": {"id": 12345, "name": "Jane Doe", "email": "jane@example.com"}, "items": [{"sku": "A-100", "qty": 2, "price": 19.99}, {"sku": "B-200", "qty": 1, "price": 5.49}], "total": 45.47, "currency": "EUR"}') AS v \gset
