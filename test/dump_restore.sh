#!/usr/bin/env bash
# test/dump_restore.sh: pg_dump and pg_restore keep every event, head,
# checkpoint, snapshot and position, and appends continue at the right versions and
# positions.
#
# Then the same for a store whose streams went through the lifecycle (a
# second pair of databases): a soft-deleted stream, a deleted one appended to
# again, a tombstoned one, a truncated one, one with a retention limit (part
# of its hidden events purged), an erased one, a redacted event, and heads at
# version 0 (tombstoned, or given a retention, before a first event).  After the
# restore, the restored store must answer every read exactly as the source
# does (and as expected), keep the erasure audit and its sequence, the
# $lifecycle events in order, and take the same appends and lifecycle
# operations with the same results.
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
t_eq "restore: the watermark for standbys is as dumped, covering every restored event" \
	"$(qd "$dst" -c "SELECT event_store.watermark() || ' ' || (event_store.watermark() = event_store.head_position())")" \
	"$(qd "$src" -c "SELECT event_store.watermark()") true"

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

# ---- The stream lifecycle ----
lsrc=es_dump_lc_src
ldst=es_dump_lc_dst
ldump=$work/dump_lc
dropdb --if-exists "$lsrc" 2>/dev/null
dropdb --if-exists "$ldst" 2>/dev/null
createdb "$lsrc"
qd "$lsrc" >/dev/null <<'SQL'
CREATE EXTENSION event_store;
CREATE FUNCTION pg_temp.batch(a int, b int) RETURNS jsonb LANGUAGE sql
RETURN (SELECT jsonb_agg(jsonb_build_object('type', 'E', 'data', i)) FROM generate_series(a, b) i);
-- At most 3 events; purged, then 2 more appended (10..12 show, 8 and 9 are
-- hidden and still stored).
SELECT event_store.append_events('lc-ret', 0, pg_temp.batch(1, 10));
SELECT event_store.set_stream_retention('lc-ret', 3, '1 day');
SELECT event_store.purge();
SELECT event_store.append_events('lc-ret', 10, pg_temp.batch(11, 12));
-- Soft-deleted at 5 (version 5 with a known id); and deleted at 3, then
-- appended to (4 and 5 show); their hidden events are still stored.
SELECT event_store.append_events('lc-del', 0, pg_temp.batch(1, 4));
SELECT event_store.append_event('lc-del', 4, 'E', '5', NULL, '00000000-0000-7000-8000-00000000d005');
SELECT event_store.save_snapshot('lc-del', 5, '{"n": 5}');
SELECT event_store.delete_stream('lc-del', 5);
SELECT event_store.append_events('lc-again', 0, pg_temp.batch(1, 3));
SELECT event_store.delete_stream('lc-again', 3);
SELECT event_store.append_events('lc-again', 0, pg_temp.batch(4, 5));
-- Tombstoned, with events of known ids stored before.
SELECT event_store.append_events('lc-tomb', 0, '[
	{"type": "A", "data": 1, "id": "00000000-0000-7000-8000-00000000d001"},
	{"type": "B", "data": 2, "id": "00000000-0000-7000-8000-00000000d002"}]');
SELECT event_store.tombstone_stream('lc-tomb', 2);
-- Truncated before 4: 1..3 hidden, still stored.
SELECT event_store.append_events('lc-trunc', 0, pg_temp.batch(1, 10));
SELECT event_store.truncate_stream('lc-trunc', 4);
-- Erased, and one event of another stream redacted.
SELECT event_store.append_events('pii-1', 0, pg_temp.batch(1, 3));
SELECT event_store.erase_stream('pii-1', 'erasure request 1');
SELECT event_store.append_events('pii-2', 0, '[
	{"type": "A", "data": {"email": "ann@example.com"}, "metadata": {"ip": "192.0.2.1"},
	 "id": "00000000-0000-7000-8000-00000000d101"},
	{"type": "B", "data": {"n": 2}}]');
SELECT event_store.redact_event('00000000-0000-7000-8000-00000000d101', 'erasure request 2',
	'{"email": "redacted"}');
SELECT event_store.append_events('pii-3', 0, pg_temp.batch(1, 2));
-- Heads at version 0: a stream tombstoned before its first event, and one
-- given a retention limit before it.
SELECT event_store.tombstone_stream('lc-none', 0);
SELECT event_store.set_stream_retention('lc-pre', 2);
SQL

pg_dump -Fc -f "$ldump" "$lsrc"
createdb "$ldst"
pg_restore -d "$ldst" "$ldump"

# Run SQL on both databases: pass when the restored store answers as the
# source does, and, given WANT, that answer is WANT.
# same NAME SQL [WANT]
same() {
	local a b
	a=$(qd "$lsrc" -c "$2" 2>&1) || a="ERROR: $a"
	b=$(qd "$ldst" -c "$2" 2>&1) || b="ERROR: $b"
	if [ "$b" != "$a" ]; then
		t_fail "$1" "restored '$b', source '$a'"
	elif [ $# -ge 3 ] && [ "$b" != "$3" ]; then
		t_fail "$1" "got '$b' on both, expected '$3'"
	else
		t_ok "$1"
	fi
}
# The same error (or "ok") on both databases.
same_sqlstate() {
	local a b
	a=$(es_sqlstate "$lsrc" "$2")
	b=$(es_sqlstate "$ldst" "$2")
	if [ "$b" != "$a" ]; then
		t_fail "$1" "restored '$b', source '$a'"
	elif [ "$b" != "$3" ]; then
		t_fail "$1" "got '$b' on both, expected '$3'"
	else
		t_ok "$1"
	fi
}

t_eq "lifecycle restore: every event, head, checkpoint and the position sequence are as dumped" \
	"$(es_data_checksums "$ldst")" "$(es_data_checksums "$lsrc")"
same "lifecycle restore: the heads' lifecycle columns are as dumped" \
	"SELECT string_agg(format('%s:%s:%s:%s:%s:%s', stream_id, version, visible_from, tombstoned,
	        max_count, max_age), ',' ORDER BY stream_id) FROM event_store.streams" \
	'$lifecycle:9:1:f::,lc-again:5:4:f::,lc-del:5:6:f::,lc-none:0:1:t::,lc-pre:0:1:f:2:,lc-ret:12:1:f:3:1 day,lc-tomb:2:3:t::,lc-trunc:10:4:f::,pii-1:3:4:t::,pii-2:2:1:f::,pii-3:2:1:f::'
same "lifecycle restore: stream_info is the same for every stream" \
	"SELECT string_agg(format('%s:%s', s.stream_id, i), ',' ORDER BY s.stream_id)
	   FROM event_store.streams s, event_store.stream_info(s.stream_id) i WHERE s.stream_id NOT LIKE '\$%'"
same "lifecycle restore: the hidden events not purged are still stored" \
	"SELECT string_agg(stream_id || '/' || version, ',' ORDER BY global_position) FROM event_store.events
	  WHERE stream_id IN ('lc-del', 'lc-again', 'lc-ret', 'lc-trunc')
	    AND version < event_store.first_visible_version(stream_id)" \
	'lc-ret/8,lc-ret/9,lc-del/1,lc-del/2,lc-del/3,lc-del/4,lc-del/5,lc-again/1,lc-again/2,lc-again/3,lc-trunc/1,lc-trunc/2,lc-trunc/3'

# Reads: read_stream forwards and backwards, read_all, read_category.
for s in lc-del lc-again lc-tomb lc-ret lc-trunc pii-1 pii-2; do
	case $s in
	lc-del | lc-tomb | pii-1) want= ;;
	lc-again) want=4,5 ;;
	lc-ret) want=10,11,12 ;;
	lc-trunc) want=4,5,6,7,8,9,10 ;;
	pii-2) want=1,2 ;;
	esac
	same "lifecycle restore: read_stream('$s') shows versions [$want]" \
		"SELECT string_agg(version::text, ',' ORDER BY version) FROM event_store.read_stream('$s')" "$want"
	same "lifecycle restore: read_stream('$s') backwards shows versions [$want]" \
		"SELECT string_agg(version::text, ',' ORDER BY version)
		   FROM event_store.read_stream('$s', NULL, NULL, true)" "$want"
done
same "lifecycle restore: read_all returns the same events, hidden ones left out" \
	"SELECT string_agg(format('%s/%s@%s', stream_id, version, global_position), ',' ORDER BY global_position)
	   FROM event_store.read_all(0, NULL) WHERE stream_id NOT LIKE '\$%'"
same "lifecycle restore: read_all shows the expected versions of each stream" \
	"SELECT string_agg(stream_id || ':' || vs, ',' ORDER BY stream_id)
	   FROM (SELECT stream_id, string_agg(version::text, '.' ORDER BY global_position) vs
	           FROM event_store.read_all(0, NULL) WHERE stream_id NOT LIKE '\$%' GROUP BY stream_id) r" \
	'lc-again:4.5,lc-ret:10.11.12,lc-trunc:4.5.6.7.8.9.10,pii-2:1.2,pii-3:1.2'
same "lifecycle restore: read_category('lc') returns the same events, hidden ones left out" \
	"SELECT string_agg(stream_id || '/' || version, ',' ORDER BY global_position)
	   FROM event_store.read_category('lc', 0, NULL)" \
	'lc-ret/10,lc-ret/11,lc-ret/12,lc-again/4,lc-again/5,lc-trunc/4,lc-trunc/5,lc-trunc/6,lc-trunc/7,lc-trunc/8,lc-trunc/9,lc-trunc/10'

# The erasure audit, its sequence, the redaction, the lifecycle events.
same "lifecycle restore: the erasure audit rows are as dumped" \
	"SELECT string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s|%s|%s', erasure_id, erased_at, erased_by, operation,
	        stream_id, event_id, event_count, first_position, last_position, reason), ',' ORDER BY erasure_id)
	   FROM event_store.erasures"
same "lifecycle restore: the erasures are erase_stream of pii-1 and redact_event in pii-2" \
	"SELECT string_agg(format('%s:%s:%s:%s', erasure_id, operation, stream_id, event_count), ',' ORDER BY erasure_id)
	   FROM event_store.erasures" '1:erase_stream:pii-1:3,2:redact_event:pii-2:1'
same "lifecycle restore: the erasure id sequence is as dumped" \
	"SELECT format('%s/%s', last_value, is_called) FROM event_store.erasures_erasure_id_seq" 2/t
same "lifecycle restore: the redacted event keeps its redacted data, position, version and type" \
	"SELECT format('%s %s %s %s %s', version, event_type, data, metadata,
	        global_position = (SELECT first_position FROM event_store.erasures WHERE erasure_id = 2))
	   FROM event_store.read_stream('pii-2') WHERE event_id = '00000000-0000-7000-8000-00000000d101'" \
	'1 A {"email": "redacted"}  t'
same "lifecycle restore: the redacted and erased data is stored nowhere" \
	"SELECT count(*) FROM event_store.events
	  WHERE data::text LIKE '%ann@%' OR metadata::text LIKE '%192.0.2.1%' OR stream_id IN ('pii-1', 'lc-tomb')" 0
same "lifecycle restore: the \$lifecycle events are as dumped, in order" \
	"SELECT string_agg(format('%s:%s:%s:%s', version, global_position, event_type, data), ',' ORDER BY version)
	   FROM event_store.read_stream('\$lifecycle')"
same "lifecycle restore: the \$lifecycle events' operations, in order (versions and positions agree)" \
	"SELECT string_agg(event_type || ':' || (data->>'stream_id'), ',' ORDER BY global_position)
	   || ' ' || bool_and(version = rn)::text
	   FROM (SELECT *, row_number() OVER (ORDER BY global_position) rn
	           FROM event_store.read_all(0, NULL) WHERE stream_id = '\$lifecycle') l" \
	'$retention:lc-ret,$deleted:lc-del,$deleted:lc-again,$tombstoned:lc-tomb,$truncated:lc-trunc,$erased:pii-1,$redacted:pii-2,$tombstoned:lc-none,$retention:lc-pre true'

# Writes after the restore, done on both databases alike.
same_sqlstate "lifecycle restore: an append to the tombstoned stream fails with VE003" \
	"SELECT event_store.append_event('lc-tomb', -2, 'X', '1')" VE003
same_sqlstate "lifecycle restore: an append to the tombstoned stream at its old head fails with VE003" \
	"SELECT event_store.append_event('lc-tomb', 2, 'X', '1')" VE003
same_sqlstate "lifecycle restore: a retry of an event stored before the tombstone fails with VE003" \
	"SELECT event_store.append_event('lc-tomb', 1, 'B', '2', NULL, '00000000-0000-7000-8000-00000000d002')" VE003
same_sqlstate "lifecycle restore: a retry of the tombstoned stream's first batch fails with VE003" \
	"SELECT event_store.append_events('lc-tomb', 0, '[
		{\"type\": \"A\", \"data\": 1, \"id\": \"00000000-0000-7000-8000-00000000d001\"},
		{\"type\": \"B\", \"data\": 2, \"id\": \"00000000-0000-7000-8000-00000000d002\"}]')" VE003
same_sqlstate "lifecycle restore: the stream tombstoned before its first event refuses appends with VE003" \
	"SELECT event_store.append_event('lc-none', 0, 'X', '1')" VE003
same_sqlstate "lifecycle restore: the erased stream refuses appends with VE003" \
	"SELECT event_store.append_event('pii-1', 0, 'X', '1')" VE003
same_sqlstate "lifecycle restore: 'exists' (-1) is refused for the soft-deleted stream" \
	"SELECT event_store.append_event('lc-del', -1, 'X', '1')" VE001
same "lifecycle restore: a retry of an event stored before the soft delete is still a repeat" \
	"SELECT event_store.append_event('lc-del', 4, 'E', '5', NULL, '00000000-0000-7000-8000-00000000d005')" 5
same "lifecycle restore: an append to the soft-deleted stream expecting no stream continues at head + 1" \
	"SELECT event_store.append_event('lc-del', 0, 'Again', '1')" 6
same "lifecycle restore: the soft-deleted stream then shows only the new event" \
	"SELECT string_agg(version || ':' || event_type, ',' ORDER BY version) FROM event_store.read_stream('lc-del')" \
	6:Again
same "lifecycle restore: an append to the retention stream keeps it at 3 events" \
	"SELECT event_store.append_event('lc-ret', 12, 'E', '13');
	 SELECT string_agg(version::text, ',' ORDER BY version) FROM event_store.read_stream('lc-ret');
	 SELECT string_agg(version::text, ',' ORDER BY global_position)
	   FROM event_store.read_category('lc', 0, NULL) WHERE stream_id = 'lc-ret'" \
	"13
11,12,13
11,12,13"
same "lifecycle restore: the stream given a retention before its first event keeps it" \
	"SELECT event_store.append_events('lc-pre', 0, '[{\"type\": \"P\", \"data\": 1}, {\"type\": \"P\", \"data\": 2},
	        {\"type\": \"P\", \"data\": 3}]');
	 SELECT string_agg(version::text, ',' ORDER BY version) FROM event_store.read_stream('lc-pre')" "3
2,3"
same_sqlstate "lifecycle restore: truncating the truncated stream lower is refused" \
	"SELECT event_store.truncate_stream('lc-trunc', 3)" 22023
same "lifecycle restore: a new erasure gets the next erasure id (no duplicate key)" \
	"SELECT event_store.erase_stream('pii-3', 'erasure request 3');
	 SELECT erasure_id > 2 AND erasure_id = (SELECT max(erasure_id) FROM event_store.erasures)
	   FROM event_store.erasures WHERE stream_id = 'pii-3';
	 SELECT count(*) = count(DISTINCT erasure_id) FROM event_store.erasures" "2
t
t"
same "lifecycle restore: a new lifecycle event continues \$lifecycle, and read_all hides the stream at once" \
	"SELECT event_store.delete_stream('pii-2', 2);
	 SELECT version || ':' || event_type || ':' || (data->>'stream_id')
	   FROM event_store.read_stream('\$lifecycle', NULL, 1, true);
	 SELECT count(*) FROM event_store.read_all(0, NULL) WHERE stream_id = 'pii-2'" "2
11:\$deleted:pii-2
0"
same "lifecycle restore: purge removes the same hidden events" \
	"SELECT event_store.purge();
	 SELECT string_agg(stream_id || '/' || version, ',' ORDER BY global_position) FROM event_store.events
	  WHERE stream_id NOT LIKE '\$%'" \
	"$(qd "$lsrc" -c "SELECT count(*) FROM event_store.events
	                  WHERE version < event_store.first_visible_version(stream_id)")
lc-ret/11,lc-ret/12,lc-again/4,lc-again/5,lc-trunc/4,lc-trunc/5,lc-trunc/6,lc-trunc/7,lc-trunc/8,lc-trunc/9,lc-trunc/10,lc-del/6,lc-ret/13,lc-pre/2,lc-pre/3"
# (created_at, erased_at and the generated event ids of what was written
# after the restore differ.)
same "lifecycle restore: after it all, the two stores hold the same events, heads, erasures and positions" \
	"SELECT md5(string_agg(format('%s|%s|%s|%s|%s|%s', global_position, stream_id, version,
	        event_type, data, metadata), ',' ORDER BY global_position)) FROM event_store.events;
	 SELECT md5(string_agg(format('%s', s), ',' ORDER BY stream_id)) FROM event_store.streams s;
	 SELECT string_agg(format('%s|%s|%s|%s|%s|%s|%s', erasure_id, operation, stream_id, event_id,
	        event_count, first_position, last_position), ',' ORDER BY erasure_id) FROM event_store.erasures;
	 SELECT last_value FROM event_store.events_global_position_seq"

dropdb "$lsrc"
dropdb "$ldst"
t_done
