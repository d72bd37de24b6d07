# test/lib.sh: the one library of the cluster-level tests (the shell
# scripts of test/).  Source it; do not run it.
#
# Every test script runs against a server given by PGHOST, PGPORT and PGUSER
# (scripts/test-major.sh starts a throwaway one), with that major's binaries
# in PGBIN.  It reports each assertion by name, one line each:
#
#	ok - <name>
#	not ok - <name>: <what was seen>
#
# and exits non-zero when any failed (t_done).  scripts/test-major.sh counts
# those lines.
#
#	t_ok NAME / t_fail NAME DETAIL	report an assertion
#	t_eq NAME GOT WANT				pass when GOT equals WANT
#	t_done							exit with the script's verdict
#	es_test_start NAME DB			a work directory ($work, removed on exit)
#									and a fresh database DB with the extension
#	qd DB ARGS...					psql on DB: unaligned, tuples only,
#									stopping at the first error
#	q ARGS...						qd on $db
#	es_data_checksums DB			checksums of every stored event, head and
#									checkpoint, and the position sequence
#	es_bad_streams DB				streams whose versions are not exactly
#									1..head with head = last version
#	es_log_is_exact DB				"A B C D": events stored, events read_all
#									returns from 0, distinct ones, and how
#									many came back out of order
#	es_sqlstate DB SQL				"ok" when SQL succeeds on DB, else the
#									SQLSTATE of its error
#	t_sqlstate NAME DB SQL WANT		pass when es_sqlstate gives WANT

set -euo pipefail

PG_MAJOR=${PG_MAJOR:-15}
PGBIN=${PGBIN:-/usr/lib/postgresql/$PG_MAJOR/bin}
export PATH="$PGBIN:$PATH"
T_FAILED=0

t_ok() { echo "ok - $1"; }

t_fail() {
	echo "not ok - $1: $2"
	T_FAILED=1
}

t_eq() {
	if [ "$2" = "$3" ]; then
		t_ok "$1"
	else
		t_fail "$1" "got '$2', expected '$3'"
	fi
}

t_done() { exit "$T_FAILED"; }

qd() {
	local d=$1
	shift
	psql -X -q -At -v ON_ERROR_STOP=1 -d "$d" "$@"
}

q() { qd "$db" "$@"; }

es_test_start() {
	work=$(mktemp -d "/tmp/es_$1.XXXXXX")
	chmod 755 "$work"
	trap 'rm -rf "$work"' EXIT
	db=$2
	dropdb --if-exists "$db" 2>/dev/null
	createdb "$db"
	q -c "CREATE EXTENSION event_store"
}

es_data_checksums() {
	qd "$1" <<'SQL'
SELECT md5(string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s', global_position, stream_id,
		   version, event_id, event_type, data, metadata, created_at), ',' ORDER BY global_position))
  FROM event_store.events;
SELECT md5(string_agg(stream_id || '=' || version, ',' ORDER BY stream_id)) FROM event_store.streams;
SELECT md5(string_agg(subscriber || '=' || position, ',' ORDER BY subscriber)) FROM event_store.checkpoints;
SELECT last_value FROM event_store.events_global_position_seq;
SQL
}

es_bad_streams() {
	qd "$1" -c "
SELECT count(*)
  FROM (SELECT stream_id, version FROM event_store.streams) s
  FULL JOIN (SELECT stream_id, count(*) AS n, min(version) AS first,
					max(version) AS last
			   FROM event_store.events GROUP BY stream_id) e USING (stream_id)
 WHERE s.version IS NULL OR e.n IS NULL
	OR s.version <> e.n OR s.version <> e.last OR e.first <> 1"
}

es_log_is_exact() {
	qd "$1" -c "
SELECT format('%s %s %s %s',
	(SELECT count(*) FROM event_store.events),
	count(*), count(DISTINCT global_position),
	count(*) FILTER (WHERE back))
  FROM (SELECT global_position,
			   global_position <= lag(global_position) OVER () AS back
		  FROM event_store.read_all(0, NULL)) r"
}

es_sqlstate() {
	local out
	if out=$(psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=sqlstate -d "$1" -c "$2" 2>&1); then
		echo ok
	else
		out=$(sed -n 's/^ERROR: *//p' <<<"$out" | head -1)
		echo "${out:-no SQLSTATE}"
	fi
}

t_sqlstate() { t_eq "$1" "$(es_sqlstate "$2" "$3")" "$4"; }
