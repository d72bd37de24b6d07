-- large_events: a 100 MB event, a deeply nested one and a large batch are
-- stored and read back whole, and the server goes on appending.
\i test/sql/helpers.inc

-- About 108 MB of random uuids as text (stored compressed, to about half).
CREATE TEMP TABLE big AS
SELECT jsonb_build_object('blob', string_agg(gen_random_uuid()::text, '')) AS data
  FROM generate_series(1, 3000000);
SELECT octet_length(data->>'blob') > 100 * 1024 * 1024 AS over_100_mb FROM big;

SELECT event_store.append_event('large-1', 0, 'Big', data) FROM big;
SELECT octet_length(e.data->>'blob') > 100 * 1024 * 1024 AS stored_over_100_mb,
	   e.data = b.data AS same
  FROM event_store.events e, big b WHERE e.stream_id = 'large-1';
SELECT r.version, r.data = b.data AS same_through_read_stream
  FROM event_store.read_stream('large-1') r, big b;
SELECT count(*) AS through_read_all FROM event_store.read_all(0, NULL) r, big b
 WHERE r.stream_id = 'large-1' AND r.data = b.data;

-- The same data in a batch, with metadata.
SELECT event_store.append_events('large-1', 1,
	jsonb_build_array(jsonb_build_object('type', 'BigToo', 'data', data,
										 'metadata', jsonb_build_object('n', 1)))) FROM big;

-- Nesting 1,000 deep, as data and as metadata.
SELECT event_store.append_event('large-2', 0, 'Deep',
	(repeat('[', 1000) || repeat(']', 1000))::jsonb,
	(repeat('{"a": ', 1000) || '1' || repeat('}', 1000))::jsonb);
SELECT length(data::text) AS data_chars, length(metadata::text) AS metadata_chars
  FROM event_store.read_stream('large-2');

-- Nesting beyond what the server's stack allows fails when the JSON is
-- parsed, with a clear error, before any append starts.
SELECT pg_temp.try($$SELECT event_store.append_event('large-3', 0, 'TooDeep', (repeat('[', 10000000) || repeat(']', 10000000))::jsonb)$$);
SELECT event_store.stream_version('large-3');

-- The server is up and appends go on.
SELECT event_store.append_event('large-1', 2, 'Small', '{}');
SELECT version, event_type FROM event_store.read_stream('large-1', 3);
