#!/usr/bin/env bash
# test/dump_restore.sh: pg_dump and pg_restore keep every event, head,
# checkpoint and position, and appends continue at the right versions and positions.
#
# Needs a running server (PGHOST, PGPORT, PGUSER) with the extension
# installed; creates and drops its own databases.  Prints "ok" or the
# differences, and exits non-zero on failure.

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
src=es_dump_src
dst=es_dump_dst
dump=$(mktemp /tmp/es_dump.XXXXXX)
trap 'rm -f "$dump" "$dump".*' EXIT

q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

dropdb --if-exists "$src" 2>/dev/null
dropdb --if-exists "$dst" 2>/dev/null
createdb "$src"
q "$src" "CREATE EXTENSION event_store"
q "$src" "SELECT count(event_store.append_event('s-' || (i % 7), NULL, 'E', to_jsonb(i),
             jsonb_build_object('i', i))) FROM generate_series(1, 500) i" >/dev/null
q "$src" "SELECT event_store.save_checkpoint('projector', 123)" >/dev/null
q "$src" "SELECT event_store.append_events('batch', 0,
             (SELECT jsonb_agg(jsonb_build_object('type', 'B', 'data', i)) FROM generate_series(1, 50) i))" >/dev/null

pg_dump -Fc -f "$dump" "$src"
createdb "$dst"
pg_restore -d "$dst" "$dump"

before=$(es_data_checksums "$src")
after=$(es_data_checksums "$dst")
fail=0
if [ "$before" != "$after" ]; then
	echo "restored events, heads, checkpoints or position sequence differ"
	fail=1
fi

# Appends go on at the right version and at a position past every restored one.
next_src=$(q "$src" "SELECT event_store.append_event('s-1', event_store.stream_version('s-1'), 'After', '1')")
next_dst=$(q "$dst" "SELECT event_store.append_event('s-1', event_store.stream_version('s-1'), 'After', '1')")
pos_ok=$(q "$dst" "SELECT (SELECT global_position FROM event_store.events WHERE event_type = 'After')
                    > (SELECT max(global_position) FROM event_store.events WHERE event_type <> 'After')")
conflict=$(psql -X -q -At -d "$dst" -c "SELECT event_store.append_event('batch', 0, 'X', '1')" 2>&1 || true)
if [ "$next_src" != "$next_dst" ] || [ "$pos_ok" != t ]; then
	echo "after restore: version $next_dst (expected $next_src), position past restored: $pos_ok"
	fail=1
fi
case "$conflict" in
*"wrong expected version"*) ;;
*) echo "after restore, a stale append was not rejected: $conflict"; fail=1 ;;
esac

dropdb "$src"
dropdb "$dst"
[ "$fail" -eq 0 ] && echo ok
exit "$fail"
