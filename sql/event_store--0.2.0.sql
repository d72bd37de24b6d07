/*
 * event_store--0.2.0.sql
 *		Install script for event_store 0.2.0.
 *
 * Released versions' scripts are never edited: a change to the SQL objects
 * goes into this file and into an upgrade script from the previous version,
 * and test/upgrade.sh checks that the two give the same objects.
 *
 * Objects: the stream-heads table, the events table and its position
 * sequence, the event row type, the append functions (C), the read functions
 * (SQL, inlined into the calling query), and the guard triggers that keep the
 * history append-only.  Every name is schema-qualified.
 */

\echo Use "CREATE EXTENSION event_store" to load this file. \quit

/* Global positions, assigned at insert time. */
CREATE SEQUENCE event_store.events_global_position_seq AS bigint;

/*
 * One row per stream: its current version.  Appends update the row in place;
 * the version column has no index, so the update can stay heap-only (HOT),
 * and the free space left by the fillfactor gives it room to.
 */
CREATE TABLE event_store.streams (
	stream_id	text COLLATE "C" NOT NULL,
	version		bigint NOT NULL,
	CONSTRAINT streams_pkey PRIMARY KEY (stream_id),
	CONSTRAINT streams_version_check CHECK (version >= 1)
) WITH (fillfactor = 50);

/* One row per event. */
CREATE TABLE event_store.events (
	global_position bigint NOT NULL
		DEFAULT pg_catalog.nextval('event_store.events_global_position_seq'),
	stream_id	text COLLATE "C" NOT NULL,
	version		bigint NOT NULL,
	event_id	uuid NOT NULL,
	event_type	text NOT NULL,
	data		jsonb NOT NULL,
	metadata	jsonb,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT events_pkey PRIMARY KEY (global_position),
	CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
	CONSTRAINT events_event_id_key UNIQUE (event_id),
	CONSTRAINT events_version_check CHECK (version >= 1)
);

ALTER SEQUENCE event_store.events_global_position_seq
	OWNED BY event_store.events.global_position;

/*
 * A stream's category: its id up to the first '-' (prod-123 is in prod; an
 * id with no '-' is its own category).  Indexed with the global position for
 * read_category.
 */
CREATE FUNCTION event_store.category(stream_id text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN pg_catalog.split_part(stream_id, '-', 1);

CREATE INDEX events_category_idx
	ON event_store.events (event_store.category(stream_id), global_position);

/*
 * Consumer checkpoints: the last global position a subscriber has processed.
 */
CREATE TABLE event_store.checkpoints (
	subscriber	text NOT NULL,
	position	bigint NOT NULL,
	updated_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT checkpoints_pkey PRIMARY KEY (subscriber),
	CONSTRAINT checkpoints_position_check CHECK (position >= 0)
);

/* Keep every event, head and position in pg_dump output. */
SELECT pg_catalog.pg_extension_config_dump('event_store.streams', '');
SELECT pg_catalog.pg_extension_config_dump('event_store.events', '');
SELECT pg_catalog.pg_extension_config_dump('event_store.events_global_position_seq', '');
SELECT pg_catalog.pg_extension_config_dump('event_store.checkpoints', '');

/* The row returned by every read function. */
CREATE TYPE event_store.event AS (
	global_position bigint,
	stream_id	text,
	version		bigint,
	event_id	uuid,
	event_type	text,
	data		jsonb,
	metadata	jsonb,
	created_at	timestamptz
);

/* Append one event; returns the stream's new version. */
CREATE FUNCTION event_store.append_event(
	stream_id text,
	expected_version bigint,
	event_type text,
	data jsonb,
	metadata jsonb DEFAULT NULL,
	event_id uuid DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'append_event'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

/* Append a batch of events atomically; returns the last event's version. */
CREATE FUNCTION event_store.append_events(
	stream_id text,
	expected_version bigint,
	events jsonb)
RETURNS bigint
AS 'MODULE_PATHNAME', 'append_events'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

/*
 * Keep every other append out of the store until the end of the transaction,
 * so that this transaction's appends take no lock per stream: for imports of
 * more streams than the lock table holds.
 */
CREATE FUNCTION event_store.lock_all_streams()
RETURNS void
AS 'MODULE_PATHNAME', 'lock_all_streams'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

/*
 * The current version of a stream; 0 when it does not exist.  In C: one probe
 * of the heads table's primary key with the statement's snapshot (a SQL body
 * with a sub-SELECT is never inlined, and was planned on every call).
 */
CREATE FUNCTION event_store.stream_version(stream_id text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'stream_version'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

/*
 * Replay a stream, forward or backward.
 *
 * A plain SQL function, so that the planner inlines it into the calling
 * query: the replay is then an ordinary index scan that streams its rows,
 * obeys the caller's LIMIT and honours row-level security.  For that it must
 * stay non-strict, non-volatile and without SET clauses.  Exactly one of the
 * two branches returns rows: the direction only moves the bounds of each
 * branch's range of versions, so that the other branch becomes an index scan
 * of an empty range.  (A boolean filter there would leave a one-time filter
 * in the plan, whose evaluation, once a plan is costly enough for JIT,
 * compiles code on every call.)
 */
CREATE FUNCTION event_store.read_stream(
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

/*
 * The global log (global_log.c explains how it stays exact).  These read
 * with a snapshot of their own, taken after a short wait for appends that
 * are between taking a position and inserting it, so they are VOLATILE.
 */
CREATE FUNCTION event_store.read_all(
	after_position bigint DEFAULT 0,
	max_count integer DEFAULT 1000)
RETURNS SETOF event_store.event
AS 'MODULE_PATHNAME', 'read_all'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION event_store.read_category(
	category text,
	after_position bigint DEFAULT 0,
	max_count integer DEFAULT 1000,
	consumer_group_member integer DEFAULT NULL,
	consumer_group_size integer DEFAULT NULL)
RETURNS SETOF event_store.event
AS 'MODULE_PATHNAME', 'read_category'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION event_store.safe_position()
RETURNS bigint
AS 'MODULE_PATHNAME', 'safe_position'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

/* The member of a consumer group of the given size that reads a stream. */
CREATE FUNCTION event_store.consumer_group_member(stream_id text, group_size integer)
RETURNS integer
AS 'MODULE_PATHNAME', 'consumer_group_member'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

/*
 * Save a subscriber's checkpoint; returns the checkpoint as stored.  It never
 * moves backwards unless allow_backwards is true: a smaller position leaves
 * it where it is.
 */
CREATE FUNCTION event_store.save_checkpoint(
	subscriber text,
	"position" bigint,
	allow_backwards boolean DEFAULT false)
RETURNS bigint
LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE
BEGIN ATOMIC
	INSERT INTO event_store.checkpoints AS c (subscriber, position)
	VALUES (save_checkpoint.subscriber, save_checkpoint."position")
	ON CONFLICT ON CONSTRAINT checkpoints_pkey DO UPDATE
	   SET position = CASE
			   WHEN save_checkpoint.allow_backwards
				 OR excluded.position OPERATOR(pg_catalog.>) c.position
			   THEN excluded.position ELSE c.position END,
		   updated_at = pg_catalog.now()
	RETURNING c.position;
END;

/* A subscriber's checkpoint; 0 when it has none. */
CREATE FUNCTION event_store.checkpoint(subscriber text)
RETURNS bigint
LANGUAGE sql STABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
	SELECT COALESCE(
		(SELECT c.position FROM event_store.checkpoints c
		  WHERE c.subscriber OPERATOR(pg_catalog.=) checkpoint.subscriber),
		0::bigint);
END;

/*
 * Privileges.  PUBLIC gets no access: the schema is not usable by it, and of
 * the functions it may execute only event_store.category(text), which reads
 * nothing and which the category index calls on every insert, whoever
 * inserts.  The append functions write the tables with the extension's own
 * rights, so the right to append is EXECUTE on them.  Reading needs USAGE on
 * the schema, SELECT on the tables and EXECUTE on the read functions; the
 * read functions run with the caller's rights, and row-level security on the
 * events table applies to them.  The README lists the grants for a writer, a
 * reader and a projection.
 */
REVOKE ALL ON FUNCTION
	event_store.append_event(text, bigint, text, jsonb, jsonb, uuid),
	event_store.append_events(text, bigint, jsonb),
	event_store.lock_all_streams(),
	event_store.stream_version(text),
	event_store.read_stream(text, bigint, bigint, boolean),
	event_store.read_all(bigint, integer),
	event_store.read_category(text, bigint, integer, integer, integer),
	event_store.safe_position(),
	event_store.consumer_group_member(text, integer),
	event_store.save_checkpoint(text, bigint, boolean),
	event_store.checkpoint(text)
	FROM PUBLIC;

/*
 * Guards: stored history changes only through the append functions, which
 * write the tables directly and so do not fire these triggers.  INSERT is
 * left open so that pg_restore can load the data back.  The triggers fire
 * ALWAYS, also under session_replication_role = replica; the trigger
 * function lets a logical replication apply worker through, which replays
 * what the publisher's appends did.
 */
CREATE FUNCTION event_store.refuse_change()
RETURNS trigger
AS 'MODULE_PATHNAME', 'refuse_change'
LANGUAGE C;

REVOKE ALL ON FUNCTION event_store.refuse_change() FROM PUBLIC;

CREATE TRIGGER events_append_only
	BEFORE UPDATE OR DELETE OR TRUNCATE ON event_store.events
	FOR EACH STATEMENT EXECUTE FUNCTION event_store.refuse_change();

CREATE TRIGGER streams_forward_only
	BEFORE UPDATE OR DELETE OR TRUNCATE ON event_store.streams
	FOR EACH STATEMENT EXECUTE FUNCTION event_store.refuse_change();

ALTER TABLE event_store.events ENABLE ALWAYS TRIGGER events_append_only;
ALTER TABLE event_store.streams ENABLE ALWAYS TRIGGER streams_forward_only;
