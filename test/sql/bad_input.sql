-- bad_input: every bad argument gets a specific SQLSTATE and writes nothing.
\i test/sql/helpers.inc

SELECT event_store.append_event('bi-1', 0, 'Created', '{}');
SELECT count(*) AS events_before FROM event_store.events \gset
SELECT count(*) AS heads_before FROM event_store.streams \gset

-- append_event
SELECT t.label, pg_temp.try(t.sql)
  FROM (VALUES
	('null stream id',      $$SELECT event_store.append_event(NULL, NULL, 'T', '{}')$$),
	('empty stream id',     $$SELECT event_store.append_event('', NULL, 'T', '{}')$$),
	('stream id 1001 bytes', $$SELECT event_store.append_event(repeat('s', 1001), NULL, 'T', '{}')$$),
	('stream id 1001 bytes, multibyte', $$SELECT event_store.append_event(repeat('é', 500) || 's', NULL, 'T', '{}')$$),
	('expected version -2', $$SELECT event_store.append_event('bi-1', -2, 'T', '{}')$$),
	('expected version min', $$SELECT event_store.append_event('bi-1', -9223372036854775808, 'T', '{}')$$),
	('null type',           $$SELECT event_store.append_event('bi-1', NULL, NULL, '{}')$$),
	('empty type',          $$SELECT event_store.append_event('bi-1', NULL, '', '{}')$$),
	('type 256 bytes',      $$SELECT event_store.append_event('bi-1', NULL, repeat('t', 256), '{}')$$),
	('null data',           $$SELECT event_store.append_event('bi-1', NULL, 'T', NULL)$$),
	('metadata array',      $$SELECT event_store.append_event('bi-1', NULL, 'T', '{}', '[1]')$$),
	('metadata string',     $$SELECT event_store.append_event('bi-1', NULL, 'T', '{}', '"x"')$$),
	('metadata json null',  $$SELECT event_store.append_event('bi-1', NULL, 'T', '{}', 'null')$$),
	('all null',            $$SELECT event_store.append_event(NULL, NULL, NULL, NULL, NULL, NULL)$$)
  ) AS t(label, sql);

-- append_events
SELECT t.label, pg_temp.try(t.sql)
  FROM (VALUES
	('null stream id',      $$SELECT event_store.append_events(NULL, NULL, '[]')$$),
	('empty stream id',     $$SELECT event_store.append_events('', NULL, '[]')$$),
	('expected version -2', $$SELECT event_store.append_events('bi-1', -2, '[]')$$),
	('null events',         $$SELECT event_store.append_events('bi-1', NULL, NULL)$$),
	('events an object',    $$SELECT event_store.append_events('bi-1', NULL, '{"type": "T", "data": 1}')$$),
	('events a number',     $$SELECT event_store.append_events('bi-1', NULL, '1')$$),
	('events json null',    $$SELECT event_store.append_events('bi-1', NULL, 'null')$$),
	('element a string',    $$SELECT event_store.append_events('bi-1', NULL, '[{"type": "T", "data": 1}, "T"]')$$),
	('element an array',    $$SELECT event_store.append_events('bi-1', NULL, '[[1]]')$$),
	('no type',             $$SELECT event_store.append_events('bi-1', NULL, '[{"data": 1}]')$$),
	('type a number',       $$SELECT event_store.append_events('bi-1', NULL, '[{"type": 1, "data": 1}]')$$),
	('type null',           $$SELECT event_store.append_events('bi-1', NULL, '[{"type": null, "data": 1}]')$$),
	('type empty',          $$SELECT event_store.append_events('bi-1', NULL, '[{"type": "", "data": 1}]')$$),
	('type 256 bytes',      $$SELECT event_store.append_events('bi-1', NULL, jsonb_build_array(jsonb_build_object('type', repeat('t', 256), 'data', 1)))$$),
	('no data',             $$SELECT event_store.append_events('bi-1', NULL, '[{"type": "T"}]')$$),
	('metadata an array',   $$SELECT event_store.append_events('bi-1', NULL, '[{"type": "T", "data": 1, "metadata": [1]}]')$$),
	('metadata a string',   $$SELECT event_store.append_events('bi-1', NULL, '[{"type": "T", "data": 1, "metadata": "m"}]')$$),
	('id not a uuid',       $$SELECT event_store.append_events('bi-1', NULL, '[{"type": "T", "data": 1}, {"type": "T", "data": 1, "id": "not-a-uuid"}]')$$),
	('id a number',         $$SELECT event_store.append_events('bi-1', NULL, '[{"type": "T", "data": 1, "id": 7}]')$$),
	('id unclosed brace',   $$SELECT event_store.append_events('bi-1', NULL, '[{"type": "T", "data": 1, "id": "{a0000000-0000-4000-8000-0000000000f1"}]')$$),
	('id 3-digit group',    $$SELECT event_store.append_events('bi-1', NULL, '[{"type": "T", "data": 1, "id": "a00-00000000-4000-8000-0000000000f1"}]')$$),
	('id too long',         $$SELECT event_store.append_events('bi-1', NULL, '[{"type": "T", "data": 1, "id": "a0000000-0000-4000-8000-0000000000f100"}]')$$),
	('id bad hex',          $$SELECT event_store.append_events('bi-1', NULL, '[{"type": "T", "data": 1, "id": "g0000000-0000-4000-8000-000000000001"}]')$$),
	('unknown key',         $$SELECT event_store.append_events('bi-1', NULL, '[{"type": "T", "data": 1, "meta": {}}]')$$),
	('bad element last',    $$SELECT event_store.append_events('bi-1', NULL, '[{"type": "T", "data": 1}, {"type": "T", "data": 2}, {"type": "T"}]')$$)
  ) AS t(label, sql);

-- Nothing was written by any of them.
SELECT count(*) - :events_before AS new_events FROM event_store.events;
SELECT count(*) - :heads_before AS new_heads FROM event_store.streams;
SELECT event_store.stream_version('bi-1');

-- The limits themselves are accepted, and unusual text is stored verbatim.
SELECT event_store.append_event(repeat('s', 1000), 0, repeat('t', 255), '{}');
SELECT event_store.append_event(repeat('é', 500), 0, 'T', '{}');
SELECT event_store.append_event(E'bi-\u00e9\u4e2d\U0001F600\t\n', 0, E'T\u00e9', '{}');
SELECT stream_id = E'bi-\u00e9\u4e2d\U0001F600\t\n' AS verbatim, event_type
  FROM event_store.read_stream(E'bi-\u00e9\u4e2d\U0001F600\t\n');
