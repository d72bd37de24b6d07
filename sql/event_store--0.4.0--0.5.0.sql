/*
 * event_store--0.4.0--0.5.0.sql
 *		Upgrade script from event_store 0.4.0 to 0.5.0.
 *
 * Subscriptions that scale:
 *
 * Filtered reads.  read_all takes optional sets of event types and of
 * categories, read_category an optional set of event types.  A filtered
 * read scans past events it does not want, and last_read_position() tells
 * where it got to: the position a subscriber saves as its checkpoint even
 * when nothing matched (global_log.c says why that is exact).  Their
 * signatures change, so they are dropped and created again, with the
 * privileges roles had on them carried over; views of yours that call them
 * must be dropped before the update and created again after it.
 *
 * wait_for_event returns as soon as an event past a position (of a
 * category, of given types) is readable by the global log, or when its
 * timeout passes: one statement, so it works through a pooler in
 * transaction mode (wait.c).
 *
 * Status.  The view subscriptions shows every checkpoint with the log's
 * head and the lag; the view log_holders shows what holds the global log
 * back right now.
 *
 * Hot standbys.  The primary publishes a watermark, a position up to which
 * every event is in the WAL (watermark.c); readers on a standby read up to
 * it, which makes the global log exact there too.
 *
 * Parked events.  A subscriber that cannot apply an event parks it with its
 * error, moves on, and replays it later.
 */

\echo Use "ALTER EXTENSION event_store UPDATE TO '0.5.0'" to load this file. \quit

/*
 * Carry a function's privileges over to the function that replaces it: the
 * grants of the dropped one, made by the new one's owner.  They are written
 * to the catalog directly, not by GRANT, so that they are not recorded as
 * the extension's initial privileges: pg_dump keeps dumping them as grants
 * of yours.
 */
CREATE FUNCTION event_store.carry_privileges(old_acl aclitem[], new_fn regprocedure)
RETURNS void
LANGUAGE sql
BEGIN ATOMIC
	UPDATE pg_catalog.pg_proc p
	   SET proacl = (SELECT pg_catalog.array_agg(pg_catalog.makeaclitem(
								a.grantee, p.proowner, a.privilege_type,
								a.is_grantable))
					   FROM pg_catalog.aclexplode(old_acl) a)
	 WHERE p.oid OPERATOR(pg_catalog.=) new_fn
	   AND old_acl IS NOT NULL;
END;

DO $carry$
DECLARE
	all_acl		aclitem[];
	category_acl aclitem[];
BEGIN
	SELECT p.proacl INTO all_acl FROM pg_catalog.pg_proc p
	 WHERE p.oid OPERATOR(pg_catalog.=)
		   'event_store.read_all(bigint, bigint)'::pg_catalog.regprocedure;
	SELECT p.proacl INTO category_acl FROM pg_catalog.pg_proc p
	 WHERE p.oid OPERATOR(pg_catalog.=)
		   'event_store.read_category(text, bigint, bigint, integer, integer)'::pg_catalog.regprocedure;

	DROP FUNCTION event_store.read_all(bigint, bigint);
	DROP FUNCTION event_store.read_category(text, bigint, bigint, integer, integer);

	CREATE FUNCTION event_store.read_all(
		after_position bigint DEFAULT 0,
		max_count bigint DEFAULT 1000,
		event_types text[] DEFAULT NULL,
		categories text[] DEFAULT NULL)
	RETURNS SETOF event_store.event
	AS 'MODULE_PATHNAME', 'read_all'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

	CREATE FUNCTION event_store.read_category(
		category text,
		after_position bigint DEFAULT 0,
		max_count bigint DEFAULT 1000,
		consumer_group_member integer DEFAULT NULL,
		consumer_group_size integer DEFAULT NULL,
		event_types text[] DEFAULT NULL)
	RETURNS SETOF event_store.event
	AS 'MODULE_PATHNAME', 'read_category'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

	REVOKE ALL ON FUNCTION
		event_store.read_all(bigint, bigint, text[], text[]),
		event_store.read_category(text, bigint, bigint, integer, integer, text[])
		FROM PUBLIC;

	PERFORM event_store.carry_privileges(all_acl,
		'event_store.read_all(bigint, bigint, text[], text[])');
	PERFORM event_store.carry_privileges(category_acl,
		'event_store.read_category(text, bigint, bigint, integer, integer, text[])');
END
$carry$;

DROP FUNCTION event_store.carry_privileges(aclitem[], regprocedure);

/*
 * Where this transaction's last read_all or read_category call got to:
 * every event at or below it that the call had to return, it returned.
 * NULL when this transaction has made no such call.
 */
CREATE FUNCTION event_store.last_read_position()
RETURNS bigint
AS 'MODULE_PATHNAME', 'last_read_position'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

/*
 * Wait until an event after a position (of a category, of given types) is
 * readable by the global log; its position, or NULL when the timeout
 * passed first.
 */
CREATE FUNCTION event_store.wait_for_event(
	after_position bigint,
	timeout interval DEFAULT '30 seconds',
	category text DEFAULT NULL,
	event_types text[] DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'wait_for_event'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

/*
 * What holds the global log back: the lowest position whose transaction is
 * still open, and the process of that transaction (NULL if it is a
 * prepared transaction or has ended since).
 */
CREATE FUNCTION event_store.log_holder(OUT "position" bigint, OUT pid integer)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'log_holder'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE VIEW event_store.log_holders WITH (security_invoker = true) AS
SELECT h."position", h.pid, a.usename AS role_name, a.application_name,
	   a.client_addr, a.state, a.xact_start,
	   pg_catalog.now() OPERATOR(pg_catalog.-) a.xact_start AS xact_age,
	   a.state_change, a.query
  FROM event_store.log_holder() h
  LEFT JOIN pg_catalog.pg_stat_activity a
	ON a.pid OPERATOR(pg_catalog.=) h.pid;

/* The highest position stored. */
CREATE FUNCTION event_store.head_position()
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
	SELECT COALESCE(pg_catalog.max(e.global_position), 0::bigint)
	  FROM event_store.events e;
END;

CREATE VIEW event_store.subscriptions WITH (security_invoker = true) AS
SELECT c.subscriber,
	   c."position" AS checkpoint,
	   h.head AS head_position,
	   GREATEST(h.head OPERATOR(pg_catalog.-) c."position", 0::bigint) AS lag_positions,
	   (SELECT pg_catalog.count(*)
		  FROM event_store.events e
		 WHERE e.global_position OPERATOR(pg_catalog.>) c."position") AS lag_events,
	   COALESCE(pg_catalog.now() OPERATOR(pg_catalog.-)
				(SELECT e.created_at
				   FROM event_store.events e
				  WHERE e.global_position OPERATOR(pg_catalog.>) c."position"
				  ORDER BY e.global_position
				  LIMIT 1),
				'0'::interval) AS lag,
	   c.updated_at AS saved_at
  FROM event_store.checkpoints c
 CROSS JOIN LATERAL (SELECT event_store.head_position() AS head) h;

/*
 * The watermark for hot standbys (watermark.c): every position at or below
 * it is in the WAL, stored or never to be.  Kept in a sequence, which a
 * standby replays and can read.
 */
CREATE SEQUENCE event_store.watermark_seq AS bigint
	MINVALUE 0 START WITH 0 NO CYCLE CACHE 1;

CREATE FUNCTION event_store.watermark()
RETURNS bigint
AS 'MODULE_PATHNAME', 'watermark'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION event_store.publish_watermark()
RETURNS bigint
AS 'MODULE_PATHNAME', 'publish_watermark'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- BEGIN parked events

-- END parked events

REVOKE ALL ON FUNCTION
	event_store.last_read_position(),
	event_store.wait_for_event(bigint, interval, text, text[]),
	event_store.log_holder(),
	event_store.head_position(),
	event_store.watermark(),
	event_store.publish_watermark()
	FROM PUBLIC;
REVOKE ALL ON event_store.log_holders, event_store.subscriptions,
	event_store.watermark_seq FROM PUBLIC;

COMMENT ON FUNCTION event_store.read_all(bigint, bigint, text[], text[]) IS
	'Events of the global log after a position, in order; of given types and categories when asked';
COMMENT ON FUNCTION event_store.read_category(text, bigint, bigint, integer, integer, text[]) IS
	'Events of one category after a position, in order; of given types when asked';
COMMENT ON FUNCTION event_store.last_read_position() IS
	'Where this transaction''s last read_all or read_category got to: the checkpoint to save';
COMMENT ON FUNCTION event_store.wait_for_event(bigint, interval, text, text[]) IS
	'Wait until an event after a position is readable by the global log; its position, or NULL on timeout';
COMMENT ON FUNCTION event_store.log_holder() IS
	'The lowest position still open, and the process holding it';
COMMENT ON VIEW event_store.log_holders IS
	'What holds the global log back right now: position, session, transaction age';
COMMENT ON FUNCTION event_store.head_position() IS
	'The highest global position stored';
COMMENT ON VIEW event_store.subscriptions IS
	'Every subscriber''s checkpoint, the log''s head, and the lag';
COMMENT ON SEQUENCE event_store.watermark_seq IS
	'The watermark for hot standbys: every position at or below it is in the WAL';
COMMENT ON FUNCTION event_store.watermark() IS
	'The published watermark (on a standby, as replayed)';
COMMENT ON FUNCTION event_store.publish_watermark() IS
	'Publish the watermark now (on the primary); returns it';
