/*
 * event_store--0.3.0--0.4.0.sql
 *		Upgrade script from event_store 0.3.0 to 0.4.0.
 *
 * The stream lifecycle (lifecycle.c and visibility.c say how it works):
 * soft delete, tombstones, truncation and retention limits, kept in new
 * columns of the stream-heads table; purge; erasure and redaction for data
 * protection, with an audit table; and lifecycle events in the reserved
 * stream $lifecycle, which user appends cannot forge since 0.4.0's appends
 * refuse stream ids and event types beginning with '$'.
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

/*
 * Stream ids beginning with '$' are reserved from 0.4.0 on.  Streams a store
 * already has with such ids are kept, read as before, and take no more
 * appends; but '$lifecycle' is the lifecycle events' own stream, so a store
 * that has one cannot be updated until its owner removes it.
 */
DO $check$
BEGIN
	IF EXISTS (SELECT 1 FROM event_store.streams s
				WHERE s.stream_id OPERATOR(pg_catalog.=) '$lifecycle') THEN
		RAISE EXCEPTION 'event_store 0.4.0 reserves the stream "$lifecycle"'
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'This store has a stream of its own named "$lifecycle", where 0.4.0 writes its lifecycle events.',
				  HINT = 'The tables'' owner can remove it: disable the guard triggers events_append_only and streams_forward_only, delete its events and head, and enable them again.';
	END IF;
END
$check$;

/*
 * The lifecycle columns of a stream's head.  Constant defaults, so no
 * rewrite; none is indexed except in the predicate of a partial index that
 * appends never change, so the head's update stays heap-only (HOT).  A head
 * at version 0 is a stream with no events that was tombstoned, or given a
 * retention limit before its first append.  Their values are checked by the
 * lifecycle functions, which alone write them, not by CHECK constraints:
 * every append writes the head row, and evaluates the table's constraints
 * when it does.
 */
ALTER TABLE event_store.streams
	ADD COLUMN visible_from bigint NOT NULL DEFAULT 1,
	ADD COLUMN tombstoned boolean NOT NULL DEFAULT false,
	ADD COLUMN max_count bigint,
	ADD COLUMN max_age interval,
	DROP CONSTRAINT streams_version_check,
	ADD CONSTRAINT streams_version_check CHECK (version >= 0);

/*
 * The streams that hide anything: the global log's cache and purge scan it.
 * A tombstoned stream has no events left to hide or purge.
 */
CREATE INDEX streams_lifecycle_idx ON event_store.streams (stream_id)
	WHERE NOT tombstoned
	  AND (visible_from OPERATOR(pg_catalog.>) 1
		   OR max_count IS NOT NULL OR max_age IS NOT NULL);

/*
 * The audit of erasures: what was erased, when, by whom and why, and how
 * many events; never any of the erased data.  Written only by erase_stream
 * and redact_event, and guarded like the events.
 */
CREATE SEQUENCE event_store.erasures_erasure_id_seq AS bigint;

CREATE TABLE event_store.erasures (
	erasure_id	bigint NOT NULL
		DEFAULT pg_catalog.nextval('event_store.erasures_erasure_id_seq'),
	erased_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	erased_by	text NOT NULL,
	session_user_name text NOT NULL,
	operation	text NOT NULL,
	stream_id	text COLLATE "C" NOT NULL,
	event_id	uuid,
	event_count bigint NOT NULL,
	first_position bigint,
	last_position bigint,
	reason		text NOT NULL,
	CONSTRAINT erasures_pkey PRIMARY KEY (erasure_id),
	CONSTRAINT erasures_operation_check
		CHECK (operation OPERATOR(pg_catalog.=) ANY (ARRAY['erase_stream', 'redact_event']))
);

ALTER SEQUENCE event_store.erasures_erasure_id_seq
	OWNED BY event_store.erasures.erasure_id;

SELECT pg_catalog.pg_extension_config_dump('event_store.erasures', '');
SELECT pg_catalog.pg_extension_config_dump('event_store.erasures_erasure_id_seq', '');

CREATE TRIGGER erasures_append_only
	BEFORE UPDATE OR DELETE OR TRUNCATE ON event_store.erasures
	FOR EACH STATEMENT EXECUTE FUNCTION event_store.refuse_change();
ALTER TABLE event_store.erasures ENABLE ALWAYS TRIGGER erasures_append_only;

/* Appends refuse the reserved '$' prefix from now on. */
CREATE OR REPLACE FUNCTION event_store.append_event(
	stream_id text,
	expected_version bigint,
	event_type text,
	data jsonb,
	metadata jsonb DEFAULT NULL,
	event_id uuid DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'append_event_reserved'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE OR REPLACE FUNCTION event_store.append_events(
	stream_id text,
	expected_version bigint,
	events jsonb)
RETURNS bigint
AS 'MODULE_PATHNAME', 'append_events_reserved'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

/* The first version a stream shows (read_stream's lower bound). */
CREATE FUNCTION event_store.first_visible_version(stream_id text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'first_visible_version'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

/*
 * read_stream shows the versions from the first visible one on: the bound
 * is one more bound of the index range, computed once per call, in the
 * branch of the direction read (the other one is empty).
 */
CREATE OR REPLACE FUNCTION event_store.read_stream(
	stream_id text,
	from_version bigint DEFAULT NULL,
	max_count bigint DEFAULT NULL,
	backward boolean DEFAULT false)
RETURNS SETOF event_store.event
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
	(SELECT e.global_position, e.stream_id, e.version, e.event_id,
			e.event_type, e.data, e.metadata, e.created_at
	   FROM event_store.events e
	  WHERE e.stream_id OPERATOR(pg_catalog.=) read_stream.stream_id
		AND e.version OPERATOR(pg_catalog.>=)
			GREATEST(COALESCE(read_stream.from_version, 1::bigint),
					 CASE WHEN COALESCE(read_stream.backward, false) THEN 1::bigint
						  ELSE event_store.first_visible_version(read_stream.stream_id) END)
		AND e.version OPERATOR(pg_catalog.<=)
			CASE WHEN COALESCE(read_stream.backward, false) THEN 0::bigint
				 ELSE 9223372036854775807::bigint END
	  ORDER BY e.version
	  LIMIT read_stream.max_count)
	UNION ALL
	(SELECT e.global_position, e.stream_id, e.version, e.event_id,
			e.event_type, e.data, e.metadata, e.created_at
	   FROM event_store.events e
	  WHERE e.stream_id OPERATOR(pg_catalog.=) read_stream.stream_id
		AND e.version OPERATOR(pg_catalog.>=)
			CASE WHEN COALESCE(read_stream.backward, false)
				 THEN event_store.first_visible_version(read_stream.stream_id)
				 ELSE 1::bigint END
		AND e.version OPERATOR(pg_catalog.<=)
			CASE WHEN COALESCE(read_stream.backward, false)
				 THEN COALESCE(read_stream.from_version,
							   9223372036854775807::bigint)
				 ELSE 0::bigint END
	  ORDER BY e.version DESC
	  LIMIT read_stream.max_count);
END;

/* A stream's lifecycle state. */
CREATE FUNCTION event_store.stream_info(
	stream_id text,
	OUT version bigint,
	OUT first_visible_version bigint,
	OUT truncate_before bigint,
	OUT max_count bigint,
	OUT max_age interval,
	OUT tombstoned boolean)
RETURNS record
AS 'MODULE_PATHNAME', 'stream_info'
LANGUAGE C STABLE PARALLEL SAFE;

CREATE FUNCTION event_store.delete_stream(stream_id text, expected_version bigint)
RETURNS bigint
AS 'MODULE_PATHNAME', 'delete_stream'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION event_store.tombstone_stream(stream_id text, expected_version bigint)
RETURNS bigint
AS 'MODULE_PATHNAME', 'tombstone_stream'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION event_store.truncate_stream(stream_id text, before_version bigint)
RETURNS bigint
AS 'MODULE_PATHNAME', 'truncate_stream'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION event_store.set_stream_retention(
	stream_id text,
	max_count bigint DEFAULT NULL,
	max_age interval DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'set_stream_retention'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION event_store.purge(max_events integer DEFAULT 10000)
RETURNS bigint
AS 'MODULE_PATHNAME', 'purge'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION event_store.erase_stream(stream_id text, reason text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'erase_stream'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION event_store.redact_event(
	event_id uuid,
	reason text,
	data jsonb DEFAULT '{}'::jsonb,
	metadata jsonb DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'redact_event'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

/*
 * first_visible_version stays executable by PUBLIC: read_stream calls it,
 * so a role that may run read_stream keeps it after the update, and it
 * checks SELECT on event_store.events itself, as read_stream's scan does.
 */
REVOKE ALL ON FUNCTION
	event_store.stream_info(text),
	event_store.delete_stream(text, bigint),
	event_store.tombstone_stream(text, bigint),
	event_store.truncate_stream(text, bigint),
	event_store.set_stream_retention(text, bigint, interval),
	event_store.purge(integer),
	event_store.erase_stream(text, text),
	event_store.redact_event(uuid, text, jsonb, jsonb)
	FROM PUBLIC;

COMMENT ON COLUMN event_store.streams.version IS
	'The stream''s current version: the version of its last event (0: none yet)';
COMMENT ON COLUMN event_store.streams.visible_from IS
	'The first version reads may show; raised by delete_stream and truncate_stream, never lowered';
COMMENT ON COLUMN event_store.streams.tombstoned IS
	'Deleted for good: the stream takes no more appends';
COMMENT ON COLUMN event_store.streams.max_count IS
	'Retention: reads show at most this many of the latest events';
COMMENT ON COLUMN event_store.streams.max_age IS
	'Retention: reads show only events younger than this';
COMMENT ON INDEX event_store.streams_lifecycle_idx IS
	'The streams that hide events: for the global log''s readers and purge';
COMMENT ON COLUMN event_store.erasures.erased_by IS
	'The role that ran the erasure (current_user)';
COMMENT ON COLUMN event_store.erasures.session_user_name IS
	'The session''s user when it ran (differs from erased_by under SET ROLE or a SECURITY DEFINER wrapper)';
COMMENT ON TABLE event_store.erasures IS
	'Audit of erasures and redactions: what, when, by whom, why; no erased data';
COMMENT ON FUNCTION event_store.first_visible_version(text) IS
	'The first version read_stream shows, after deletes, truncation and retention';
COMMENT ON FUNCTION event_store.stream_info(text) IS
	'A stream''s version, first visible version and lifecycle settings';
COMMENT ON FUNCTION event_store.delete_stream(text, bigint) IS
	'Soft delete: hide the stream''s events for good; appends continue at the next version';
COMMENT ON FUNCTION event_store.tombstone_stream(text, bigint) IS
	'Hard delete: remove the stream''s events; the stream id takes no more appends (VE003)';
COMMENT ON FUNCTION event_store.truncate_stream(text, bigint) IS
	'Hide the stream''s versions below before_version, for good';
COMMENT ON FUNCTION event_store.set_stream_retention(text, bigint, interval) IS
	'Set the stream''s retention limits (NULL clears one): max_count, max_age';
COMMENT ON FUNCTION event_store.purge(integer) IS
	'Remove hidden events physically, at most max_events; returns how many';
COMMENT ON FUNCTION event_store.erase_stream(text, text) IS
	'Erase a stream for data protection: its events and snapshots, with an audit row';
COMMENT ON FUNCTION event_store.redact_event(uuid, text, jsonb, jsonb) IS
	'Rewrite one event''s data and metadata in place for data protection, with an audit row';

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
	hidden_below bigint;
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

	-- Versions a delete or truncation hid are not the stream's any more.
	SELECT s.visible_from INTO hidden_below
	  FROM event_store.streams s
	 WHERE s.stream_id OPERATOR(pg_catalog.=) save_snapshot.stream_id;
	IF save_snapshot.version < hidden_below THEN
		RAISE EXCEPTION 'stream "%" has no version %',
			save_snapshot.stream_id, save_snapshot.version
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('Versions below %s are deleted or truncated.', hidden_below),
				  HINT = 'Save a snapshot of a version the stream shows.';
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
 * gives the events after it.  A snapshot below the stream's first visible
 * version - 1 is not returned: the events between it and the first visible
 * one are hidden, so loading from it would skip them.
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
	   AND s.version OPERATOR(pg_catalog.>=)
		   (event_store.first_visible_version(read_snapshot.stream_id) OPERATOR(pg_catalog.-) 1)
	 ORDER BY s.version DESC
	 LIMIT 1;
END;

REVOKE ALL ON FUNCTION event_store.save_snapshot(text, bigint, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION event_store.read_snapshot(text, bigint) FROM PUBLIC;

COMMENT ON FUNCTION event_store.save_snapshot(text, bigint, jsonb) IS
'Save a stream''s state at one of its versions (replacing a snapshot of that version)';
COMMENT ON FUNCTION event_store.read_snapshot(text, bigint) IS
'A stream''s latest snapshot (at or below max_version when given)';
