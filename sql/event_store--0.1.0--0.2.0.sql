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
 */

\echo Use "ALTER EXTENSION event_store UPDATE TO '0.2.0'" to load this file. \quit

REVOKE ALL ON FUNCTION
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
