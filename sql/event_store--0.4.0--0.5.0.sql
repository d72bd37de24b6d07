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
 * Carry a function's privileges over to the function that replaces it: each
 * grant of the dropped one (but its owner's own) is made again on the new
 * one, by GRANT, so that the roles' dependencies are recorded as for any
 * grant (DROP ROLE refuses a role that still has one).  A grant made by a
 * holder of the grant option becomes the owner's.  A GRANT in an extension
 * script is also recorded as the extension's initial privilege, which
 * pg_dump would then leave out; so the initial privileges of the new
 * function are set back to what its creation and REVOKE made them, and the
 * initial-privilege dependencies those GRANTs recorded (from 17) removed:
 * pg_dump keeps dumping the grants as the user's.
 */
CREATE FUNCTION event_store.carry_privileges(old_acl aclitem[], old_owner oid,
											 new_fn regprocedure)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	g record;
	initial aclitem[];
BEGIN
	IF old_acl IS NULL THEN
		RETURN;
	END IF;
	SELECT i.initprivs INTO initial
	  FROM pg_catalog.pg_init_privs i
	 WHERE i.objoid OPERATOR(pg_catalog.=) new_fn
	   AND i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
	   AND i.objsubid OPERATOR(pg_catalog.=) 0;
	FOR g IN SELECT a.grantee, pg_catalog.bool_or(a.is_grantable) AS grantable
			   FROM pg_catalog.aclexplode(old_acl) a
			  WHERE a.grantee OPERATOR(pg_catalog.<>) old_owner
				AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
			  GROUP BY a.grantee
	LOOP
		EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s%s',
			new_fn,
			CASE WHEN g.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
				 ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END,
			CASE WHEN g.grantable THEN ' WITH GRANT OPTION' ELSE '' END);
	END LOOP;
	UPDATE pg_catalog.pg_init_privs i
	   SET initprivs = initial
	 WHERE i.objoid OPERATOR(pg_catalog.=) new_fn
	   AND i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
	   AND i.objsubid OPERATOR(pg_catalog.=) 0
	   AND initial IS NOT NULL;
	DELETE FROM pg_catalog.pg_shdepend d
	 WHERE d.dbid OPERATOR(pg_catalog.=)
		   (SELECT db.oid FROM pg_catalog.pg_database db
			 WHERE db.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
	   AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
	   AND d.objid OPERATOR(pg_catalog.=) new_fn
	   AND d.deptype OPERATOR(pg_catalog.=) 'i';
END
$fn$;

DO $carry$
DECLARE
	all_acl		aclitem[];
	category_acl aclitem[];
	all_owner	oid;
	category_owner oid;
BEGIN
	SELECT p.proacl, p.proowner INTO all_acl, all_owner FROM pg_catalog.pg_proc p
	 WHERE p.oid OPERATOR(pg_catalog.=)
		   'event_store.read_all(bigint, bigint)'::pg_catalog.regprocedure;
	SELECT p.proacl, p.proowner INTO category_acl, category_owner FROM pg_catalog.pg_proc p
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

	PERFORM event_store.carry_privileges(all_acl, all_owner,
		'event_store.read_all(bigint, bigint, text[], text[])');
	PERFORM event_store.carry_privileges(category_acl, category_owner,
		'event_store.read_category(text, bigint, bigint, integer, integer, text[])');
END
$carry$;

DROP FUNCTION event_store.carry_privileges(aclitem[], oid, regprocedure);

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
	timeout interval DEFAULT '1 second',
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

/*
 * Dumped with the data, so that the standbys of a restored store read what
 * it holds before its first append: every position at or below the dumped
 * watermark is in the dump.
 */
SELECT pg_catalog.pg_extension_config_dump('event_store.watermark_seq', '');

CREATE FUNCTION event_store.watermark()
RETURNS bigint
AS 'MODULE_PATHNAME', 'watermark'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION event_store.publish_watermark()
RETURNS bigint
AS 'MODULE_PATHNAME', 'publish_watermark'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- BEGIN parked events

/*
 * Parked events (poison messages).  A projection that cannot apply an event
 * would fail every batch from its checkpoint at that same event, for ever.
 * Instead it applies each event of a batch inside a savepoint; when an apply
 * fails, it rolls back to the savepoint, parks the event with its error
 * (park_event) and goes on; and it saves its checkpoint at the end of the
 * batch, in the same transaction.  The applied events, the parkings and the
 * checkpoint then commit together or not at all, so every event of the batch
 * is applied once or parked once, never both, never neither: exactly-once
 * holds for every event that is not parked.
 *
 * A parked event is replayed later, once its cause is fixed: in one
 * transaction, a replayer takes the subscriber's lock (the one its batches
 * take), reads the parked events (read_parked), applies each and unparks it
 * (unpark_event).  unpark_event deletes the parking and says whether it did.
 * A second replayer of the same event, in a transaction of its own, blocks
 * on that row until the first one ends, and then gets false (under
 * REPEATABLE READ or SERIALIZABLE, 40001) if the first committed: it must
 * roll back what it applied.  An event is therefore applied by at most one
 * replay that commits, and a replay that fails again parks it again
 * (park_event counts the attempts).
 *
 * A parking names its event by global position and keeps no copy of it.
 * read_parked shows the event as the read functions would show it now: with
 * the caller's privileges and row-level security, and without what a delete,
 * truncation, retention limit, erasure or purge has hidden or removed since
 * it was parked (then its event columns are NULL, and the parking still
 * shows, for a replayer to unpark).  park_event refuses a position where the
 * caller can read no event, by the same rule.  There is no foreign key to
 * the events: an event may be erased or purged while it is parked.
 *
 * The functions run with the caller's rights (SECURITY INVOKER): a
 * projection role needs SELECT on the events, and SELECT, INSERT, UPDATE and
 * DELETE on parked_events, as on checkpoints.  The table is kept by pg_dump.
 */
CREATE TABLE event_store.parked_events (
	subscriber	text NOT NULL,
	global_position bigint NOT NULL,
	error		text NOT NULL,
	attempts	integer NOT NULL DEFAULT 1,
	parked_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT parked_events_pkey PRIMARY KEY (subscriber, global_position),
	CONSTRAINT parked_events_global_position_check
		CHECK (global_position OPERATOR(pg_catalog.>=) 1),
	CONSTRAINT parked_events_attempts_check
		CHECK (attempts OPERATOR(pg_catalog.>=) 1)
);

SELECT pg_catalog.pg_extension_config_dump('event_store.parked_events', '');

/*
 * Park an event a subscriber could not apply, with its error; parking it
 * again replaces the error and the time and counts one more attempt.
 * Returns the attempts.  PL/pgSQL only to raise its errors: NULL arguments
 * (22004), and a position where the caller can read no event (P0002).
 */
CREATE FUNCTION event_store.park_event(
	subscriber text,
	global_position bigint,
	error text)
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	parked_attempts integer;
BEGIN
	IF park_event.subscriber IS NULL OR park_event.global_position IS NULL
	   OR park_event.error IS NULL THEN
		RAISE EXCEPTION 'subscriber, global_position and error must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;

	IF NOT EXISTS (
		SELECT FROM event_store.events e
		 WHERE e.global_position OPERATOR(pg_catalog.=) park_event.global_position
		   AND e.version OPERATOR(pg_catalog.>=)
			   event_store.first_visible_version(e.stream_id)) THEN
		RAISE EXCEPTION 'no event at global position %', park_event.global_position
			USING ERRCODE = 'no_data_found',
				  DETAIL = 'No event that the current role can read is stored at that position.',
				  HINT = 'Park an event that read_all or read_category returned.';
	END IF;

	INSERT INTO event_store.parked_events AS p (subscriber, global_position, error)
	VALUES (park_event.subscriber, park_event.global_position, park_event.error)
	ON CONFLICT ON CONSTRAINT parked_events_pkey DO UPDATE
	   SET error = excluded.error,
		   attempts = p.attempts OPERATOR(pg_catalog.+) 1,
		   parked_at = pg_catalog.now()
	RETURNING p.attempts INTO parked_attempts;

	RETURN parked_attempts;
END;
$$;

/*
 * A subscriber's parked events after a position, in position order, with
 * each event as the read functions show it now (NULL event columns when
 * they show nothing any more).  NULL max_count: no limit; NULL
 * after_position: from the start.  A plain SQL function, inlined into the
 * calling query.
 */
CREATE FUNCTION event_store.read_parked(
	subscriber text,
	max_count bigint DEFAULT 100,
	after_position bigint DEFAULT 0)
RETURNS TABLE (
	global_position bigint,
	stream_id	text,
	version		bigint,
	event_id	uuid,
	event_type	text,
	data		jsonb,
	metadata	jsonb,
	created_at	timestamptz,
	error		text,
	attempts	integer,
	parked_at	timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER
BEGIN ATOMIC
	SELECT p.global_position, e.stream_id, e.version, e.event_id,
		   e.event_type, e.data, e.metadata, e.created_at,
		   p.error, p.attempts, p.parked_at
	  FROM event_store.parked_events p
	  LEFT JOIN event_store.events e
		ON e.global_position OPERATOR(pg_catalog.=) p.global_position
	   AND e.version OPERATOR(pg_catalog.>=)
		   event_store.first_visible_version(e.stream_id)
	 WHERE p.subscriber OPERATOR(pg_catalog.=) read_parked.subscriber
	   AND p.global_position OPERATOR(pg_catalog.>)
		   COALESCE(read_parked.after_position, 0::bigint)
	 ORDER BY p.global_position
	 LIMIT read_parked.max_count;
END;

/*
 * Remove a parking; true if this call removed it.  A replayer applies the
 * event and unparks it in one transaction, and commits only on true: false
 * means another replayer unparked it first.  NULL arguments return NULL.
 */
CREATE FUNCTION event_store.unpark_event(subscriber text, global_position bigint)
RETURNS boolean
LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY INVOKER
BEGIN ATOMIC
	WITH unparked AS (
		DELETE FROM event_store.parked_events p
		 WHERE p.subscriber OPERATOR(pg_catalog.=) unpark_event.subscriber
		   AND p.global_position OPERATOR(pg_catalog.=) unpark_event.global_position
		RETURNING p.global_position)
	SELECT EXISTS (SELECT FROM unparked);
END;

REVOKE ALL ON event_store.parked_events FROM PUBLIC;
REVOKE ALL ON FUNCTION
	event_store.park_event(text, bigint, text),
	event_store.read_parked(text, bigint, bigint),
	event_store.unpark_event(text, bigint)
	FROM PUBLIC;

COMMENT ON TABLE event_store.parked_events IS
	'Events a subscriber could not apply, parked with their error until a replay applies them';
COMMENT ON COLUMN event_store.parked_events.global_position IS
	'The parked event''s global position (no copy of the event is kept)';
COMMENT ON COLUMN event_store.parked_events.error IS
	'The error of the last failed attempt';
COMMENT ON COLUMN event_store.parked_events.attempts IS
	'How many times the event was parked';
COMMENT ON COLUMN event_store.parked_events.parked_at IS
	'When the event was last parked (the start of that transaction)';
COMMENT ON FUNCTION event_store.park_event(text, bigint, text) IS
	'Park an event a subscriber could not apply, with its error; returns the attempts so far';
COMMENT ON FUNCTION event_store.read_parked(text, bigint, bigint) IS
	'A subscriber''s parked events after a position, in order: each error, and the event as the read functions show it now';
COMMENT ON FUNCTION event_store.unpark_event(text, bigint) IS
	'Remove a parking; true if this call removed it (a replayer commits only then)';

-- END parked events

/*
 * A first watermark, so that standbys of a store updated to 0.5.0 read what
 * it already has before the next append.
 */
SELECT event_store.publish_watermark();

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
