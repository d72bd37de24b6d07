/*
 * event_store--0.3.0--0.4.0.sql
 *		Upgrade script from event_store 0.3.0 to 0.4.0.
 *
 * Snapshots: an aggregate's folded state saved at a version of its stream,
 * so that loading it reads the latest snapshot and then only the events
 * after it.  A snapshot is derived data, not history: saving one again at
 * the same version replaces it, and deleting snapshots is allowed (the
 * append-only guard does not cover this table).
 *
 * save_snapshot takes the stream's lock (the same lock appends take,
 * through an empty append_events batch) before it checks the head, so it is
 * ordered against every append and every later lifecycle operation of the
 * stream: a snapshot is never saved at a version the stream does not have.
 * It writes the table with the extension's rights (SECURITY DEFINER, with a
 * fixed search_path and every name qualified), as the append functions do,
 * so the right to save a snapshot is EXECUTE on it, and no role needs, or
 * should be given, INSERT or UPDATE on event_store.snapshots: with them it
 * could store a snapshot at any version, past the check.
 */

\echo Use "ALTER EXTENSION event_store UPDATE TO '0.4.0'" to load this file. \quit

CREATE TABLE event_store.snapshots (
	stream_id	text COLLATE "C" NOT NULL,
	version		bigint NOT NULL,
	state		jsonb NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT snapshots_pkey PRIMARY KEY (stream_id, version),
	CONSTRAINT snapshots_version_check CHECK (version >= 1)
);

SELECT pg_catalog.pg_extension_config_dump('event_store.snapshots', '');

COMMENT ON TABLE event_store.snapshots IS
'Saved states of streams at versions they have (derived data: may be replaced or deleted)';

/* Save a stream's state at one of its versions; returns the version. */
CREATE FUNCTION event_store.save_snapshot(
	stream_id text,
	version bigint,
	state jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	head bigint;
BEGIN
	IF save_snapshot.stream_id IS NULL OR save_snapshot.version IS NULL
	   OR save_snapshot.state IS NULL THEN
		RAISE EXCEPTION 'stream_id, version and state must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF save_snapshot.version < 1 THEN
		RAISE EXCEPTION 'invalid snapshot version %', save_snapshot.version
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Versions start at 1.';
	END IF;

	-- An empty batch appends nothing: it takes the stream's lock, held to
	-- the end of the transaction, and returns the head as it is under it
	-- (0 for a stream with no events).
	head := event_store.append_events(save_snapshot.stream_id, -2, '[]'::jsonb);

	IF save_snapshot.version > head THEN
		RAISE EXCEPTION 'stream "%" has no version %',
			save_snapshot.stream_id, save_snapshot.version
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('The stream is at version %s.', head),
				  HINT = 'Save a snapshot of a version the stream has.';
	END IF;

	INSERT INTO event_store.snapshots AS t (stream_id, version, state)
	VALUES (save_snapshot.stream_id, save_snapshot.version, save_snapshot.state)
	ON CONFLICT ON CONSTRAINT snapshots_pkey DO UPDATE
	   SET state = excluded.state, created_at = pg_catalog.now();

	RETURN save_snapshot.version;
END;
$$;

/*
 * A stream's latest snapshot, or with max_version the latest at or below
 * it; no row when there is none.  Then read_stream(stream_id, version + 1)
 * gives the events after it.
 */
CREATE FUNCTION event_store.read_snapshot(
	stream_id text,
	max_version bigint DEFAULT NULL)
RETURNS TABLE (version bigint, state jsonb, created_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
	SELECT s.version, s.state, s.created_at
	  FROM event_store.snapshots s
	 WHERE s.stream_id OPERATOR(pg_catalog.=) read_snapshot.stream_id
	   AND (read_snapshot.max_version IS NULL
			OR s.version OPERATOR(pg_catalog.<=) read_snapshot.max_version)
	 ORDER BY s.version DESC
	 LIMIT 1;
END;

REVOKE ALL ON FUNCTION event_store.save_snapshot(text, bigint, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION event_store.read_snapshot(text, bigint) FROM PUBLIC;

COMMENT ON FUNCTION event_store.save_snapshot(text, bigint, jsonb) IS
'Save a stream''s state at one of its versions (replacing a snapshot of that version)';
COMMENT ON FUNCTION event_store.read_snapshot(text, bigint) IS
'A stream''s latest snapshot (at or below max_version when given)';
