-- demo/demo.sql: the story of Alice and Bob, against a real server.
--
-- Run it with scripts/demo.sh, which starts a throwaway cluster first.

\set VERBOSITY default
\pset footer off
\echo '== event_store demo: optimistic concurrency in PostgreSQL =='
CREATE EXTENSION IF NOT EXISTS event_store;

\echo
\echo '-- The product prod-123 is created and edited: versions 1 to 5.'
SELECT event_store.append_event('prod-123', 0, 'ProductCreated',
	'{"name": "Espresso machine", "price": 249, "stock": 10}') AS version;
SELECT event_store.append_events('prod-123', 1, '[
	{"type": "PriceChanged", "data": {"price": 239}},
	{"type": "StockChanged", "data": {"stock": 8}},
	{"type": "DescriptionChanged", "data": {"text": "15 bar pump"}},
	{"type": "StockChanged", "data": {"stock": 9}}
]') AS version;

\echo
\echo '-- Alice and Bob both open the product page. Both see version 5.'
SELECT event_store.stream_version('prod-123') AS "version Alice and Bob see";

\echo
\echo '-- Bob records a stock count, expecting version 5. It lands as version 6.'
SELECT event_store.append_event('prod-123', 5, 'StockChanged',
	'{"stock": 4}', '{"user": "bob"}') AS version;

\echo
\echo '-- Alice, still looking at version 5, changes the price.'
\echo '-- Her append expects version 5 and is rejected: nothing is written.'
SELECT event_store.append_event('prod-123', 5, 'PriceChanged',
	'{"price": 199}', '{"user": "alice"}') AS version;
\echo 'SQLSTATE of the rejection:' :LAST_ERROR_SQLSTATE

\echo
\echo '-- Alice re-reads the stream and sees Bob''s change at version 6.'
SELECT version, event_type, data, metadata
  FROM event_store.read_stream('prod-123', 6);

\echo
\echo '-- She decides the price change still stands, and appends expecting 6.'
SELECT event_store.append_event('prod-123', 6, 'PriceChanged',
	'{"price": 199}', '{"user": "alice"}') AS version;

\echo
\echo '-- Her client lost the acknowledgement and retries with the same event id:'
\echo '-- the retry is recognised and nothing is written twice.'
SELECT event_store.append_event('prod-123', 7, 'Discontinued', '{}', NULL,
	'0192d1f0-0000-7000-8000-00000000c0de') AS version;
SELECT event_store.append_event('prod-123', 7, 'Discontinued', '{}', NULL,
	'0192d1f0-0000-7000-8000-00000000c0de') AS "version (retry)";

\echo
\echo '-- The whole stream, replayed:'
SELECT version, event_type, data, metadata
  FROM event_store.read_stream('prod-123');

\echo
\echo '-- And backward, the last two events:'
SELECT version, event_type, data
  FROM event_store.read_stream('prod-123', NULL, 2, backward => true);

\echo
\echo '-- Stored history cannot be rewritten, even by a superuser:'
UPDATE event_store.events SET data = '{"price": 1}' WHERE stream_id = 'prod-123';
\echo 'SQLSTATE:' :LAST_ERROR_SQLSTATE
