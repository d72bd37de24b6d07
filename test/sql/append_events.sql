-- append_events: batches are atomic, consecutive and checked once.
\i test/sql/helpers.inc

SELECT event_store.append_events('ab-1', 0, '[
	{"type": "Created", "data": {"n": 1}},
	{"type": "Changed", "data": {"n": 2}, "metadata": {"user": "alice"}},
	{"type": "Changed", "data": [1, 2, 3], "id": "b0000000-0000-4000-8000-000000000003"}
]');
SELECT version, event_type, data, metadata FROM event_store.read_stream('ab-1');
SELECT event_id FROM event_store.events WHERE stream_id = 'ab-1' AND version = 3;

-- Scalar data, JSON null data, and a JSON null metadata or id (= absent).
SELECT event_store.append_events('ab-1', 3, '[
	{"type": "Scalar", "data": 42},
	{"type": "Nothing", "data": null, "metadata": null, "id": null}
]');
SELECT version, event_type, data, metadata IS NULL AS no_metadata
  FROM event_store.read_stream('ab-1', 4);

-- Every expected-version mode applies to the batch as a whole.
SELECT pg_temp.try($$SELECT event_store.append_events('ab-1', 0, '[{"type": "X", "data": 1}]')$$);
SELECT pg_temp.try($$SELECT event_store.append_events('ab-1', 4, '[{"type": "X", "data": 1}]')$$);
SELECT pg_temp.try($$SELECT event_store.append_events('ab-none', -1, '[{"type": "X", "data": 1}]')$$);
SELECT event_store.append_events('ab-1', -1, '[{"type": "X", "data": 6}]');
SELECT event_store.append_events('ab-1', -2, '[{"type": "X", "data": 7}, {"type": "X", "data": 8}]');
SELECT event_store.append_events('ab-1', 8, '[{"type": "X", "data": 9}]');

-- An empty batch writes nothing, checks the expectation, returns the version.
SELECT event_store.append_events('ab-1', 9, '[]');
SELECT event_store.append_events('ab-1', -2, '[]');
SELECT event_store.append_events('ab-none', 0, '[]');
SELECT pg_temp.try($$SELECT event_store.append_events('ab-1', 5, '[]')$$);
SELECT pg_temp.try($$SELECT event_store.append_events('ab-none', -1, '[]')$$);
SELECT count(*) AS head_rows FROM event_store.streams WHERE stream_id = 'ab-none';

-- A failed batch writes nothing at all.
SELECT pg_temp.try($$SELECT event_store.append_events('ab-1', 3, '[{"type": "X", "data": 1}, {"type": "Y", "data": 2}]')$$);
SELECT pg_temp.try($$SELECT event_store.append_events('ab-1', 9, '[{"type": "X", "data": 1}, {"type": "", "data": 2}]')$$);
SELECT count(*) AS events, max(version) AS last FROM event_store.events WHERE stream_id = 'ab-1';
SELECT event_store.stream_version('ab-1');

-- A large batch: consecutive versions, ascending positions.
SELECT event_store.append_events('ab-big', 0,
	(SELECT jsonb_agg(jsonb_build_object('type', 'Tick', 'data', i)) FROM generate_series(1, 1000) i));
SELECT count(*) AS events, min(version), max(version),
	   bool_and(version = (data #>> '{}')::bigint) AS in_order
  FROM event_store.events WHERE stream_id = 'ab-big';
SELECT count(*) = count(DISTINCT global_position) AS distinct_positions,
	   bool_and(r.ok) AS ascending
  FROM (SELECT global_position,
			   global_position > lag(global_position, 1, 0::bigint) OVER (ORDER BY version) AS ok
		  FROM event_store.events WHERE stream_id = 'ab-big') r;

-- append_event and append_events share one version sequence per stream.
SELECT event_store.append_event('ab-big', 1000, 'Tick', '1001');
SELECT event_store.append_events('ab-big', 1001, '[{"type": "Tick", "data": 1002}]');
