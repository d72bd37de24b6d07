/*
 * event_store--0.2.0--0.3.0.sql
 *		Upgrade script from event_store 0.2.0 to 0.3.0.
 *
 * Safe by default for application code:
 *
 * - An expected version of NULL is an error (22004): drivers send an
 *   undefined or None as NULL, which silently disabled the check.  "Append
 *   without a check" is said on purpose: -2, which event_store.any_version()
 *   returns.  0 (no stream), -1 (stream exists) and N (exact) are as before.
 * - Event ids of a call that are already stored in the stream, but not as a
 *   repeat of the call, fail with VE002 (DETAIL "Event id U is stored at
 *   version N."), no longer with VE001: the command was carried out before,
 *   and a client can report it as done instead of retrying.  VE001 is left
 *   for stale versions.
 * - event_store.new_event_id() makes the version 7 uuids that idempotent
 *   retries need client-side.
 *
 * The shared library keeps serving the 0.1.0 and 0.2.0 definitions (NULL
 * means any) until a database is updated.
 */

\echo Use "ALTER EXTENSION event_store UPDATE TO '0.3.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION event_store.append_event(
	stream_id text,
	expected_version bigint,
	event_type text,
	data jsonb,
	metadata jsonb DEFAULT NULL,
	event_id uuid DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'append_event_checked'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE OR REPLACE FUNCTION event_store.append_events(
	stream_id text,
	expected_version bigint,
	events jsonb)
RETURNS bigint
AS 'MODULE_PATHNAME', 'append_events_checked'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

/* The expected version that appends without a check. */
CREATE FUNCTION event_store.any_version()
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN -2::bigint;

/* A new event id: a version 7 uuid. */
CREATE FUNCTION event_store.new_event_id()
RETURNS uuid
AS 'MODULE_PATHNAME', 'new_event_id'
LANGUAGE C VOLATILE PARALLEL SAFE;

REVOKE ALL ON FUNCTION
	event_store.any_version(),
	event_store.new_event_id()
	FROM PUBLIC;

COMMENT ON FUNCTION event_store.append_event(text, bigint, text, jsonb, jsonb, uuid) IS
	'Append one event if the stream is at the expected version (-2: any, 0: no stream, -1: exists; NULL is refused); returns the new version';
COMMENT ON FUNCTION event_store.append_events(text, bigint, jsonb) IS
	'Append a JSON array of events, all or nothing, if the stream is at the expected version (-2: any; NULL is refused); returns the last version';
COMMENT ON FUNCTION event_store.any_version() IS
	'The expected version that appends without a check: -2';
COMMENT ON FUNCTION event_store.new_event_id() IS
	'A new event id: a version 7 uuid, time-ordered';
