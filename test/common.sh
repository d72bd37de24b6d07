# test/common.sh: what the shell tests share.  Source it after setting $db.
#
# es_test_start NAME: a work directory ($work, removed on exit) and a fresh
# database $db with the extension installed.  q: psql on $db, unaligned,
# stopping at the first error.

set -euo pipefail

q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }

es_test_start() {
	work=$(mktemp -d "/tmp/es_$1.XXXXXX")
	chmod 755 "$work"
	trap 'rm -rf "$work"' EXIT
	dropdb --if-exists "$db" 2>/dev/null
	createdb "$db"
	q -c "CREATE EXTENSION event_store"
}
