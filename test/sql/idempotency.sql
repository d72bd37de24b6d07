-- idempotency: a retry with the same event ids succeeds without writing.
\i test/sql/helpers.inc

-- Exact expectation: the retry returns what the first call returned.
SELECT event_store.append_event('id-1', 0, 'Created', '{}', NULL, 'c0000000-0000-4000-8000-000000000001');
SELECT event_store.append_event('id-1', 1, 'Changed', '{"n": 1}', NULL, 'c0000000-0000-4000-8000-000000000002');
SELECT event_store.append_event('id-1', 1, 'Changed', '{"n": 1}', NULL, 'c0000000-0000-4000-8000-000000000002');
SELECT event_store.append_event('id-1', 0, 'Created', '{}', NULL, 'c0000000-0000-4000-8000-000000000001');
SELECT count(*) AS events FROM event_store.events WHERE stream_id = 'id-1';

-- ... but not when the expectation puts the ids elsewhere.
SELECT pg_temp.try($$SELECT event_store.append_event('id-1', 2, 'Changed', '{"n": 1}', NULL, 'c0000000-0000-4000-8000-000000000002')$$);
SELECT pg_temp.try($$SELECT event_store.append_event('id-1', 0, 'Changed', '{"n": 1}', NULL, 'c0000000-0000-4000-8000-000000000002')$$);

-- -2 (any) and -1: a retry succeeds wherever in the stream the ids sit, even
-- after other appends moved the stream on.
SELECT event_store.append_event('id-1', -2, 'Changed', '{}');
SELECT event_store.append_event('id-1', -2, 'Changed', '{"n": 1}', NULL, 'c0000000-0000-4000-8000-000000000002');
SELECT event_store.append_event('id-1', -1, 'Changed', '{"n": 1}', NULL, 'c0000000-0000-4000-8000-000000000002');
SELECT event_store.stream_version('id-1');

-- Batches: the whole batch repeated returns the last version of the first call.
SELECT event_store.append_events('id-2', 0, '[
	{"type": "A", "data": 1, "id": "c0000000-0000-4000-8000-000000000011"},
	{"type": "B", "data": 2, "id": "c0000000-0000-4000-8000-000000000012"},
	{"type": "C", "data": 3, "id": "c0000000-0000-4000-8000-000000000013"}]');
SELECT event_store.append_event('id-2', 3, 'D', '4');
SELECT event_store.append_events('id-2', 0, '[
	{"type": "A", "data": 1, "id": "c0000000-0000-4000-8000-000000000011"},
	{"type": "B", "data": 2, "id": "c0000000-0000-4000-8000-000000000012"},
	{"type": "C", "data": 3, "id": "c0000000-0000-4000-8000-000000000013"}]');
SELECT event_store.append_events('id-2', -2, '[
	{"type": "B", "data": 2, "id": "c0000000-0000-4000-8000-000000000012"},
	{"type": "C", "data": 3, "id": "c0000000-0000-4000-8000-000000000013"}]');
SELECT count(*) AS events FROM event_store.events WHERE stream_id = 'id-2';

-- Only some ids stored, ids out of order, or stored ids plus an event with
-- no id: a conflict, and nothing written.
SELECT pg_temp.try($$SELECT event_store.append_events('id-2', -2, '[
	{"type": "C", "data": 3, "id": "c0000000-0000-4000-8000-000000000013"},
	{"type": "E", "data": 5, "id": "c0000000-0000-4000-8000-000000000014"}]')$$);
SELECT pg_temp.try($$SELECT event_store.append_events('id-2', -2, '[
	{"type": "B", "data": 2, "id": "c0000000-0000-4000-8000-000000000012"},
	{"type": "A", "data": 1, "id": "c0000000-0000-4000-8000-000000000011"}]')$$);
SELECT pg_temp.try($$SELECT event_store.append_events('id-2', -2, '[
	{"type": "A", "data": 1, "id": "c0000000-0000-4000-8000-000000000011"},
	{"type": "X", "data": 9}]')$$);
SELECT pg_temp.try($$SELECT event_store.append_events('id-2', -2, '[
	{"type": "A", "data": 1, "id": "c0000000-0000-4000-8000-000000000011"},
	{"type": "C", "data": 3, "id": "c0000000-0000-4000-8000-000000000013"}]')$$);
SELECT count(*) AS events FROM event_store.events WHERE stream_id = 'id-2';

-- An id that belongs to another stream is a unique violation naming the id.
SELECT pg_temp.try($$SELECT event_store.append_event('id-other', -2, 'A', '1', NULL, 'c0000000-0000-4000-8000-000000000011')$$);
SELECT pg_temp.try($$SELECT event_store.append_events('id-other', 0, '[
	{"type": "A", "data": 1, "id": "c0000000-0000-4000-8000-0000000000ff"},
	{"type": "A", "data": 1, "id": "c0000000-0000-4000-8000-000000000012"}]')$$);
SELECT count(*) AS other_events FROM event_store.events WHERE stream_id = 'id-other';

-- The same id twice in one call.
SELECT pg_temp.try($$SELECT event_store.append_events('id-3', 0, '[
	{"type": "A", "data": 1, "id": "c0000000-0000-4000-8000-000000000021"},
	{"type": "B", "data": 2},
	{"type": "A", "data": 1, "id": "C0000000-0000-4000-8000-000000000021"}]')$$);

-- Ids are accepted in the forms the uuid type accepts: canonical, upper
-- case, without hyphens, with a hyphen after any group of four, in braces.
SELECT event_store.append_events('id-3', 0, '[
	{"type": "A", "data": 1, "id": "C0000000-0000-4000-8000-0000000000AA"},
	{"type": "B", "data": 2, "id": "c00000000000400080000000000000bb"},
	{"type": "C", "data": 3, "id": "c000-0000-0000-4000-8000-0000-0000-00cc"},
	{"type": "D", "data": 4, "id": "{c0000000-0000-4000-8000-0000000000dd}"}]');
SELECT version, event_id FROM event_store.read_stream('id-3');

-- Payloads are not compared: a retry is recognised by its event ids alone
-- (as KurrentDB does).  A call with a stored id and another payload returns
-- the first call's version and stores nothing; the first payload stays.
SELECT event_store.append_event('id-pay', 0, 'A', '{"v": 1}', NULL, 'c0000000-0000-4000-8000-000000000031');
SELECT event_store.append_event('id-pay', 0, 'B', '{"v": 2}', '{"m": 1}', 'c0000000-0000-4000-8000-000000000031');
SELECT version, event_type, data, metadata FROM event_store.read_stream('id-pay');

-- A lost acknowledgement: the command committed, the client re-read (the
-- stream now holds its own event at version 2), decided again with the same
-- event id and appends expecting 2.  That is VE002, not VE001, and its
-- DETAIL has a fixed form naming the id and the version it is stored at, so
-- the client reports "already done" instead of retrying.
DO $$
DECLARE
	d text;
	m text[];
BEGIN
	PERFORM event_store.append_event('id-1', 2, 'Changed', '{"n": 1}', NULL,
									 'c0000000-0000-4000-8000-000000000002');
	RAISE EXCEPTION 'the repeated decision was not refused';
EXCEPTION WHEN SQLSTATE 'VE002' THEN
	GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
	m := regexp_match(d, '^Event id ([0-9a-f-]{36}) is stored at version (\d+)\.$');
	RAISE NOTICE 'id=% version=%', m[1], m[2];
END $$;
