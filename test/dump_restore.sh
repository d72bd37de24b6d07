#!/usr/bin/env bash
# test/dump_restore.sh: pg_dump and pg_restore keep every event, head,
# checkpoint, snapshot and position, and appends continue at the right versions and
# positions.
#
# Needs a running server (PGHOST, PGPORT, PGUSER) with the extension
# installed; creates and drops its own databases.  Reports by test/lib.sh.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
es_test_start dump_restore es_dump_src
src=$db
dst=es_dump_dst
dump=$work/dump

dropdb --if-exists "$dst" 2>/dev/null
qd "$src" -c "SELECT count(event_store.append_event('s-' || (i % 7), -2, 'E', to_jsonb(i),
             jsonb_build_object('i', i))) FROM generate_series(1, 500) i" >/dev/null
qd "$src" -c "SELECT event_store.save_checkpoint('projector', 123)" >/dev/null
qd "$src" -c "SELECT event_store.save_snapshot('s-' || i, 10 * i, jsonb_build_object('i', i))
             FROM generate_series(1, 6) i" >/dev/null
qd "$src" -c "SELECT event_store.append_events('batch', 0,
             (SELECT jsonb_agg(jsonb_build_object('type', 'B', 'data', i)) FROM generate_series(1, 50) i))" >/dev/null

pg_dump -Fc -f "$dump" "$src"
createdb "$dst"
pg_restore -d "$dst" "$dump"

t_eq "restore: every event, head, checkpoint and the position sequence are as dumped" \
	"$(es_data_checksums "$dst")" "$(es_data_checksums "$src")"

snapshots() {
	qd "$1" -c "SELECT string_agg(format('%s@%s=%s', stream_id, version, state), ','
	            ORDER BY stream_id, version) FROM event_store.snapshots"
}
t_eq "restore: every snapshot is as dumped" "$(snapshots "$dst")" "$(snapshots "$src")"
t_eq "restore: the snapshots are there" \
	"$(qd "$dst" -c "SELECT count(*) FROM event_store.snapshots")" 6

# Appends go on at the right version and at a position past every restored one.
t_eq "restore: the next append gets the same version as on the source" \
	"$(qd "$dst" -c "SELECT event_store.append_event('s-1', event_store.stream_version('s-1'), 'After', '1')")" \
	"$(qd "$src" -c "SELECT event_store.append_event('s-1', event_store.stream_version('s-1'), 'After', '1')")"
t_eq "restore: the next position is past every restored one" \
	"$(qd "$dst" -c "SELECT (SELECT global_position FROM event_store.events WHERE event_type = 'After')
                    > (SELECT max(global_position) FROM event_store.events WHERE event_type <> 'After')")" t
stale=$(psql -X -q -At -d "$dst" -c "SELECT event_store.append_event('batch', 0, 'X', '1')" 2>&1 || true)
case "$stale" in
*"wrong expected version"*) t_ok "restore: a stale append is refused with a version conflict" ;;
*) t_fail "restore: a stale append is refused with a version conflict" "$stale" ;;
esac
t_eq "restore: the log is exact (stored, read, distinct, out of order)" \
	"$(es_log_is_exact "$dst")" "551 551 551 0"

dropdb "$src"
dropdb "$dst"
t_done
