-- read then append, event_store: read the version, append expecting it.
\set s random(1, 8)
SELECT event_store.stream_version('rta-' || :run || '-' || :s) AS v \gset
INSERT INTO bench.rta_outcomes SELECT 'es', bench.try_es('rta-' || :run || '-' || :s, :v, '{"customer": {"id": 12345, "name": "Jane Doe", "email": "jane@example.com"}, "items": [{"sku": "A-100", "qty": 2, "price": 19.99}, {"sku": "B-200", "qty": 1, "price": 5.49}], "total": 45.47, "currency": "EUR"}');
