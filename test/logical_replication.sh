#!/usr/bin/env bash
# test/logical_replication.sh: the events and heads tables published by
# logical replication arrive whole on a subscriber.
#
# The subscriber's apply worker replays the publisher's appends as INSERTs of
# events and INSERTs and UPDATEs of heads, with session_replication_role =
# replica.  The guard triggers fire ALWAYS (so that a superuser's session in
# replica mode cannot rewrite history) and let only logical replication
# workers through; this test shows that replication still works: both
# databases end with the same events and heads, head updates included.
#
# Needs a running server (PGHOST, PGPORT, PGUSER) with the extension
# installed and wal_level = logical; creates and drops its own databases.
# Reports by test/lib.sh.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
pub=es_logical_pub
sub=es_logical_sub

on() { qd "$1" -c "$2"; }

cleanup() {
	on "$sub" "DROP SUBSCRIPTION IF EXISTS es_logical_sub" >/dev/null 2>&1 || true
	on "$pub" "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
	           WHERE slot_name = 'es_logical_sub'" >/dev/null 2>&1 || true
}
trap cleanup EXIT

if [ "$(on postgres "SHOW wal_level")" != logical ]; then
	t_fail "logical replication: the server has wal_level = logical" "$(on postgres "SHOW wal_level")"
	t_done
fi

cleanup
for d in "$pub" "$sub"; do
	dropdb --if-exists "$d" 2>/dev/null
	createdb "$d"
	on "$d" "CREATE EXTENSION event_store"
done

on "$pub" "SELECT count(event_store.append_event('s-' || (i % 5), -2, 'E', to_jsonb(i)))
           FROM generate_series(1, 50) i" >/dev/null
on "$pub" "CREATE PUBLICATION es_logical_pub FOR TABLE event_store.events, event_store.streams"
# In one cluster the slot must exist before the subscription is created.
on "$pub" "SELECT pg_create_logical_replication_slot('es_logical_sub', 'pgoutput')" >/dev/null
on "$sub" "CREATE SUBSCRIPTION es_logical_sub
           CONNECTION 'host=$PGHOST port=$PGPORT dbname=$pub user=$PGUSER'
           PUBLICATION es_logical_pub WITH (create_slot = false, slot_name = 'es_logical_sub')"

# After the initial copy: appends to existing streams (head UPDATEs), new
# streams (head INSERTs) and a batch.
on "$pub" "SELECT count(event_store.append_event('s-' || (i % 5), -2, 'F', to_jsonb(i)))
           FROM generate_series(1, 50) i" >/dev/null
on "$pub" "SELECT event_store.append_event('new-1', 0, 'N', '1')" >/dev/null
on "$pub" "SELECT event_store.append_events('s-1', -1, '[{\"type\": \"B\", \"data\": 1}, {\"type\": \"B\", \"data\": 2}]')" >/dev/null

want=$(es_data_checksums "$pub" | sed -n 1,2p)
got=
for _ in $(seq 300); do
	got=$(es_data_checksums "$sub" | sed -n 1,2p)
	[ "$got" = "$want" ] && break
	sleep 0.1
done

t_eq "logical replication: the subscriber's events and heads equal the publisher's" "$got" "$want"
t_eq "logical replication: events on the subscriber" \
	"$(on "$sub" "SELECT count(*) FROM event_store.events")" 103
t_eq "logical replication: the subscriber's workers reported no error" \
	"$(on "$sub" "SELECT coalesce(sum(apply_error_count + sync_error_count), 0)
	              FROM pg_stat_subscription_stats WHERE subname = 'es_logical_sub'")" 0

# The subscriber mirrors the publisher: when the owner switches the guard off
# on the publisher and truncates, the subscriber's apply worker passes the
# subscriber's guard (which fires ALWAYS, and refuses any other session in
# replica mode) and truncates too.
on "$pub" "BEGIN;
           ALTER TABLE event_store.events DISABLE TRIGGER events_append_only;
           ALTER TABLE event_store.streams DISABLE TRIGGER streams_forward_only;
           TRUNCATE event_store.events, event_store.streams;
           ALTER TABLE event_store.events ENABLE ALWAYS TRIGGER events_append_only;
           ALTER TABLE event_store.streams ENABLE ALWAYS TRIGGER streams_forward_only;
           COMMIT"
left=
for _ in $(seq 300); do
	left=$(on "$sub" "SELECT (SELECT count(*) FROM event_store.events) + (SELECT count(*) FROM event_store.streams)")
	[ "$left" = 0 ] && break
	sleep 0.1
done
t_eq "logical replication: a replicated TRUNCATE passes the subscriber's guard" "$left" 0

cleanup
dropdb "$sub"
dropdb "$pub"
t_done
