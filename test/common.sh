# test/common.sh: what the shell tests share.  Source it after setting $db.
#
# es_test_start NAME: a work directory ($work, removed on exit) and a fresh
# database $db with the extension installed.  q: psql on $db, unaligned,
# stopping at the first error.  es_data_checksums DB: checksums of every
# stored event, head and checkpoint, and the position sequence's last value.

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

es_data_checksums() {
	psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" <<'SQL'
SELECT md5(string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s', global_position, stream_id,
		   version, event_id, event_type, data, metadata, created_at), ',' ORDER BY global_position))
  FROM event_store.events;
SELECT md5(string_agg(stream_id || '=' || version, ',' ORDER BY stream_id)) FROM event_store.streams;
SELECT md5(string_agg(subscriber || '=' || position, ',' ORDER BY subscriber)) FROM event_store.checkpoints;
SELECT last_value FROM event_store.events_global_position_seq;
SQL
}
