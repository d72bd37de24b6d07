-- wait_for_event: returns the position of the first event after a position
-- (of a category, of given types) that a read of the global log would
-- return, as soon as there is one, or NULL when the timeout passes.  The
-- waits run in other sessions, through dblink; this session appends.
\i test/sql/helpers.inc
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;

-- A connection string to this database, as this session is connected.
CREATE FUNCTION pg_temp.conninfo() RETURNS text LANGUAGE sql AS $$
	SELECT string_agg(k || '=''' || replace(replace(v, '\', '\\'), '''', '\''') || '''', ' ')
	  FROM (VALUES ('dbname', current_database()),
				   ('user', current_user),
				   ('port', current_setting('port')),
				   ('host', COALESCE(host(inet_server_addr()),
									 split_part(current_setting('unix_socket_directories'), ',', 1))))
		   AS c(k, v) $$;
-- Start a wait in a session of its own (w), and collect its result.
CREATE FUNCTION pg_temp.start_wait(after bigint, timeout interval,
								   category text DEFAULT NULL,
								   event_types text[] DEFAULT NULL)
RETURNS integer LANGUAGE sql AS $$
	SELECT dblink_send_query('w',
		format('SELECT event_store.wait_for_event(%s, %L, %L, %L)',
			   after, timeout, category, event_types)) $$;
CREATE FUNCTION pg_temp.wait_result() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	result bigint;
BEGIN
	SELECT r.pos INTO result FROM dblink_get_result('w') AS r(pos bigint);
	PERFORM FROM dblink_get_result('w') AS r(pos bigint);
	RETURN result;
END $$;
-- Append in another session (x), which commits, while this one may hold a
-- transaction open.
CREATE FUNCTION pg_temp.append_elsewhere(stream_id text, event_type text)
RETURNS bigint LANGUAGE sql AS $$
	SELECT v FROM dblink('x',
		format('SELECT event_store.append_event(%L, -2, %L, %L)', stream_id, event_type, '{}'))
		AS r(v bigint) $$;
CREATE FUNCTION pg_temp.last_taken() RETURNS bigint LANGUAGE sql AS $$
	SELECT CASE WHEN is_called THEN last_value ELSE 0 END
	  FROM event_store.events_global_position_seq $$;

SELECT dblink_connect('w', pg_temp.conninfo());
SELECT dblink_connect('x', pg_temp.conninfo());

--
-- An event already readable: the wait returns at once (the statement
-- timeout is a guard: the waits below would otherwise last an hour).
--
SELECT pg_temp.last_taken() AS base \gset
SELECT event_store.append_event('fwi-1', 0, 'Ready', '{}');
SELECT event_store.append_event('fwi-1', 1, 'Other', '{}');
SELECT event_store.append_event('fwi-2', 0, 'Ready', '{}');
SET statement_timeout = '30s';
SELECT event_store.wait_for_event(:base, '1 hour') - :base AS immediate;
SELECT event_store.wait_for_event(:base, '0') - :base AS zero_timeout_still_looks;
SELECT event_store.wait_for_event(:base, '1 hour', 'fwi') - :base AS category;
SELECT event_store.wait_for_event(:base + 1, '1 hour', NULL, ARRAY['Ready']) - :base
	AS past_other_type;
SELECT event_store.wait_for_event(:base + 1, '1 hour', 'fwi', ARRAY['Ready', 'X']) - :base
	AS category_and_type;
SELECT event_store.wait_for_event(after_position => :base + 2, timeout => '1 hour',
								  event_types => ARRAY['Ready']) - :base AS by_name;
-- In a READ COMMITTED transaction block too.
BEGIN;
SELECT event_store.wait_for_event(:base, '1 hour') - :base AS in_transaction;
COMMIT;
RESET statement_timeout;

--
-- Nothing to find: NULL once the timeout has passed.
--
SELECT clock_timestamp() AS t0 \gset
SELECT event_store.wait_for_event(pg_temp.last_taken(), '100ms') IS NULL AS timed_out;
SELECT clock_timestamp() - :'t0'::timestamptz >= '100ms' AS waited_the_timeout;
SELECT event_store.wait_for_event(pg_temp.last_taken(), '0') IS NULL AS zero_timeout;
-- Events exist after the position, but none the waiter wants.
SELECT event_store.wait_for_event(:base, '100ms', NULL, ARRAY['NoSuchType']) IS NULL
	AS no_such_type;
SELECT event_store.wait_for_event(:base, '100ms', NULL, '{}') IS NULL AS empty_types;
SELECT event_store.wait_for_event(:base, '100ms', 'nosuchcategory') IS NULL AS no_such_category;
SELECT event_store.wait_for_event(:base, '100ms', 'fwi', ARRAY['Other', 'Ready'])
	- :base AS in_category;
SELECT event_store.wait_for_event(:base, '100ms', 'fwi-1') IS NULL AS stream_id_is_no_category;

--
-- A commit ends a wait.
--
SELECT pg_temp.last_taken() AS head \gset
SELECT pg_temp.start_wait(:head, '60s');
SELECT pg_sleep(0.3);
SELECT dblink_is_busy('w') AS waiting;
SELECT event_store.append_event('fwn-1', 0, 'New', '{}');
SELECT pg_temp.wait_result() - :head AS woken_by_commit;

--
-- An event of a type the waiter does not want does not end its wait.
--
SELECT pg_temp.last_taken() AS head \gset
SELECT pg_temp.start_wait(:head, '60s', NULL, ARRAY['Wanted']);
SELECT event_store.append_event('fwt-1', 0, 'Unwanted', '{}');
SELECT pg_sleep(0.3);
SELECT dblink_is_busy('w') AS still_waiting;
SELECT event_store.append_event('fwt-1', 1, 'Wanted', '{}');
SELECT pg_temp.wait_result() - :head AS wanted_type;

--
-- Nor does an event of another category.
--
SELECT pg_temp.last_taken() AS head \gset
SELECT pg_temp.start_wait(:head, '60s', 'fwc');
SELECT event_store.append_event('fwo-1', 0, 'Other', '{}');
SELECT event_store.append_event('fwcx-1', 0, 'Other', '{}');
SELECT pg_sleep(0.3);
SELECT dblink_is_busy('w') AS still_waiting;
SELECT event_store.append_event('fwc-1', 0, 'Mine', '{}');
SELECT pg_temp.wait_result() - :head AS own_category;
-- Category and types together.
SELECT pg_temp.last_taken() AS head \gset
SELECT pg_temp.start_wait(:head, '60s', 'fwc', ARRAY['Wanted']);
SELECT event_store.append_event('fwc-1', 1, 'Unwanted', '{}');
SELECT event_store.append_event('fwo-1', 1, 'Wanted', '{}');
SELECT pg_sleep(0.3);
SELECT dblink_is_busy('w') AS still_waiting;
SELECT event_store.append_event('fwc-2', 0, 'Wanted', '{}');
SELECT pg_temp.wait_result() - :head AS own_category_and_type;

--
-- An open transaction holding a lower position holds the wait until it
-- commits, even when a later event is committed: the waiter returns after
-- the commit, with the first event.
--
SELECT pg_temp.last_taken() AS head \gset
SELECT pg_temp.start_wait(:head, '60s');
BEGIN;
SELECT event_store.append_event('fwh-1', 0, 'Held', '{}');
SELECT pg_temp.append_elsewhere('fwh-2', 'Later');
SELECT pg_sleep(0.5);
SELECT dblink_is_busy('w') AS held_by_open_transaction;
COMMIT;
SELECT pg_temp.wait_result() - :head AS held_event_first;
-- A wait for one type is held by an open event of any type: that append's
-- later events, not inserted yet, may be of the type.
SELECT pg_temp.last_taken() AS head \gset
SELECT pg_temp.start_wait(:head, '60s', NULL, ARRAY['Wanted']);
BEGIN;
SELECT event_store.append_event('fwh-3', 0, 'Other', '{}');
SELECT pg_temp.append_elsewhere('fwh-4', 'Wanted');
SELECT pg_sleep(0.5);
SELECT dblink_is_busy('w') AS held_by_open_transaction;
COMMIT;
SELECT pg_temp.wait_result() - :head AS wanted_after_commit;
-- A wait for a category is held by an open event of that category...
SELECT pg_temp.last_taken() AS head \gset
SELECT pg_temp.start_wait(:head, '60s', 'fwp');
BEGIN;
SELECT event_store.append_event('fwp-1', 0, 'Held', '{}');
SELECT pg_temp.append_elsewhere('fwp-2', 'Later');
SELECT pg_sleep(0.5);
SELECT dblink_is_busy('w') AS held_by_open_transaction;
COMMIT;
SELECT pg_temp.wait_result() - :head AS held_event_first;
-- ...but not by one of another category: the waiter returns while this
-- transaction is still open (otherwise it would time out and return NULL).
SELECT pg_temp.last_taken() AS head \gset
SELECT pg_temp.start_wait(:head, '20s', 'fwp');
BEGIN;
SELECT event_store.append_event('fwq-1', 0, 'Open', '{}');
SELECT pg_temp.append_elsewhere('fwp-3', 'Mine');
SELECT pg_temp.wait_result() - :head AS passed_other_category;
COMMIT;

--
-- Rolled-back appends do not end a wait.
--
SELECT pg_temp.last_taken() AS head \gset
SELECT pg_temp.start_wait(:head, '60s');
BEGIN;
SELECT event_store.append_event('fwr-1', 0, 'Lost', '{}');
ROLLBACK;
BEGIN;
SAVEPOINT s;
SELECT event_store.append_event('fwr-2', 0, 'Lost', '{}');
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT pg_sleep(0.3);
SELECT dblink_is_busy('w') AS still_waiting;
SELECT event_store.append_event('fwr-3', 0, 'Kept', '{}');
SELECT pg_temp.wait_result() - :head AS first_committed;

--
-- A wait inside a READ COMMITTED transaction block of the waiter's, which
-- has taken a snapshot already, sees events committed after it.
--
SELECT pg_temp.last_taken() AS head \gset
SELECT dblink_exec('w', 'BEGIN ISOLATION LEVEL READ COMMITTED');
SELECT n >= 0 AS counted FROM dblink('w', 'SELECT count(*) FROM event_store.events') AS r(n bigint);
SELECT pg_temp.start_wait(:head, '60s');
SELECT pg_sleep(0.3);
SELECT dblink_is_busy('w') AS waiting;
SELECT event_store.append_event('fwb-1', 0, 'New', '{}');
SELECT pg_temp.wait_result() - :head AS seen_in_transaction;
SELECT dblink_exec('w', 'COMMIT');

--
-- Events hidden by their stream's lifecycle are not found; the lifecycle
-- event is.
--
SELECT pg_temp.last_taken() AS head \gset
SELECT event_store.append_event('fwd-1', 0, 'Gone', '{}');
SELECT event_store.delete_stream('fwd-1', 1) > 0 AS deleted;
SELECT event_store.wait_for_event(:head, '100ms', 'fwd') IS NULL AS hidden;
SELECT event_store.wait_for_event(:head, '100ms', NULL, ARRAY['Gone']) IS NULL AS hidden;
SET statement_timeout = '30s';
SELECT event_store.wait_for_event(:head, '1 hour', NULL, ARRAY['$deleted']) - :head AS lifecycle_event;
SELECT event_store.wait_for_event(:head, '1 hour') - :head AS first_readable;
RESET statement_timeout;

--
-- Row-level security: a tenant's wait finds only what its reads return.
--
CREATE ROLE es_fw_a;
CREATE ROLE es_fw_b;
GRANT USAGE ON SCHEMA event_store TO es_fw_a, es_fw_b;
GRANT SELECT ON event_store.events TO es_fw_a, es_fw_b;
GRANT EXECUTE ON FUNCTION event_store.wait_for_event(bigint, interval, text, text[]),
	event_store.category(text) TO es_fw_a, es_fw_b;
SELECT pg_temp.last_taken() AS head \gset
SELECT event_store.append_event('fwsb-1', 0, 'T', '{}');
SELECT event_store.append_event('fwsa-1', 0, 'T', '{}');
ALTER TABLE event_store.events ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON event_store.events FOR SELECT TO es_fw_a, es_fw_b
	USING (event_store.category(stream_id) =
		   CASE current_user WHEN 'es_fw_a' THEN 'fwsa' WHEN 'es_fw_b' THEN 'fwsb' END);
SET statement_timeout = '30s';
SET ROLE es_fw_a;
SELECT event_store.wait_for_event(:head, '1 hour') - :head AS tenant_a;
SELECT event_store.wait_for_event(:head, '1 hour', NULL, ARRAY['T']) - :head AS tenant_a_typed;
SELECT event_store.wait_for_event(:head + 2, '100ms') IS NULL AS tenant_a_nothing_more;
RESET ROLE;
SET ROLE es_fw_b;
SELECT event_store.wait_for_event(:head, '1 hour') - :head AS tenant_b;
SELECT event_store.wait_for_event(:head + 1, '100ms') IS NULL AS tenant_b_not_a_event;
RESET ROLE;
RESET statement_timeout;
DROP POLICY tenant ON event_store.events;
ALTER TABLE event_store.events DISABLE ROW LEVEL SECURITY;
DROP OWNED BY es_fw_a, es_fw_b;
DROP ROLE es_fw_a, es_fw_b;

--
-- statement_timeout and cancel end a wait, with their usual errors; the
-- waiting session stays usable.
--
SET statement_timeout = '200ms';
SELECT event_store.wait_for_event(pg_temp.last_taken(), '1 hour');
RESET statement_timeout;
CREATE FUNCTION pg_temp.cancelled_result() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_temp.wait_result();
	RETURN 'not cancelled';
EXCEPTION WHEN query_canceled THEN
	PERFORM FROM dblink_get_result('w', false) AS r(pos bigint);
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT pg_temp.last_taken() AS head \gset
SELECT pg_temp.start_wait(:head, '1 hour');
SELECT pg_sleep(0.3);
SELECT dblink_is_busy('w') AS waiting;
SELECT dblink_cancel_query('w');
SELECT pg_temp.cancelled_result();
SELECT pg_temp.start_wait(:head, '60s');
SELECT event_store.append_event('fwz-1', 0, 'After', '{}');
SELECT pg_temp.wait_result() - :head AS waits_again;

--
-- Bad arguments, and isolation levels whose one snapshot would never show
-- a new event.  Arguments are checked whether or not there is an event to
-- find.
--
SELECT t.label, pg_temp.try(t.sql)
  FROM (VALUES
	('null after_position',         $$SELECT event_store.wait_for_event(NULL, '1s')$$),
	('null timeout',                $$SELECT event_store.wait_for_event(0, NULL)$$),
	('negative timeout',            $$SELECT event_store.wait_for_event(0, '-1s')$$),
	('negative in sum',             $$SELECT event_store.wait_for_event(0, '1 day -25 hours')$$),
	('negative in months',          $$SELECT event_store.wait_for_event(0, '1 mon -31 days')$$),
	('null type, events to find',   $$SELECT event_store.wait_for_event(0, '1s', NULL, ARRAY['Ready', NULL])$$),
	('null type, none to find',     format($$SELECT event_store.wait_for_event(%s, '100ms', NULL, ARRAY[NULL]::text[])$$,
										   pg_temp.last_taken())),
	('null type with category',     format($$SELECT event_store.wait_for_event(%s, '100ms', 'fwi', ARRAY[NULL]::text[])$$,
										   pg_temp.last_taken()))
  ) AS t(label, sql);
-- An infinite timeout is refused (intervals can be infinite from
-- PostgreSQL 17 on; before, the value cannot be written).
SELECT CASE WHEN current_setting('server_version_num')::int >= 170000
			THEN pg_temp.try($$SELECT event_store.wait_for_event(0, 'infinity')$$)
			ELSE '22023: timeout must be finite' END AS infinite_timeout;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT pg_temp.try($$SELECT event_store.wait_for_event(0, '1s')$$);
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT pg_temp.try(format($$SELECT event_store.wait_for_event(%s, '1s')$$, pg_temp.last_taken()));
ROLLBACK;

SELECT dblink_disconnect('w');
SELECT dblink_disconnect('x');
DROP EXTENSION dblink;
