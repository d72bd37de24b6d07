-- bench/setup.sql: what the benchmark compares event_store with.
--
--   floor        bench.floor_events: a table identical to event_store.events
--                (same columns, indexes, constraints and defaults, its own
--                sequence), written by a bare INSERT with no lock and no check.
--   hand-written bench.hw_append_event / bench.hw_append_events: PL/pgSQL
--                with the semantics of event_store.append_event(s), on copies
--                of the events and heads tables: the baseline a user would
--                write by hand.
--   (rta1k)      bench.try_mdb: Message DB's write_message behind the same
--                kind of try-wrapper, when run.sh installs Message DB.

CREATE EXTENSION IF NOT EXISTS event_store;
CREATE SCHEMA bench;

CREATE SEQUENCE bench.floor_seq;
CREATE TABLE bench.floor_events (LIKE event_store.events INCLUDING ALL);
ALTER TABLE bench.floor_events
	ALTER COLUMN global_position SET DEFAULT nextval('bench.floor_seq');

CREATE SEQUENCE bench.hw_seq;
CREATE TABLE bench.hw_events (LIKE event_store.events INCLUDING ALL);
ALTER TABLE bench.hw_events
	ALTER COLUMN global_position SET DEFAULT nextval('bench.hw_seq');
CREATE TABLE bench.hw_streams (LIKE event_store.streams INCLUDING ALL)
	WITH (fillfactor = 50);

CREATE FUNCTION bench.hw_check(p_stream text, p_expected bigint, p_current bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	IF p_expected IS NOT NULL AND NOT (
		(p_expected = 0 AND p_current = 0) OR
		(p_expected = -1 AND p_current > 0) OR
		(p_expected > 0 AND p_current = p_expected)) THEN
		RAISE EXCEPTION 'wrong expected version for stream "%"', p_stream
			USING ERRCODE = 'VE001',
				  DETAIL = format('Expected version %s, actual version %s.',
								  p_expected, p_current);
	END IF;
END $$;

CREATE FUNCTION bench.hw_append_event(p_stream text, p_expected bigint,
	p_type text, p_data jsonb, p_metadata jsonb DEFAULT NULL,
	p_event_id uuid DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	v_current bigint;
BEGIN
	PERFORM pg_advisory_xact_lock(hashtextextended(p_stream, 0));
	SELECT version INTO v_current FROM bench.hw_streams WHERE stream_id = p_stream;
	v_current := COALESCE(v_current, 0);
	PERFORM bench.hw_check(p_stream, p_expected, v_current);
	INSERT INTO bench.hw_events (stream_id, version, event_id, event_type, data, metadata)
	VALUES (p_stream, v_current + 1, COALESCE(p_event_id, gen_random_uuid()),
			p_type, p_data, p_metadata);
	INSERT INTO bench.hw_streams (stream_id, version) VALUES (p_stream, v_current + 1)
	ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version;
	RETURN v_current + 1;
END $$;

CREATE FUNCTION bench.hw_append_events(p_stream text, p_expected bigint,
	p_events jsonb)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	v_current bigint;
	v_count bigint;
BEGIN
	PERFORM pg_advisory_xact_lock(hashtextextended(p_stream, 0));
	SELECT version INTO v_current FROM bench.hw_streams WHERE stream_id = p_stream;
	v_current := COALESCE(v_current, 0);
	PERFORM bench.hw_check(p_stream, p_expected, v_current);
	INSERT INTO bench.hw_events (stream_id, version, event_id, event_type, data, metadata)
	SELECT p_stream, v_current + e.n, COALESCE((e.v->>'id')::uuid, gen_random_uuid()),
		   e.v->>'type', e.v->'data', e.v->'metadata'
	  FROM jsonb_array_elements(p_events) WITH ORDINALITY AS e(v, n);
	GET DIAGNOSTICS v_count = ROW_COUNT;
	IF v_count > 0 THEN
		INSERT INTO bench.hw_streams (stream_id, version)
		VALUES (p_stream, v_current + v_count)
		ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version;
	END IF;
	RETURN v_current + v_count;
END $$;

-- For "read then append": appends that report a conflict as false instead of
-- an error, so that pgbench clients keep going.  Both methods pay the same
-- exception block.
CREATE FUNCTION bench.try_es(p_stream text, p_expected bigint, p_data jsonb)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	PERFORM event_store.append_event(p_stream, p_expected, 'Bench', p_data);
	RETURN true;
EXCEPTION WHEN SQLSTATE 'VE001' THEN
	RETURN false;
END $$;

CREATE FUNCTION bench.try_hw(p_stream text, p_expected bigint, p_data jsonb)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	PERFORM bench.hw_append_event(p_stream, p_expected, 'Bench', p_data);
	RETURN true;
EXCEPTION WHEN SQLSTATE 'VE001' THEN
	RETURN false;
END $$;

CREATE FUNCTION bench.hw_version(p_stream text) RETURNS bigint
LANGUAGE sql STABLE AS $$
	SELECT COALESCE((SELECT version FROM bench.hw_streams WHERE stream_id = p_stream), 0)
$$;

-- Message DB's append for "read then append" (rta1k), the same way.  Message
-- DB raises its conflict with a plain RAISE EXCEPTION (SQLSTATE P0001), so
-- the wrapper tells it from other errors by its message.  Its functions find
-- each other and their table through the search_path, which must hold
-- message_store (run.sh sets it for the message-db methods).  Message DB
-- itself is installed by run.sh only when MESSAGE_DB_SRC is set.
CREATE FUNCTION bench.try_mdb(p_stream text, p_expected bigint, p_data jsonb)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	PERFORM message_store.write_message(gen_random_uuid()::varchar, p_stream,
		'Bench', p_data, NULL, p_expected);
	RETURN true;
EXCEPTION WHEN raise_exception THEN
	IF SQLERRM LIKE 'Wrong expected version:%' THEN
		RETURN false;
	END IF;
	RAISE;
END $$;

-- Outcomes of "read then append", per method (and, for rta1k, per pgbench
-- run, for successful appends per second).
CREATE UNLOGGED TABLE bench.rta_outcomes (method text, ok boolean, run integer);

-- rta1k keeps no outcome rows (an INSERT per transaction would dilute the
-- comparison): the appends that succeeded in a run are counted from what the
-- method stored, in streams named r<run>x<n>-1.
CREATE FUNCTION bench.rta1k_stored(p_method text, p_run integer)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	IF p_method = 'event_store' THEN
		SELECT sum(version) INTO n FROM event_store.streams
		 WHERE stream_id LIKE 'r' || p_run || 'x%';
	ELSIF p_method = 'hand-written' THEN
		SELECT sum(version) INTO n FROM bench.hw_streams
		 WHERE stream_id LIKE 'r' || p_run || 'x%';
	ELSE
		EXECUTE 'SELECT count(*) FROM message_store.messages WHERE stream_name LIKE $1'
		   INTO n USING 'r' || p_run || 'x%';
	END IF;
	RETURN coalesce(n, 0);
END $$;
