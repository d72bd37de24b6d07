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
	before=$(es_data_checksums "$old")

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
		"$(es_log_is_exact "$old")" "341 341 341 0"
	t_eq "upgrade from $from: stream versions are 1..head" "$(es_bad_streams "$old")" 0
	dropdb "$old"
done

dropdb "$db"
t_done
