/*
 * event_store--0.1.0--0.2.0.sql
 *		Upgrade script from event_store 0.1.0 to 0.2.0.
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

REVOKE ALL ON FUNCTION
	event_store.lock_all_streams(),
	event_store.stream_version(text),
	event_store.read_stream(text, bigint, bigint, boolean),
	event_store.read_all(bigint, integer),
	event_store.read_category(text, bigint, integer, integer, integer),
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
