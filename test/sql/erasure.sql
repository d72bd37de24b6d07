-- erasure: erase_stream removes a stream's events and snapshots for good;
-- redact_event rewrites one event's data and metadata in place.  Each
-- leaves an audit row that holds no erased data, and a lifecycle event.
\i test/sql/helpers.inc

SELECT event_store.append_events('person-1', 0, '[
	{"type": "Registered", "data": {"email": "ann@example.org"}, "id": "00000000-0000-7000-8000-00000000f001"},
	{"type": "Moved", "data": {"city": "Oslo"}, "metadata": {"ip": "192.0.2.1"}, "id": "00000000-0000-7000-8000-00000000f002"}]');
SELECT event_store.append_events('person-2', 0, '[
	{"type": "Registered", "data": {"email": "bob@example.org"}, "metadata": {"ip": "192.0.2.2", "trace": "t1"}, "id": "00000000-0000-7000-8000-00000000f003"},
	{"type": "Moved", "data": {"city": "Rome"}, "id": "00000000-0000-7000-8000-00000000f004"}]');
SELECT event_store.save_snapshot('person-1', 2, '{"email": "ann@example.org"}');

-- Redaction keeps the event's position, version, type and id.
CREATE TEMP TABLE before AS
	SELECT global_position, version, event_type, event_id FROM event_store.read_stream('person-2');
SELECT event_store.redact_event('00000000-0000-7000-8000-00000000f003', 'erasure request 17',
	'{"email": null}', '{"trace": "t1"}')
	= (SELECT global_position FROM before WHERE version = 1) AS returns_position;
SELECT r.global_position = b.global_position AS same_position, r.version, r.event_type,
	   r.event_id = b.event_id AS same_id, r.data, r.metadata
  FROM event_store.read_stream('person-2') r JOIN before b USING (version) ORDER BY version;
-- The data defaults to an empty object, the metadata to none.
SELECT event_store.redact_event('00000000-0000-7000-8000-00000000f002', 'erasure request 18') > 0;
SELECT data, metadata FROM event_store.read_stream('person-1', 2);
-- read_all returns the redacted row too.
SELECT data FROM event_store.read_all(0, NULL) WHERE event_id = '00000000-0000-7000-8000-00000000f003';

SELECT pg_temp.try($$SELECT event_store.redact_event('00000000-0000-7000-8000-0000000000ff', 'x')$$);
SELECT pg_temp.try($$SELECT event_store.redact_event('00000000-0000-7000-8000-00000000f003', NULL)$$);
SELECT pg_temp.try($$SELECT event_store.redact_event('00000000-0000-7000-8000-00000000f003', '')$$);
SELECT pg_temp.try($$SELECT event_store.redact_event('00000000-0000-7000-8000-00000000f003', 'x', NULL)$$);
SELECT pg_temp.try($$SELECT event_store.redact_event('00000000-0000-7000-8000-00000000f003', 'x', '{}', '[1]')$$);
SELECT pg_temp.try($$SELECT event_store.redact_event(NULL, 'x')$$);
SELECT pg_temp.try(format('SELECT event_store.redact_event(%L, %L)',
	(SELECT event_id FROM event_store.read_stream('$lifecycle') LIMIT 1), 'x'));

-- Erasing a stream removes its events and snapshots, and it takes no more
-- appends (VE003).
SELECT event_store.erase_stream('person-1', 'erasure request 17');
SELECT count(*) AS stored FROM event_store.events WHERE stream_id = 'person-1';
SELECT count(*) AS snapshots FROM event_store.snapshots WHERE stream_id = 'person-1';
SELECT pg_temp.try($$SELECT event_store.append_event('person-1', -2, 'X', '{}')$$);
SELECT pg_temp.try($$SELECT event_store.redact_event('00000000-0000-7000-8000-00000000f001', 'x')$$);
-- Erasing it again finds nothing more, and is recorded too.
SELECT event_store.erase_stream('person-1', 'erasure request 17, repeated');
SELECT pg_temp.try($$SELECT event_store.erase_stream('person-2', NULL)$$);
SELECT pg_temp.try($$SELECT event_store.erase_stream('person-2', '')$$);
SELECT pg_temp.try($$SELECT event_store.erase_stream('$lifecycle', 'x')$$);

-- The audit: what, when, by whom, why, how many; no erased data.
SELECT erasure_id > 0 AS has_id, erased_at <= now() AS has_time, erased_by = current_user AS by_me,
	   operation, stream_id, event_id, event_count,
	   (first_position IS NOT NULL) = (event_count > 0) AS positions_iff_events, reason
  FROM event_store.erasures WHERE stream_id LIKE 'person-%' ORDER BY erasure_id;
SELECT count(*) AS audit_rows_with_personal_data
  FROM event_store.erasures e
 WHERE e::text LIKE '%example.org%' OR e::text LIKE '%192.0.2%';
-- Nothing of the erased data is left in the events.
SELECT count(*) AS events_with_personal_data
  FROM event_store.events e
 WHERE (e.data::text LIKE '%ann@%' OR e.data::text LIKE '%bob@%' OR e.metadata::text LIKE '%192.0.2%');

-- The audit table is append-only, like the events.
SELECT pg_temp.try($$UPDATE event_store.erasures SET reason = 'x'$$);
SELECT pg_temp.try($$DELETE FROM event_store.erasures$$);
SELECT pg_temp.try($$TRUNCATE event_store.erasures$$);
-- Every other path through the guard is still refused.
SELECT pg_temp.try($$UPDATE event_store.events SET data = '{}' WHERE stream_id = 'person-2'$$);
SELECT pg_temp.try($$DELETE FROM event_store.events WHERE stream_id = 'person-2'$$);

SELECT event_type, data - 'erasure_id' - 'global_position' AS data
  FROM event_store.read_stream('$lifecycle')
 WHERE data->>'stream_id' LIKE 'person-%' ORDER BY version;
