#!/usr/bin/env bash
# test/pg_upgrade.sh: a major-version upgrade with pg_upgrade keeps
# everything.
#
# Makes a cluster of the older major ES_UPGRADE_FROM (its server, with
# event_store built for it, installed under /usr/lib/postgresql/<old>, and
# the libraries it needs that this system lacks in compat-libs/), stores
# events, heads, checkpoints and positions burned by rolled-back appends,
# stops it, and upgrades it with this major's pg_upgrade.  Afterwards every
# event, head, checkpoint and the position sequence must be unchanged, the
# extension at the same version and updatable, appends must continue at the
# right versions and positions, and the global log must be exact.
#
# Needs root (it runs the clusters as the postgres user).  Reports by
# test/lib.sh.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
old=${ES_UPGRADE_FROM:?ES_UPGRADE_FROM must name the older major}
oldbin=/usr/lib/postgresql/$old/bin
newbin=$PGBIN
dir=$(mktemp -d /tmp/es_pg_upgrade.XXXXXX)
chmod 755 "$dir"
chown postgres: "$dir"
port=$((${PGPORT:-55432} + 3))
db=es_pg_upgrade

as_pg() {
	runuser -u postgres -- env LD_LIBRARY_PATH="/usr/lib/postgresql/$old/compat-libs" "$@"
}
cleanup() {
	as_pg "$oldbin/pg_ctl" -D "$dir/old" -m fast stop >/dev/null 2>&1 || true
	as_pg "$newbin/pg_ctl" -D "$dir/new" -m fast stop >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT
on() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -d "$db" "$@"; }

# Data checksums on both sides (18 turns them on by default; pg_upgrade
# needs the two clusters to agree).
initdb_opts=(-U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync --data-checksums)
as_pg "$oldbin/initdb" -D "$dir/old" "${initdb_opts[@]}" >"$dir/initdb-old.log"
as_pg "$oldbin/pg_ctl" -D "$dir/old" -w -l "$dir/old.log" \
	-o "-p $port -k $dir -c listen_addresses=''" start >/dev/null
t_eq "pg_upgrade: the old cluster runs PostgreSQL $old" \
	"$(psql -X -At -h "$dir" -p "$port" -d postgres -c "SHOW server_version_num" | cut -c1-2)" "$old"
psql -X -q -h "$dir" -p "$port" -d postgres -c "CREATE DATABASE $db"
on -c "CREATE EXTENSION event_store"
on -c "SELECT count(event_store.append_event('pu-' || (i % 9), -2, 'E', to_jsonb(i),
        jsonb_build_object('i', i))) FROM generate_series(1, 400) i" >/dev/null
on -c "SELECT event_store.append_events('pu-batch', 0,
        (SELECT jsonb_agg(jsonb_build_object('type', 'B', 'data', i)) FROM generate_series(1, 30) i))" >/dev/null
# Positions taken by appends that rolled back: gaps the log must skip.
on -c "BEGIN" -c "SELECT event_store.append_events('pu-lost', 0, '[{\"type\": \"L\", \"data\": 1}, {\"type\": \"L\", \"data\": 2}]')" \
	-c "ROLLBACK" >/dev/null
on -c "SELECT event_store.append_event('pu-1', -1, 'AfterGap', '1')" >/dev/null
on -c "SELECT event_store.save_checkpoint('projector', 200)" >/dev/null
version=$(on -c "SELECT extversion FROM pg_extension WHERE extname = 'event_store'")
before=$(PGHOST=$dir PGPORT=$port es_data_checksums "$db")
log_before=$(on -c "SELECT string_agg(global_position::text, ',' ORDER BY global_position) FROM event_store.read_all(0, NULL)")
# Debian's PostgreSQL 17.12 (trixie) records an attribute option,
# pg_attver, on every column it creates, which the 18.6 of the archive's
# forky snapshot does not know: pg_upgrade from one to the other fails on any
# table, with or without event_store ("unrecognized parameter").  Take the
# option out of the old catalog first, as a user of those packages would
# have to.
if ! grep -aq pg_attver "$newbin/postgres"; then
	n=$(on -c "WITH d AS (
	             UPDATE pg_attribute
	                SET attoptions = NULLIF(ARRAY(SELECT o FROM unnest(attoptions) o
	                                               WHERE o NOT LIKE 'pg_attver=%'), '{}')
	              WHERE attoptions::text LIKE '%pg_attver=%' RETURNING 1)
	           SELECT count(*) FROM d")
	[ "$n" = 0 ] || echo "note: removed pg_attver from $n columns of the old cluster (unknown to $PG_MAJOR)"
fi
as_pg "$oldbin/pg_ctl" -D "$dir/old" -m fast stop >/dev/null

as_pg "$newbin/initdb" -D "$dir/new" "${initdb_opts[@]}" >"$dir/initdb-new.log"
if (cd "$dir" && as_pg "$newbin/pg_upgrade" -b "$oldbin" -B "$newbin" \
	-d "$dir/old" -D "$dir/new" -p "$port" -P "$port" -s "$dir" >"$dir/pg_upgrade.log" 2>&1); then
	t_ok "pg_upgrade: from $old to $PG_MAJOR succeeds"
else
	t_fail "pg_upgrade: from $old to $PG_MAJOR succeeds" "$(tail -30 "$dir/pg_upgrade.log"
		find "$dir/new" -name 'pg_upgrade_*.log' -exec tail -15 {} +)"
	t_done
fi

as_pg "$newbin/pg_ctl" -D "$dir/new" -w -l "$dir/new.log" \
	-o "-p $port -k $dir -c listen_addresses=''" start >/dev/null
t_eq "pg_upgrade: the new cluster runs PostgreSQL $PG_MAJOR" \
	"$(on -c "SHOW server_version_num" | cut -c1-2)" "$PG_MAJOR"
t_eq "pg_upgrade: events, heads, checkpoints and the position sequence unchanged" \
	"$(PGHOST=$dir PGPORT=$port es_data_checksums "$db")" "$before"
t_eq "pg_upgrade: the extension is at the same version" \
	"$(on -c "SELECT extversion FROM pg_extension WHERE extname = 'event_store'")" "$version"
on -c "ALTER EXTENSION event_store UPDATE"
t_eq "pg_upgrade: the global log returns the same events" \
	"$(on -c "SELECT string_agg(global_position::text, ',' ORDER BY global_position) FROM event_store.read_all(0, NULL)")" \
	"$log_before"
last=$(on -c "SELECT last_value FROM event_store.events_global_position_seq")
head=$(on -c "SELECT event_store.stream_version('pu-1')")
t_eq "pg_upgrade: the next append continues the stream" \
	"$(on -c "SELECT event_store.append_event('pu-1', $head, 'After', '1')")" "$((head + 1))"
t_eq "pg_upgrade: the next position is past every earlier one" \
	"$(on -c "SELECT global_position > $last FROM event_store.events WHERE event_type = 'After'")" t
stale=$(on -c "SELECT event_store.append_event('pu-batch', 0, 'X', '1')" 2>&1 || true)
case "$stale" in
*"wrong expected version"*) t_ok "pg_upgrade: a stale append is refused" ;;
*) t_fail "pg_upgrade: a stale append is refused" "$stale" ;;
esac
read -r n_stored n_read n_distinct n_back <<<"$(PGHOST=$dir PGPORT=$port es_log_is_exact "$db")"
t_eq "pg_upgrade: read_all returns every event once, in order" \
	"$n_read/$n_distinct/$n_back" "$n_stored/$n_stored/0"
t_eq "pg_upgrade: stream versions are 1..head" "$(PGHOST=$dir PGPORT=$port es_bad_streams "$db")" 0
t_eq "pg_upgrade: safe_position is the last position" \
	"$(on -c "SELECT event_store.safe_position() = last_value FROM event_store.events_global_position_seq")" t
t_done
