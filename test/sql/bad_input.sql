-- bad_input: every bad argument gets a specific SQLSTATE and writes nothing.
\i test/sql/helpers.inc

SELECT event_store.append_event('bi-1', 0, 'Created', '{}');
SELECT count(*) AS events_before FROM event_store.events \gset
SELECT count(*) AS heads_before FROM event_store.streams \gset

-- append_event
SELECT t.label, pg_temp.try(t.sql)
  FROM (VALUES
	('null stream id',      $$SELECT event_store.append_event(NULL, -2, 'T', '{}')$$),
	('empty stream id',     $$SELECT event_store.append_event('', -2, 'T', '{}')$$),
	('stream id 1001 bytes', $$SELECT event_store.append_event(repeat('s', 1001), -2, 'T', '{}')$$),
	('stream id 1001 bytes, multibyte', $$SELECT event_store.append_event(repeat('é', 500) || 's', -2, 'T', '{}')$$),
	('expected version -3', $$SELECT event_store.append_event('bi-1', -3, 'T', '{}')$$),
	('expected version null', $$SELECT event_store.append_event('bi-1', NULL, 'T', '{}')$$),
	('expected version min', $$SELECT event_store.append_event('bi-1', -9223372036854775808, 'T', '{}')$$),
	('null type',           $$SELECT event_store.append_event('bi-1', -2, NULL, '{}')$$),
	('empty type',          $$SELECT event_store.append_event('bi-1', -2, '', '{}')$$),
	('type 256 bytes',      $$SELECT event_store.append_event('bi-1', -2, repeat('t', 256), '{}')$$),
	('null data',           $$SELECT event_store.append_event('bi-1', -2, 'T', NULL)$$),
	('metadata array',      $$SELECT event_store.append_event('bi-1', -2, 'T', '{}', '[1]')$$),
	('metadata string',     $$SELECT event_store.append_event('bi-1', -2, 'T', '{}', '"x"')$$),
	('metadata json null',  $$SELECT event_store.append_event('bi-1', -2, 'T', '{}', 'null')$$),
	('all null',            $$SELECT event_store.append_event(NULL, NULL, NULL, NULL, NULL, NULL)$$)
  ) AS t(label, sql);

-- append_events
SELECT t.label, pg_temp.try(t.sql)
  FROM (VALUES
	('null stream id',      $$SELECT event_store.append_events(NULL, -2, '[]')$$),
	('empty stream id',     $$SELECT event_store.append_events('', -2, '[]')$$),
	('expected version -3', $$SELECT event_store.append_events('bi-1', -3, '[]')$$),
	('expected version null', $$SELECT event_store.append_events('bi-1', NULL, '[]')$$),
	('null events',         $$SELECT event_store.append_events('bi-1', -2, NULL)$$),
	('events an object',    $$SELECT event_store.append_events('bi-1', -2, '{"type": "T", "data": 1}')$$),
	('events a number',     $$SELECT event_store.append_events('bi-1', -2, '1')$$),
	('events json null',    $$SELECT event_store.append_events('bi-1', -2, 'null')$$),
	('element a string',    $$SELECT event_store.append_events('bi-1', -2, '[{"type": "T", "data": 1}, "T"]')$$),
	('element an array',    $$SELECT event_store.append_events('bi-1', -2, '[[1]]')$$),
	('no type',             $$SELECT event_store.append_events('bi-1', -2, '[{"data": 1}]')$$),
	('type a number',       $$SELECT event_store.append_events('bi-1', -2, '[{"type": 1, "data": 1}]')$$),
	('type null',           $$SELECT event_store.append_events('bi-1', -2, '[{"type": null, "data": 1}]')$$),
	('type empty',          $$SELECT event_store.append_events('bi-1', -2, '[{"type": "", "data": 1}]')$$),
	('type 256 bytes',      $$SELECT event_store.append_events('bi-1', -2, jsonb_build_array(jsonb_build_object('type', repeat('t', 256), 'data', 1)))$$),
	('no data',             $$SELECT event_store.append_events('bi-1', -2, '[{"type": "T"}]')$$),
	('metadata an array',   $$SELECT event_store.append_events('bi-1', -2, '[{"type": "T", "data": 1, "metadata": [1]}]')$$),
	('metadata a string',   $$SELECT event_store.append_events('bi-1', -2, '[{"type": "T", "data": 1, "metadata": "m"}]')$$),
	('id not a uuid',       $$SELECT event_store.append_events('bi-1', -2, '[{"type": "T", "data": 1}, {"type": "T", "data": 1, "id": "not-a-uuid"}]')$$),
	('id a number',         $$SELECT event_store.append_events('bi-1', -2, '[{"type": "T", "data": 1, "id": 7}]')$$),
	('id unclosed brace',   $$SELECT event_store.append_events('bi-1', -2, '[{"type": "T", "data": 1, "id": "{a0000000-0000-4000-8000-0000000000f1"}]')$$),
	('id 3-digit group',    $$SELECT event_store.append_events('bi-1', -2, '[{"type": "T", "data": 1, "id": "a00-00000000-4000-8000-0000000000f1"}]')$$),
	('id too long',         $$SELECT event_store.append_events('bi-1', -2, '[{"type": "T", "data": 1, "id": "a0000000-0000-4000-8000-0000000000f100"}]')$$),
	('id bad hex',          $$SELECT event_store.append_events('bi-1', -2, '[{"type": "T", "data": 1, "id": "g0000000-0000-4000-8000-000000000001"}]')$$),
	('unknown key',         $$SELECT event_store.append_events('bi-1', -2, '[{"type": "T", "data": 1, "meta": {}}]')$$),
	('bad element last',    $$SELECT event_store.append_events('bi-1', -2, '[{"type": "T", "data": 1}, {"type": "T", "data": 2}, {"type": "T"}]')$$)
  ) AS t(label, sql);

-- The read and helper functions: each call returns its first value, or its
-- SQLSTATE and message.  Reads of nothing return nothing, never an error;
-- impossible arguments get a specific SQLSTATE.
CREATE FUNCTION pg_temp.first(sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	v text;
BEGIN
	EXECUTE sql INTO v;
	RETURN COALESCE(v, 'NULL');
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT t.label, pg_temp.first(t.sql)
  FROM (VALUES
	('read_stream null id',          $$SELECT count(*) FROM event_store.read_stream(NULL)$$),
	('read_stream empty id',         $$SELECT count(*) FROM event_store.read_stream('')$$),
	('read_stream 100k-byte id',     $$SELECT count(*) FROM event_store.read_stream(repeat('s', 100000))$$),
	('read_stream injection id',     $$SELECT count(*) FROM event_store.read_stream($q$bi-1'); DELETE FROM event_store.events; --$q$)$$),
	('read_stream control chars',    $$SELECT count(*) FROM event_store.read_stream(E'bi-1\x01\x7f')$$),
	('read_stream from -1',          $$SELECT count(*) FROM event_store.read_stream('bi-1', -1)$$),
	('read_stream from max bigint',  $$SELECT count(*) FROM event_store.read_stream('bi-1', 9223372036854775807)$$),
	('read_stream from min bigint backward', $$SELECT count(*) FROM event_store.read_stream('bi-1', -9223372036854775808, NULL, true)$$),
	('read_stream max_count max',    $$SELECT count(*) FROM event_store.read_stream('bi-1', NULL, 9223372036854775807)$$),
	('read_stream max_count -1',     $$SELECT count(*) FROM event_store.read_stream('bi-1', NULL, -1)$$),
	('stream_version null',          $$SELECT event_store.stream_version(NULL)$$),
	('stream_version empty',         $$SELECT event_store.stream_version('')$$),
	('stream_version 100k bytes',    $$SELECT event_store.stream_version(repeat('s', 100000))$$),
	('read_all after -1',            $$SELECT count(*) > 0 FROM event_store.read_all(-1, 1)$$),
	('read_all after min bigint',    $$SELECT count(*) > 0 FROM event_store.read_all(-9223372036854775808, 1)$$),
	('read_all after max bigint',    $$SELECT count(*) FROM event_store.read_all(9223372036854775807)$$),
	('read_all max_count max int',   $$SELECT count(*) > 0 FROM event_store.read_all(0, 2147483647)$$),
	('read_all max_count -1',        $$SELECT count(*) FROM event_store.read_all(0, -1)$$),
	('read_all max_count min int',   $$SELECT count(*) FROM event_store.read_all(0, -2147483648)$$),
	('read_category empty',          $$SELECT count(*) FROM event_store.read_category('')$$),
	('read_category 100k bytes',     $$SELECT count(*) FROM event_store.read_category(repeat('c', 100000))$$),
	('read_category injection',      $$SELECT count(*) FROM event_store.read_category($q$bi'; DROP TABLE event_store.events; --$q$)$$),
	('read_category null',           $$SELECT count(*) FROM event_store.read_category(NULL)$$),
	('read_category member max int', $$SELECT count(*) FROM event_store.read_category('bi', 0, 10, 2147483647, 2147483647)$$),
	('read_category size max int',   $$SELECT count(*) FROM event_store.read_category('bi', 0, 10, 2147483646, 2147483647)$$),
	('category null',                $$SELECT event_store.category(NULL)$$),
	('category empty',               $$SELECT quote_literal(event_store.category(''))$$),
	('category leading dash',        $$SELECT quote_literal(event_store.category('-x'))$$),
	('category unicode',             $$SELECT event_store.category(E'\u00e9\U0001F600-1')$$),
	('group member null id',         $$SELECT event_store.consumer_group_member(NULL, 2)$$),
	('group member null size',       $$SELECT event_store.consumer_group_member('x', NULL)$$),
	('group member size -1',         $$SELECT event_store.consumer_group_member('x', -1)$$),
	('group member size max int',    $$SELECT event_store.consumer_group_member('x', 2147483647) BETWEEN 0 AND 2147483646$$),
	('save_checkpoint null',         $$SELECT event_store.save_checkpoint(NULL, 1)$$),
	('save_checkpoint null position', $$SELECT event_store.save_checkpoint('bi', NULL)$$),
	('save_checkpoint negative',     $$SELECT event_store.save_checkpoint('bi', -1)$$),
	('save_checkpoint max bigint',   $$SELECT event_store.save_checkpoint(E'bi-\u00e9\t', 9223372036854775807)$$),
	('checkpoint null',              $$SELECT event_store.checkpoint(NULL)$$),
	('checkpoint unknown',           $$SELECT event_store.checkpoint('bi-unknown')$$),
	('checkpoint unusual text',      $$SELECT event_store.checkpoint(E'bi-\u00e9\t')$$),
	('safe_position',                $$SELECT event_store.safe_position() > 0$$)
  ) AS t(label, sql);
DELETE FROM event_store.checkpoints WHERE subscriber LIKE 'bi%';

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
