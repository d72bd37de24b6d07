/*
 * event_store--0.1.0--0.2.0.sql
 *		Upgrade script from event_store 0.1.0 to 0.2.0.
 *
 * Every install of 0.2.0 runs through this script: CREATE EXTENSION runs
 * the frozen 0.1.0 install script and then the upgrade chain, so each
 * release's objects are written in one place, its upgrade script.
 *
 * 0.2.0 gives PUBLIC no access: of the extension's functions, only
 * event_store.category(text), which reads nothing and which the category
 * index calls on every insert, stays executable by PUBLIC.  Roles that read
 * through the functions need EXECUTE on them (the README lists the grants).
 * The functions are named one by one so that objects a user created in the
 * schema keep their privileges.
 *
 * read_stream expresses its direction as bounds of the version range instead
 * of a boolean filter, which kept a one-time filter in the plan that JIT
 * compiled on every call once the plan's cost passed jit_above_cost.
 *
 * stream_version becomes a C function (one index probe instead of a query
 * planned on every call); lock_all_streams is new; the guard triggers fire
 * ALWAYS, also under session_replication_role = replica.
 *
 * read_all and read_category take max_count as bigint, like read_stream, and
 * refuse a negative one with the same SQLSTATE (2201W).  Their signatures
 * change, so they are dropped and created again: views of yours that call
 * them must be dropped before the update and created again after it.
 *
 * Every object gets a COMMENT, which \dx+, \df+ and \d+ show.
 */

\echo Use "ALTER EXTENSION event_store UPDATE TO '0.2.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION event_store.stream_version(stream_id text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'stream_version'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION event_store.lock_all_streams()
RETURNS void
AS 'MODULE_PATHNAME', 'lock_all_streams'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

DROP FUNCTION event_store.read_all(bigint, integer);
DROP FUNCTION event_store.read_category(text, bigint, integer, integer, integer);

CREATE FUNCTION event_store.read_all(
	after_position bigint DEFAULT 0,
	max_count bigint DEFAULT 1000)
RETURNS SETOF event_store.event
AS 'MODULE_PATHNAME', 'read_all'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION event_store.read_category(
	category text,
	after_position bigint DEFAULT 0,
	max_count bigint DEFAULT 1000,
	consumer_group_member integer DEFAULT NULL,
	consumer_group_size integer DEFAULT NULL)
RETURNS SETOF event_store.event
AS 'MODULE_PATHNAME', 'read_category'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

REVOKE ALL ON FUNCTION
	event_store.lock_all_streams(),
	event_store.stream_version(text),
	event_store.read_stream(text, bigint, bigint, boolean),
	event_store.read_all(bigint, bigint),
	event_store.read_category(text, bigint, bigint, integer, integer),
	event_store.safe_position(),
	event_store.consumer_group_member(text, integer),
	event_store.save_checkpoint(text, bigint, boolean),
	event_store.checkpoint(text),
	event_store.refuse_change()
	FROM PUBLIC;

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
			COALESCE(read_stream.from_version, 1::bigint)
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
		AND e.version OPERATOR(pg_catalog.<=)
			CASE WHEN COALESCE(read_stream.backward, false)
				 THEN COALESCE(read_stream.from_version,
							   9223372036854775807::bigint)
				 ELSE 0::bigint END
	  ORDER BY e.version DESC
	  LIMIT read_stream.max_count);
END;

ALTER TABLE event_store.events ENABLE ALWAYS TRIGGER events_append_only;
ALTER TABLE event_store.streams ENABLE ALWAYS TRIGGER streams_forward_only;

/* What each object is for, for \dx+, \df+ and \d+. */
COMMENT ON TABLE event_store.events IS
	'One row per event, appended only through event_store.append_event and event_store.append_events';
COMMENT ON COLUMN event_store.events.global_position IS
	'Position in the global log, from events_global_position_seq; unique and rising';
COMMENT ON COLUMN event_store.events.stream_id IS
	'The stream the event belongs to (compared byte for byte)';
COMMENT ON COLUMN event_store.events.version IS
	'The event''s version in its stream: 1, 2, 3, ... with no gap';
COMMENT ON COLUMN event_store.events.event_id IS
	'The event''s id, unique in the whole store; a retry with the same id stores nothing twice';
COMMENT ON COLUMN event_store.events.event_type IS
	'The event''s type, as the application names it';
COMMENT ON COLUMN event_store.events.data IS
	'The event''s payload';
COMMENT ON COLUMN event_store.events.metadata IS
	'Optional metadata: a JSON object';
COMMENT ON COLUMN event_store.events.created_at IS
	'Start of the transaction that appended the event';
COMMENT ON SEQUENCE event_store.events_global_position_seq IS
	'Global positions; must stay INCREMENT 1 NO CYCLE CACHE 1 and never be set back';
COMMENT ON TABLE event_store.streams IS
	'One row per stream: its head, moved only by the append functions';
COMMENT ON COLUMN event_store.streams.stream_id IS
	'The stream''s id';
COMMENT ON COLUMN event_store.streams.version IS
	'The stream''s current version: the version of its last event';
COMMENT ON TABLE event_store.checkpoints IS
	'One row per subscriber of the global log: the last position it processed';
COMMENT ON COLUMN event_store.checkpoints.subscriber IS
	'The subscriber''s name';
COMMENT ON COLUMN event_store.checkpoints.position IS
	'The global position of the last event the subscriber processed';
COMMENT ON COLUMN event_store.checkpoints.updated_at IS
	'When the checkpoint was last saved';
COMMENT ON TYPE event_store.event IS
	'The row every read function returns: the columns of event_store.events';
COMMENT ON COLUMN event_store.event.global_position IS 'Position in the global log';
COMMENT ON COLUMN event_store.event.stream_id IS 'The stream the event belongs to';
COMMENT ON COLUMN event_store.event.version IS 'The event''s version in its stream';
COMMENT ON COLUMN event_store.event.event_id IS 'The event''s id';
COMMENT ON COLUMN event_store.event.event_type IS 'The event''s type';
COMMENT ON COLUMN event_store.event.data IS 'The event''s payload';
COMMENT ON COLUMN event_store.event.metadata IS 'Optional metadata';
COMMENT ON COLUMN event_store.event.created_at IS 'Start of the appending transaction';
COMMENT ON INDEX event_store.events_category_idx IS
	'Serves read_category: the category, then the global position';

COMMENT ON FUNCTION event_store.append_event(text, bigint, text, jsonb, jsonb, uuid) IS
	'Append one event if the stream is at the expected version (NULL: any, 0: no stream, -1: exists); returns the new version';
COMMENT ON FUNCTION event_store.append_events(text, bigint, jsonb) IS
	'Append a JSON array of events, all or nothing, if the stream is at the expected version; returns the last version';
COMMENT ON FUNCTION event_store.lock_all_streams() IS
	'Keep every other append out of the store until the transaction ends, so that its appends take no lock per stream (imports)';
COMMENT ON FUNCTION event_store.stream_version(text) IS
	'The stream''s current version; 0 when it does not exist';
COMMENT ON FUNCTION event_store.read_stream(text, bigint, bigint, boolean) IS
	'Replay a stream from a version, forward or backward, at most max_count events';
COMMENT ON FUNCTION event_store.read_all(bigint, bigint) IS
	'The events after a global position, ascending, never passing an event that may still commit';
COMMENT ON FUNCTION event_store.read_category(text, bigint, bigint, integer, integer) IS
	'The events of one category after a global position, optionally one consumer-group member''s share';
COMMENT ON FUNCTION event_store.safe_position() IS
	'The highest position up to which every event is committed or will never exist';
COMMENT ON FUNCTION event_store.category(text) IS
	'A stream''s category: its id up to the first hyphen';
COMMENT ON FUNCTION event_store.consumer_group_member(text, integer) IS
	'The consumer-group member, of a group of the given size, that reads the stream';
COMMENT ON FUNCTION event_store.save_checkpoint(text, bigint, boolean) IS
	'Save a subscriber''s checkpoint; it never moves back unless allow_backwards';
COMMENT ON FUNCTION event_store.checkpoint(text) IS
	'A subscriber''s checkpoint; 0 when it has none';
COMMENT ON FUNCTION event_store.refuse_change() IS
	'Trigger function: refuses UPDATE, DELETE and TRUNCATE of the extension''s tables';
