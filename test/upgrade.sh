#!/usr/bin/env bash
# test/upgrade.sh: every released version upgrades, step by step with
# ALTER EXTENSION event_store UPDATE, to the current one without losing or
# changing an event, a head or a checkpoint, and ends with exactly the objects
# a fresh install of the current version has.
#
# For each older version: install it in a new database, store events, heads
# and a checkpoint with the functions that version has, then update one step
# at a time along the path PostgreSQL reports, checking the data after every
# step.  At the end, compare a description of every object of the extension
# (definitions, columns in order, constraints, indexes, triggers and whether
# they are enabled, row-level security, sequence settings and ownership,
# privileges, dump settings) with a fresh install, and check that appends and reads go on at
# the right versions and positions.
#
# The update to 0.4.0 adds the stream lifecycle: after it, every stream
# written before reads exactly as before through read_stream, read_all and
# read_category (nothing hidden, visible_from 1 everywhere; an event whose
# type begins with '$', allowed before 0.4.0, is an ordinary event), and
# every lifecycle function works on those streams.  A stream whose id
# begins with '$' is kept and read as before, and takes no more appends
# (22023); a store with a stream named '$lifecycle', the lifecycle events'
# own, is refused (55000) and left at its version, unchanged.
# A session open across the update sees the lifecycle without reconnecting.
#
# Needs a running server (PGHOST, PGPORT, PGUSER) with the extension
# installed.  Reports by test/lib.sh.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
es_test_start upgrade es_upgrade_new

current=$(q -c "SELECT default_version FROM pg_available_extensions WHERE name = 'event_store'")
mapfile -t older < <(q -c "SELECT version FROM pg_available_extension_versions
                            WHERE name = 'event_store' AND version <> '$current'" | sort -V)

# Everything that makes up the extension's interface, one line per fact.
describe() {
	qd "$1" -c "
WITH members AS (
	SELECT d.classid, d.objid
	  FROM pg_depend d JOIN pg_extension x ON x.oid = d.refobjid
	 WHERE d.refclassid = 'pg_extension'::regclass AND x.extname = 'event_store'
	   AND d.deptype = 'e'),
rels AS (SELECT objid::regclass AS rel FROM members WHERE classid = 'pg_class'::regclass)
SELECT 'member ' || pg_describe_object(classid, objid, 0) FROM members
UNION ALL
SELECT 'function ' || pg_get_functiondef(p.oid) || ' acl ' || COALESCE(p.proacl::text, 'default')
  FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
UNION ALL
SELECT format('relation %s kind %s persistence %s options %s row security %s forced %s acl %s',
			  c.oid::regclass, c.relkind, c.relpersistence, c.reloptions, c.relrowsecurity,
			  c.relforcerowsecurity, COALESCE(c.relacl::text, 'default'))
  FROM pg_class c JOIN rels ON rels.rel = c.oid
UNION ALL
SELECT format('column %s.%s %s %s %s collate %s default %s', a.attrelid::regclass, a.attnum, a.attname,
			  format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN 'not null' END,
			  a.attcollation, pg_get_expr(ad.adbin, ad.adrelid))
  FROM pg_attribute a JOIN rels ON rels.rel = a.attrelid
  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
 WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT format('column of type %s: %s %s %s', t.oid::regtype, a.attnum, a.attname,
			  format_type(a.atttypid, a.atttypmod))
  FROM pg_type t JOIN members m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
  JOIN pg_attribute a ON a.attrelid = t.typrelid AND a.attnum > 0
UNION ALL
SELECT format('type %s owner %s acl %s', t.oid::regtype, t.typowner::regrole,
			  COALESCE(t.typacl::text, 'default'))
  FROM pg_type t JOIN members m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
UNION ALL
SELECT format('policy %s.%s %s %s %s %s', schemaname, tablename, policyname, cmd, roles, qual)
  FROM pg_policies WHERE schemaname = 'event_store'
UNION ALL
SELECT format('owned by %s: %s', d.objid::regclass, pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid))
  FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid IN (SELECT rel FROM rels)
   AND d.deptype = 'a' AND d.refobjsubid <> 0
UNION ALL
SELECT format('constraint %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
  FROM pg_constraint WHERE conrelid IN (SELECT rel FROM rels)
UNION ALL
SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid IN (SELECT rel FROM rels)
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(oid) || ' enabled ' || tgenabled::text FROM pg_trigger
 WHERE tgrelid IN (SELECT rel FROM rels) AND NOT tgisinternal
UNION ALL
SELECT format('sequence %s %s %s %s %s %s %s %s', seqrelid::regclass, seqtypid::regtype, seqstart,
			  seqincrement, seqmin, seqmax, seqcache, seqcycle)
  FROM pg_sequence WHERE seqrelid IN (SELECT rel FROM rels)
UNION ALL
SELECT format('dumped %s where %L', cfg::regclass, cond)
  FROM pg_extension x, unnest(x.extconfig, x.extcondition) AS u(cfg, cond)
 WHERE x.extname = 'event_store'
UNION ALL
SELECT format('initial privileges %s %s', pg_describe_object(i.classoid, i.objoid, i.objsubid), i.initprivs)
  FROM pg_init_privs i JOIN members m ON m.classid = i.classoid AND m.objid = i.objoid
UNION ALL
SELECT format('schema %s acl %s', n.nspname, COALESCE(n.nspacl::text, 'default'))
  FROM pg_namespace n WHERE n.nspname = 'event_store'
ORDER BY 1"
}

# What the read functions return, with the functions every version has:
# each stream forwards, backwards and from a version; the global log; the
# category 'up'.  One line each: rows and a checksum.
reads() {
	qd "$1" -c "
SELECT count(*) || ' ' || md5(string_agg(format('%s/%s/%s/%s/%s', r.stream_id, r.version, r.event_id,
	   r.global_position, r.data), ',' ORDER BY r.stream_id, r.version))
  FROM event_store.streams s, event_store.read_stream(s.stream_id) r;
SELECT count(*) || ' ' || md5(string_agg(format('%s/%s', r.stream_id, r.version), ','
	   ORDER BY r.stream_id, r.version DESC))
  FROM event_store.streams s, event_store.read_stream(s.stream_id, NULL, NULL, true) r;
SELECT count(*) || ' ' || md5(string_agg(format('%s/%s', r.stream_id, r.version), ','
	   ORDER BY r.stream_id, r.version))
  FROM event_store.streams s, event_store.read_stream(s.stream_id, 30, 5) r;
SELECT count(*) || ' ' || md5(string_agg(format('%s/%s/%s', global_position, stream_id, version), ','
	   ORDER BY global_position)) FROM event_store.read_all(0, 100000);
SELECT count(*) || ' ' || md5(string_agg(format('%s/%s/%s', global_position, stream_id, version), ','
	   ORDER BY global_position)) FROM event_store.read_category('up', 0, 100000)"
}

fresh=$(describe "$db")
if [ ${#older[@]} -eq 0 ]; then
	t_fail "upgrade: an older version to upgrade from" "none is installed"
	t_done
fi

for from in "${older[@]}"; do
	old=es_upgrade_from_${from//./_}
	dropdb --if-exists "$old" 2>/dev/null
	createdb "$old"
	qd "$old" -c "CREATE EXTENSION event_store VERSION '$from'"

	# Data written with the old version's functions; "no check" is NULL
	# before 0.3.0 and -2 from it on.
	if [ "$(printf '%s\n0.3.0\n' "$from" | sort -V | head -1)" = 0.3.0 ]; then
		any=-2
	else
		any=NULL
	fi
	qd "$old" -c "SELECT count(event_store.append_event('up-' || (i % 5), $any, 'E', to_jsonb(i),
	             jsonb_build_object('i', i))) FROM generate_series(1, 300) i" >/dev/null
	qd "$old" -c "SELECT event_store.append_events('up-batch', 0,
	             (SELECT jsonb_agg(jsonb_build_object('type', 'B', 'data', i)) FROM generate_series(1, 40) i))" >/dev/null
	qd "$old" -c "SELECT event_store.save_checkpoint('projector', 77)" >/dev/null
	# Event types beginning with '$' were allowed; this one only looks like
	# a lifecycle event and must stay an ordinary one.
	# (From 0.4.0 on such types are refused: there the event is of an
	# ordinary type.)
	if [ "$(printf '%s\n0.4.0\n' "$from" | sort -V | head -1)" = 0.4.0 ]; then
		typed=deleted
	else
		typed='\$deleted'
	fi
	qd "$old" -c "SELECT event_store.append_event('up-typed', $any, '$typed',
	             '{\"stream_id\": \"up-0\", \"version\": 60, \"first_visible_version\": 61}')" >/dev/null
	# A role granted the global log's read functions (0.2.0 on: 0.2.0
	# itself recreated them, dropping such grants).
	grants=
	if [ "$(printf '%s\n0.2.0\n' "$from" | sort -V | head -1)" = 0.2.0 ]; then
		grants=yes
		qd "$old" -c "DO \$\$ BEGIN
		                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'es_upgrade_reader') THEN
		                  CREATE ROLE es_upgrade_reader;
		                END IF; END \$\$;
		              GRANT EXECUTE ON FUNCTION event_store.read_all, event_store.read_category
		                TO es_upgrade_reader" >/dev/null
	fi
	before=$(es_data_checksums "$old")
	reads_before=$(reads "$old")

	path=$(q -c "SELECT path FROM pg_extension_update_paths('event_store')
	              WHERE source = '$from' AND target = '$current'")
	if [ -z "$path" ]; then
		t_fail "upgrade from $from: an update path to $current" "none"
		continue
	fi
	mapfile -t steps < <(awk -F'--' '{ for (i = 2; i <= NF; i++) print $i }' <<<"$path")
	for step in "${steps[@]}"; do
		qd "$old" -c "ALTER EXTENSION event_store UPDATE TO '$step'"
		t_eq "upgrade from $from: ALTER EXTENSION UPDATE TO '$step' reaches it" \
			"$(qd "$old" -c "SELECT extversion FROM pg_extension WHERE extname = 'event_store'")" "$step"
		t_eq "upgrade from $from: events, heads, checkpoints and positions unchanged at $step" \
			"$(es_data_checksums "$old")" "$before"
	done

	# 0.5.0 recreates read_all and read_category with filter arguments: the
	# grants on them carry over, as grants of the user's that pg_dump keeps
	# (not as the extension's initial privileges).  Revoked again before the
	# objects are compared with a fresh install.
	if [ -n "$grants" ]; then
		t_eq "upgrade from $from: a role granted read_all and read_category keeps them" \
			"$(qd "$old" -c "SELECT has_function_privilege('es_upgrade_reader',
			                  'event_store.read_all(bigint, bigint, text[], text[])', 'EXECUTE')::text || ' ' ||
			                  has_function_privilege('es_upgrade_reader',
			                  'event_store.read_category(text, bigint, bigint, integer, integer, text[])', 'EXECUTE')::text")" \
			"true true"
		t_sqlstate "upgrade from $from: the role cannot be dropped while it holds them (its dependencies are recorded)" \
			"$old" "DROP ROLE es_upgrade_reader" 2BP01
		t_eq "upgrade from $from: pg_dump keeps those grants" \
			"$(pg_dump -s -d "$old" | grep -cE '^GRANT ALL ON FUNCTION event_store\.read_(all|category)\(.*TO es_upgrade_reader;$')" 2
		qd "$old" -c "REVOKE EXECUTE ON FUNCTION event_store.read_all, event_store.read_category
		              FROM es_upgrade_reader" >/dev/null
	fi

	# Streams written before the update read exactly as before.
	t_eq "upgrade from $from: read_stream, read_all and read_category return what they did before" \
		"$(reads "$old")" "$reads_before"
	t_eq "upgrade from $from: no stream hides anything (visible_from 1, no tombstone, no retention)" \
		"$(qd "$old" -c "SELECT count(*) || ' ' || count(*) FILTER (WHERE visible_from = 1 AND NOT tombstoned
		                  AND max_count IS NULL AND max_age IS NULL
		                  AND event_store.first_visible_version(stream_id) = 1) FROM event_store.streams")" \
		"7 7"
	t_eq "upgrade from $from: no lifecycle event and no erasure yet" \
		"$(qd "$old" -c "SELECT event_store.stream_version('\$lifecycle') || ' ' || count(*) FROM event_store.erasures")" \
		"0 0"

	# Same objects as a fresh install of the current version.
	if diff <(describe "$old") <(echo "$fresh") >"$work/diff"; then
		t_ok "upgrade from $from: the objects equal a fresh install of $current"
	else
		t_fail "upgrade from $from: the objects equal a fresh install of $current" \
			"(< upgraded, > fresh)
$(cat "$work/diff")"
	fi

	# Appends and reads go on where the old version left off.
	t_eq "upgrade from $from: the next append continues the stream" \
		"$(qd "$old" -c "SELECT event_store.append_event('up-1', 60, 'After', '1')")" 61
	stale=$(psql -X -q -At -d "$old" -c "SELECT event_store.append_event('up-batch', 39, 'X', '1')" 2>&1 || true)
	case "$stale" in
	*"wrong expected version"*) t_ok "upgrade from $from: a stale append is refused" ;;
	*) t_fail "upgrade from $from: a stale append is refused" "$stale" ;;
	esac
	t_eq "upgrade from $from: the log is exact (stored, read, distinct, out of order)" \
		"$(es_log_is_exact "$old")" "342 342 342 0"
	t_eq "upgrade from $from: stream versions are 1..head" "$(es_bad_streams "$old")" 0

	# The lifecycle functions on streams written before the update (up-0,
	# up-2, up-3, up-4 at version 60, up-1 at 61, up-batch at 40).
	lc() { qd "$old" -c "$1" 2>&1 || true; }
	t_eq "upgrade from $from: delete_stream of an old stream; it reads as empty; 'no stream' appends at head + 1" \
		"$(lc "SELECT event_store.delete_stream('up-0', 60);
		       SELECT count(*) FROM event_store.read_stream('up-0');
		       SELECT event_store.append_event('up-0', 0, 'After', '1');
		       SELECT string_agg(version::text, ',') FROM event_store.read_stream('up-0')")" \
		"60
0
61
61"
	stored_id=$(qd "$old" -c "SELECT event_id FROM event_store.events WHERE stream_id = 'up-2' AND version = 60")
	t_eq "upgrade from $from: tombstone_stream of an old stream removes its events" \
		"$(lc "SELECT event_store.tombstone_stream('up-2', 60);
		       SELECT count(*) FROM event_store.events WHERE stream_id = 'up-2'")" \
		"60
0"
	t_sqlstate "upgrade from $from: the tombstoned old stream refuses an append with VE003" "$old" \
		"SELECT event_store.append_event('up-2', -2, 'X', '1')" VE003
	t_sqlstate "upgrade from $from: the tombstoned old stream refuses a retry of an event stored before with VE003" \
		"$old" "SELECT event_store.append_event('up-2', 59, 'E', '1', NULL, '$stored_id')" VE003
	t_eq "upgrade from $from: truncate_stream of an old stream shows versions 51..60" \
		"$(lc "SELECT event_store.truncate_stream('up-3', 51);
		       SELECT count(*) || ' ' || min(version) || '..' || max(version) FROM event_store.read_stream('up-3')")" \
		"51
10 51..60"
	t_eq "upgrade from $from: set_stream_retention of an old stream shows its last 5 events" \
		"$(lc "SELECT event_store.set_stream_retention('up-4', 5);
		       SELECT string_agg(version::text, ',' ORDER BY version) FROM event_store.read_stream('up-4');
		       SELECT string_agg(version::text, ',' ORDER BY global_position)
		         FROM event_store.read_category('up', 0, NULL) WHERE stream_id = 'up-4'")" \
		"
56,57,58,59,60
56,57,58,59,60"
	t_eq "upgrade from $from: erase_stream of an old stream removes its events, with an audit row" \
		"$(lc "SELECT event_store.erase_stream('up-batch', 'test erasure');
		       SELECT format('%s %s %s %s', operation, stream_id, event_count, reason) FROM event_store.erasures;
		       SELECT count(*) FROM event_store.events WHERE stream_id = 'up-batch'")" \
		"40
erase_stream up-batch 40 test erasure
0"
	t_eq "upgrade from $from: redact_event of an old event rewrites it in place" \
		"$(lc "SELECT event_store.redact_event(event_id, 'test redaction', '{\"r\": 1}') = global_position
		         FROM event_store.events WHERE stream_id = 'up-1' AND version = 1;
		       SELECT format('%s %s %s', version, data, metadata) FROM event_store.read_stream('up-1', 1, 1)")" \
		"t
1 {\"r\": 1} "
	t_eq "upgrade from $from: the lifecycle events, in order" \
		"$(lc "SELECT string_agg(event_type || ':' || (data->>'stream_id'), ',' ORDER BY version)
		         FROM event_store.read_stream('\$lifecycle')")" \
		'$deleted:up-0,$tombstoned:up-2,$truncated:up-3,$retention:up-4,$erased:up-batch,$redacted:up-1'
	t_eq "upgrade from $from: read_all shows what the lifecycle left visible" \
		"$(lc "SELECT string_agg(format('%s:%s:%s..%s', stream_id, n, lo, hi), ',' ORDER BY stream_id)
		         FROM (SELECT stream_id, count(*) n, min(version) lo, max(version) hi
		         FROM event_store.read_all(0, NULL) WHERE stream_id NOT LIKE '\$%' GROUP BY stream_id) r")" \
		'up-0:1:61..61,up-1:61:1..61,up-3:10:51..60,up-4:5:56..60,up-typed:1:1..1'
	t_eq "upgrade from $from: purge removes the hidden events of the old streams, and reads do not change" \
		"$(lc "SELECT event_store.purge();
		       SELECT count(*) FROM event_store.events e WHERE stream_id NOT LIKE '\$%'
		          AND NOT EXISTS (SELECT FROM event_store.read_all(0, NULL) r WHERE r.event_id = e.event_id)")" \
		"165
0"
	dropdb "$old"

	# Stores updated across 0.4.0, which reserved the '$' prefix.
	if [ "$(printf '%s\n0.4.0\n' "$from" | sort -V | head -1)" != 0.4.0 ]; then
		# A stream whose id begins with '$' is kept: read as before, closed to
		# appends.
		res=es_upgrade_dollar_${from//./_}
		dropdb --if-exists "$res" 2>/dev/null
		createdb "$res"
		qd "$res" -c "CREATE EXTENSION event_store VERSION '$from'"
		qd "$res" -c "SELECT event_store.append_event('\$legacy', $any, 'E', '2')" >/dev/null
		qd "$res" -c "ALTER EXTENSION event_store UPDATE"
		t_eq "upgrade from $from: a store with a '\$' stream updates" \
			"$(qd "$res" -c "SELECT extversion FROM pg_extension WHERE extname = 'event_store'")" "$current"
		t_eq "upgrade from $from: the '\$' stream reads as before" \
			"$(qd "$res" -c "SELECT string_agg(version || ':' || event_type || ':' || data, ',') FROM event_store.read_stream('\$legacy')")" "1:E:2"
		t_sqlstate "upgrade from $from: the '\$' stream takes no more appends (22023)" "$res" \
			"SELECT event_store.append_event('\$legacy', -2, 'E', '3')" 22023
		t_eq "upgrade from $from: the '\$' stream can still be erased" \
			"$(qd "$res" -c "SELECT event_store.erase_stream('\$legacy', 'request 1')")" 1
		dropdb "$res"

		# A store with a stream named '$lifecycle' is refused and left as it is.
		res=es_upgrade_reserved_${from//./_}
		dropdb --if-exists "$res" 2>/dev/null
		createdb "$res"
		qd "$res" -c "CREATE EXTENSION event_store VERSION '$from'"
		qd "$res" -c "SELECT event_store.append_event('res-1', $any, 'E', '1'),
		              event_store.append_event('\$lifecycle', $any, 'E', '2')" >/dev/null
		res_before=$(es_data_checksums "$res")
		res_objects=$(describe "$res")
		t_sqlstate "upgrade from $from: a store with a stream named '\$lifecycle' is refused (55000)" "$res" \
			"ALTER EXTENSION event_store UPDATE" 55000
		t_eq "upgrade from $from: the refused store stays at $from" \
			"$(qd "$res" -c "SELECT extversion FROM pg_extension WHERE extname = 'event_store'")" "$from"
		t_eq "upgrade from $from: the refused store's data is unchanged" "$(es_data_checksums "$res")" "$res_before"
		if diff <(describe "$res") <(echo "$res_objects") >"$work/diff"; then
			t_ok "upgrade from $from: the refused store's objects are unchanged"
		else
			t_fail "upgrade from $from: the refused store's objects are unchanged" \
				"(< after the refused update, > before)
	$(cat "$work/diff")"
		fi
		t_eq "upgrade from $from: the refused store still takes appends" \
			"$(qd "$res" -c "SELECT event_store.append_event('res-1', 1, 'E', '3')" 2>&1 || true)" 2
		dropdb "$res"
	fi
done

# A session open across the update (a pooled connection): it reads and
# appends under the version before the current one, another session updates
# and deletes and tombstones its streams, and the first one, without
# reconnecting, sees the lifecycle at once.
# (0.3.0, the last version before the lifecycle, when it is installed.)
prev=${older[${#older[@]} - 1]}
for v in "${older[@]}"; do
	[ "$v" != 0.3.0 ] || prev=0.3.0
done
open_db=es_upgrade_open
dropdb --if-exists "$open_db" 2>/dev/null
createdb "$open_db"
qd "$open_db" -c "CREATE EXTENSION event_store VERSION '$prev'"
if [ "$(printf '%s\n0.3.0\n' "$prev" | sort -V | head -1)" = 0.3.0 ]; then
	any=-2
else
	any=NULL
fi
qd "$open_db" -c "SELECT event_store.append_event('a-1', $any, 'E', '1'), event_store.append_event('a-1', $any, 'E', '2'),
                  event_store.append_event('b-1', $any, 'E', '1')" >/dev/null
mkfifo "$work/open.fifo"
psql -X -q -At -v VERBOSITY=sqlstate -d "$open_db" <"$work/open.fifo" >"$work/open.out" 2>&1 &
open_pid=$!
exec 7>"$work/open.fifo"
echo "SELECT 'before', count(*) FROM event_store.read_all(0, 1000);
      SELECT 'before', count(*) FROM event_store.read_category('a', 0, 1000);
      SELECT 'before', event_store.append_event('a-1', 2, 'E', '3');
      SELECT 'before', string_agg(version::text, ',') FROM event_store.read_stream('a-1');" >&7
for _ in $(seq 100); do
	[ "$(grep -c '^before|' "$work/open.out")" -lt 4 ] || break
	sleep 0.1
done
qd "$open_db" -c "ALTER EXTENSION event_store UPDATE" \
	-c "SELECT event_store.delete_stream('a-1', 3), event_store.tombstone_stream('b-1', 1)" >/dev/null
echo "SELECT 'after', string_agg(stream_id || '/' || version, ',' ORDER BY global_position)
        FROM event_store.read_all(0, NULL);
      SELECT 'after', count(*) FROM event_store.read_category('a', 0, NULL);
      SELECT 'after', count(*) FROM event_store.read_stream('a-1');
      SELECT 'after', event_store.append_event('b-1', -2, 'E', '2');
      SELECT 'after', event_store.append_event('\$x', -2, 'E', '2');
      SELECT 'after', event_store.append_event('a-1', 0, 'E', '4');
      SELECT 'after', string_agg(version::text, ',') FROM event_store.read_stream('a-1');
      SELECT 'after', event_store.truncate_stream('a-1', 5);" >&7
exec 7>&-
wait "$open_pid" || true
t_eq "upgrade from $prev: a session open across the update sees the lifecycle at once" \
	"$(cat "$work/open.out")" "before|3
before|2
before|3
before|1,2,3
after|\$lifecycle/1,\$lifecycle/2
after|0
after|0
ERROR:  VE003
ERROR:  22023
after|4
after|4
after|5"
dropdb "$open_db"

# A session that appended before the update, in the same session as the
# update to 0.5.0: the update publishes the watermark, and the session's
# later appends publish it too (the library finds the new sequence).
if printf '%s\n' "${older[@]}" | grep -qx 0.4.0; then
	same_db=es_upgrade_same_session
	dropdb --if-exists "$same_db" 2>/dev/null
	createdb "$same_db"
	t_eq "upgrade from 0.4.0: a session that appended runs the update and goes on; the watermark follows" \
		"$(qd "$same_db" -c "CREATE EXTENSION event_store VERSION '0.4.0'" \
		     -c "SELECT event_store.append_event('s-1', 0, 'E', '1')" \
		     -c "ALTER EXTENSION event_store UPDATE" \
		     -c "SELECT event_store.watermark()" \
		     -c "SELECT event_store.append_event('s-1', 1, 'E', '2')" \
		     -c "SELECT event_store.watermark() = event_store.head_position()" 2>&1)" \
		"1
1
2
t"
	dropdb "$same_db"
fi

dropdb "$db"
psql -X -q -d postgres -c "DROP ROLE IF EXISTS es_upgrade_reader" 2>/dev/null || true
t_done
