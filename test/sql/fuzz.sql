-- fuzz: generated calls of every function; each must succeed or fail with a
-- documented SQLSTATE, and the store's invariants must hold afterwards.  The
-- generator is seeded, so the run is the same every time.
\i test/sql/helpers.inc

CREATE TEMP TABLE fuzz_log (fn text, outcome text);

DO $fuzz$
DECLARE
	documented text[] := ARRAY['VE001', 'VE002', '22004', '22023', '22001', '23505', '2201W'];
	ids uuid[] := ARRAY['f0000000-0000-4000-8000-000000000001',
						'f0000000-0000-4000-8000-000000000002',
						'f0000000-0000-4000-8000-000000000003']::uuid[];
	streams text[] := ARRAY[NULL, '', 'fz-1', 'fz-2', 'fz-3', 'fz', repeat('x', 1001),
							repeat('é', 500), E'fz-\u00e9\t\u4e2d', $q$fz'); DROP TABLE event_store.events; --$q$];
	types text[] := ARRAY[NULL, '', 'T', repeat('t', 255), repeat('t', 256), E'\u00e9v\n'];
	datas jsonb[];
	metas jsonb[] := ARRAY[NULL, '{}', '{"a": 1}', '[1]', '"m"', 'null', '{"deep": {"er": {"still": [1, 2, {"x": null}]}}}']::jsonb[];
	batches jsonb[];
	sid text;
	ev bigint;
	fn text;
	n int;
BEGIN
	PERFORM setseed(0.25);
	datas := ARRAY[NULL, '{}', 'null', '1', '"s"', '[1, 2]',
				   (repeat('[', 200) || repeat(']', 200))::jsonb,
				   jsonb_build_object('big', repeat('z', 100000))]::jsonb[];
	batches := ARRAY[NULL, '[]', '{}', '1', '[1]', '[{}]', '[{"type": "A"}]',
					 '[{"type": "A", "data": 1}]',
					 '[{"type": "A", "data": 1}, {"type": "B", "data": {"x": [1]}, "metadata": {"m": 1}}]',
					 '[{"type": "A", "data": 1, "id": "f0000000-0000-4000-8000-000000000001"}]',
					 '[{"type": "A", "data": 1, "id": "nope"}]',
					 '[{"type": "A", "data": 1, "extra": 2}]',
					 '[{"type": "", "data": 1}]']::jsonb[];
	FOR i IN 1..2000 LOOP
		sid := streams[1 + floor(random() * array_length(streams, 1))::int];
		ev := CASE floor(random() * 4)::int
				WHEN 0 THEN event_store.stream_version(sid)
				WHEN 1 THEN (ARRAY[NULL, -2, -1, 0])[1 + floor(random() * 4)::int]
				WHEN 2 THEN (ARRAY[-2, 1, 2, 9223372036854775807, -9223372036854775808])[1 + floor(random() * 5)::int]
				ELSE NULL END;
		fn := (ARRAY['append_event', 'append_events', 'read_stream', 'read_all',
					 'read_category', 'stream_version', 'save_checkpoint'])[1 + floor(random() * 7)::int];
		BEGIN
			CASE fn
				WHEN 'append_event' THEN
					PERFORM event_store.append_event(sid, ev,
						types[1 + floor(random() * array_length(types, 1))::int],
						datas[1 + floor(random() * array_length(datas, 1))::int],
						metas[1 + floor(random() * array_length(metas, 1))::int],
						CASE WHEN random() < 0.3 THEN ids[1 + floor(random() * 3)::int] END);
				WHEN 'append_events' THEN
					PERFORM event_store.append_events(sid, ev,
						batches[1 + floor(random() * array_length(batches, 1))::int]);
				WHEN 'read_stream' THEN
					PERFORM count(*) FROM event_store.read_stream(sid, ev,
						(ARRAY[NULL, 0, 1, 5, -1])[1 + floor(random() * 5)::int],
						(ARRAY[NULL, true, false])[1 + floor(random() * 3)::int]);
				WHEN 'read_all' THEN
					PERFORM count(*) FROM event_store.read_all(ev,
						(ARRAY[NULL, 0, 3, -1])[1 + floor(random() * 4)::int]);
				WHEN 'read_category' THEN
					n := (ARRAY[NULL, 0, 1, 2, 3, -1])[1 + floor(random() * 6)::int];
					PERFORM count(*) FROM event_store.read_category(sid, ev, 10, n,
						(ARRAY[NULL, 0, 1, 3])[1 + floor(random() * 4)::int]);
				WHEN 'stream_version' THEN
					PERFORM event_store.stream_version(sid);
				ELSE
					PERFORM event_store.save_checkpoint('fz', abs(ev % 1000));
			END CASE;
			INSERT INTO fuzz_log VALUES (fn, 'ok');
		EXCEPTION WHEN OTHERS THEN
			INSERT INTO fuzz_log VALUES (fn, CASE WHEN SQLSTATE = ANY (documented)
				THEN 'documented' ELSE SQLSTATE || ' ' || SQLERRM END);
		END;
	END LOOP;
END $fuzz$;

-- Every function was called, with successes and documented failures only.
SELECT fn, bool_or(outcome = 'ok') AS some_ok,
	   bool_or(outcome = 'documented') AS some_refused,
	   count(*) FILTER (WHERE outcome NOT IN ('ok', 'documented')) AS undocumented
  FROM fuzz_log GROUP BY fn ORDER BY fn;
SELECT DISTINCT outcome FROM fuzz_log WHERE outcome NOT IN ('ok', 'documented');

-- The invariants hold: versions 1..head with no gap, unique ids and
-- positions, the injection-looking stream stored verbatim.
SELECT count(*) AS bad_streams FROM event_store.streams s
  JOIN (SELECT stream_id, count(*) AS n, max(version) AS last, min(version) AS first
		  FROM event_store.events GROUP BY stream_id) e USING (stream_id)
 WHERE s.version <> e.n OR s.version <> e.last OR e.first <> 1;
SELECT count(*) = count(DISTINCT event_id) AS unique_ids,
	   count(*) = count(DISTINCT global_position) AS unique_positions
  FROM event_store.events;
SELECT count(*) > 0 AS injection_stored_verbatim FROM event_store.streams
 WHERE stream_id = $q$fz'); DROP TABLE event_store.events; --$q$;
