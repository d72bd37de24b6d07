-- read then append, hand-written: read the version, append expecting it.
\set s random(1, 8)
SELECT bench.hw_version('rta-' || :run || '-' || :s) AS v \gset
INSERT INTO bench.rta_outcomes SELECT 'hw', bench.try_hw('rta-' || :run || '-' || :s, :v, '{"customer": {"id": 12345, "name": "Jane Doe", "email": "jane@example.com"}, "items": [{"sku": "A-100", "qty": 2, "price": 19.99}, {"sku": "B-200", "qty": 1, "price": 5.49}], "total": 45.47, "currency": "EUR"}');
