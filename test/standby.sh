#!/usr/bin/env bash
# test/standby.sh: event_store on a streaming hot standby.
#
# Makes a standby of the server under test with pg_basebackup (over its Unix
# socket), appends on the primary, waits until the standby has replayed it,
# and checks that read_stream, stream_version, read_all, read_category and
# safe_position work on the standby and return what the primary committed,
# and that an append on the standby fails with a read-only error (25006).
#
# Needs a running server (PGHOST, PGPORT, PGUSER) with the extension
# installed, which accepts replication connections from the local user (as a
# cluster made by initdb -A trust does).

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
db=es_standby
dir=$(mktemp -d /tmp/es_standby.XXXXXX)
chmod 755 "$dir"
chown postgres: "$dir"
sport=$((PGPORT + 1))

cleanup() {
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT

p() { q "$@"; }
s() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$dir" -p "$sport" -d "$db" "$@"; }

dropdb --if-exists "$db" 2>/dev/null
createdb "$db"
p -c "CREATE EXTENSION event_store"
p -c "SELECT event_store.append_event('prod-1', 0, 'Created', '{\"n\": 1}')" >/dev/null

runuser -u postgres -- "$PGBIN/pg_basebackup" -D "$dir/data" -R -X stream --checkpoint=fast \
	-h "$PGHOST" -p "$PGPORT" -U postgres
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir/data" -w -l "$dir/log" \
	-o "-p $sport -k $dir -c listen_addresses='' -c hot_standby=on" start >/dev/null

# More appends after the standby was made, then wait for it to replay them.
p -c "SELECT event_store.append_events('prod-1', 1, '[{\"type\": \"A\", \"data\": 2}, {\"type\": \"B\", \"data\": 3}]')" >/dev/null
p -c "SELECT event_store.append_event('cust-1', 0, 'Joined', '{}')" >/dev/null
target=$(p -c "SELECT pg_current_wal_lsn()")
for _ in $(seq 100); do
	if [ "$(s -c "SELECT pg_last_wal_replay_lsn() >= '$target'::pg_lsn")" = t ]; then
		break
	fi
	sleep 0.1
done

t_eq "standby: in recovery" "$(s -c "SELECT pg_is_in_recovery()")" t
t_eq "standby: stream_version sees the primary's head" \
	"$(s -c "SELECT event_store.stream_version('prod-1')")" 3
t_eq "standby: read_stream replays the stream" \
	"$(s -c "SELECT string_agg(version || ':' || event_type, ',' ORDER BY version) FROM event_store.read_stream('prod-1')")" \
	"1:Created,2:A,3:B"
t_eq "standby: read_all returns what the primary stored" \
	"$(s -c "SELECT string_agg(stream_id || '/' || version, ',' ORDER BY global_position) FROM event_store.read_all(0)")" \
	"$(p -c "SELECT string_agg(stream_id || '/' || version, ',' ORDER BY global_position) FROM event_store.events")"
t_eq "standby: read_category returns the category" \
	"$(s -c "SELECT count(*) FROM event_store.read_category('prod')")" 3
t_eq "standby: safe_position is the last stored position" \
	"$(s -c "SELECT event_store.safe_position()")" \
	"$(p -c "SELECT max(global_position) FROM event_store.events")"
sqlstate=$(s -v VERBOSITY=verbose -c "SELECT event_store.append_event('prod-1', 3, 'Nope', '{}')" 2>&1 | grep -o '25006' | head -1 || true)
t_eq "standby: an append is refused with 25006" "$sqlstate" 25006

dropdb "$db"
t_done
