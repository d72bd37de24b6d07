#!/usr/bin/env bash
# test/pgbouncer_wait.sh: wait_for_event through pgbouncer in transaction
# mode, where LISTEN does not work.
#
# Several clients wait through pgbouncer (background psql), each with its
# own filter, while another client appends: each waiter returns the
# position it must, promptly, and only for an event it waits for; a timeout
# returns NULL; a waiter cancelled on the server (pg_cancel_backend) or by
# statement_timeout fails with 57014 and leaves the pool usable.  Last, a
# client that LISTENs through pgbouncer gets no notification of an append
# (pgbouncer drops it: the server connection that listens is back in the
# pool, linked to no client), where one connected directly gets it.
#
# Needs a running server (PGHOST, PGPORT, PGUSER) with the extension
# installed, and pgbouncer in transaction mode in front of it
# (ES_PGBOUNCER_HOST, ES_PGBOUNCER_PORT; scripts/lib.sh es_start_pgbouncer).

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
: "${ES_PGBOUNCER_HOST:?run with pgbouncer started (ES_PGBOUNCER_HOST, ES_PGBOUNCER_PORT)}"
: "${ES_PGBOUNCER_PORT:?run with pgbouncer started (ES_PGBOUNCER_HOST, ES_PGBOUNCER_PORT)}"

es_test_start pgbouncer_wait es_pgbouncer_wait
trap 'exec 5>&- 2>/dev/null || true; jobs -p | xargs -r kill 2>/dev/null || true; rm -rf "$work"' EXIT

# psql through pgbouncer.
b() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$ES_PGBOUNCER_HOST" -p "$ES_PGBOUNCER_PORT" -d "$db" "$@"; }
now_ms() { date +%s%3N; }

# Start a client that runs SQL through pgbouncer in the background; it writes
# "<exit status>|<output>|<ms when it returned>" to $work/NAME.out.
declare -A client_pid
client() {
	local name=$1 sql=$2
	(
		rc=0
		out=$(b -v VERBOSITY=sqlstate -c "$sql" 2>&1) || rc=$?
		echo "$rc|$(tr '\n' ' ' <<<"$out" | sed 's/ *$//')|$(now_ms)" >"$work/$name.out"
	) &
	client_pid[$name]=$!
}

# Wait for a client (at most its own timeout: the clients all have one).
finish() {
	wait "${client_pid[$1]}" || true
}
result() { cut -d'|' -f1,2 "$work/$1.out"; }
returned_at() { cut -d'|' -f3 "$work/$1.out"; }

# Backends of the test's database inside wait_for_event, waiting.
waiting() {
	q -c "SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()
		  AND query LIKE '%wait_for_event%' AND state = 'active'
		  AND wait_event = 'Extension'"
}

# Wait (up to 10 s) until exactly N backends are waiting.
wait_waiting() {
	for _ in $(seq 500); do
		[ "$(waiting)" = "$1" ] && return 0
		sleep 0.02
	done
	echo "# waiting backends: $(waiting), expected $1"
	return 1
}

position_of() {
	q -c "SELECT global_position FROM event_store.events WHERE stream_id = '$1' AND version = ${2:-1}"
}

# A waiter must return within this many ms of the append it waits for.
prompt_ms=3000

q -c "SELECT event_store.append_event('seed-1', 0, 'Seed', '{}')" >/dev/null
base=$(q -c "SELECT max(global_position) FROM event_store.events")

# ---------------------------------------------------------------------------
# Concurrent waiters, each with its filter.

for i in 1 2 3 4; do
	client "any$i" "SELECT event_store.wait_for_event($base, '20 s')"
done
client cat1 "SELECT event_store.wait_for_event($base, '20 s', 'cat')"
client type1 "SELECT event_store.wait_for_event($base, '20 s', NULL, ARRAY['Wanted'])"
client type2 "SELECT event_store.wait_for_event($base, '20 s', NULL, ARRAY['Wanted', 'AlsoWanted'])"
wait_waiting 7
t_ok "pgbouncer: seven clients wait in wait_for_event at once"

# An event of no category or type waited for: only the plain waiters return.
t0=$(now_ms)
b -c "SELECT event_store.append_event('other-1', 0, 'Other', '{}')" >/dev/null
pos1=$(position_of other-1)
slowest=0
for i in 1 2 3 4; do
	finish "any$i"
	t_eq "pgbouncer: waiter any$i returns the appended position" "$(result "any$i")" "0|$pos1"
	slowest=$(( $(returned_at "any$i") - t0 > slowest ? $(returned_at "any$i") - t0 : slowest ))
done
if [ "$slowest" -lt "$prompt_ms" ]; then
	t_ok "pgbouncer: the plain waiters return promptly"
else
	t_fail "pgbouncer: the plain waiters return promptly" "slowest ${slowest} ms"
fi
echo "# pgbouncer: the plain waiters returned at most ${slowest} ms after the append"
wait_waiting 3
t_ok "pgbouncer: the category and type waiters still wait after an event of another type and category"

# An event of the category, of another type: only the category's waiter.
t0=$(now_ms)
b -c "SELECT event_store.append_event('cat-1', 0, 'Other', '{}')" >/dev/null
pos2=$(position_of cat-1)
finish cat1
t_eq "pgbouncer: the category's waiter returns its event" "$(result cat1)" "0|$pos2"
elapsed=$(( $(returned_at cat1) - t0 ))
if [ "$elapsed" -lt "$prompt_ms" ]; then
	t_ok "pgbouncer: the category's waiter returns promptly"
else
	t_fail "pgbouncer: the category's waiter returns promptly" "${elapsed} ms"
fi
wait_waiting 2
t_ok "pgbouncer: the type waiters still wait after an event of another type"

# An event of a type waited for: the type waiters.
t0=$(now_ms)
b -c "SELECT event_store.append_events('other-2', 0, '[{\"type\": \"Unwanted\", \"data\": {}}, {\"type\": \"Wanted\", \"data\": {}}]')" >/dev/null
pos3=$(position_of other-2 2)
for w in type1 type2; do
	finish "$w"
	t_eq "pgbouncer: waiter $w returns the event of its type" "$(result "$w")" "0|$pos3"
	elapsed=$(( $(returned_at "$w") - t0 ))
	if [ "$elapsed" -lt "$prompt_ms" ]; then
		t_ok "pgbouncer: waiter $w returns promptly"
	else
		t_fail "pgbouncer: waiter $w returns promptly" "${elapsed} ms"
	fi
done
t_eq "pgbouncer: no backend is left waiting" "$(waiting)" 0

# ---------------------------------------------------------------------------
# A timeout returns NULL.

head=$(q -c "SELECT max(global_position) FROM event_store.events")
t0=$(now_ms)
t_eq "pgbouncer: a wait that times out returns NULL" \
	"$(b -c "SELECT coalesce(event_store.wait_for_event($head, '300 ms')::text, 'NULL')")" NULL
elapsed=$(($(now_ms) - t0))
if [ "$elapsed" -ge 250 ] && [ "$elapsed" -lt 5000 ]; then
	t_ok "pgbouncer: the timeout is kept"
else
	t_fail "pgbouncer: the timeout is kept" "${elapsed} ms for 300 ms"
fi

# ---------------------------------------------------------------------------
# Cancelled waiters leave the pool usable.

client cancelled "SELECT event_store.wait_for_event($head, '30 s')"
wait_waiting 1
t0=$(now_ms)
t_eq "pgbouncer: pg_cancel_backend reaches the waiter's backend" \
	"$(q -c "SELECT count(*) FILTER (WHERE pg_cancel_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()
		  AND query LIKE '%wait_for_event%' AND state = 'active'")" 1
finish cancelled
t_eq "pgbouncer: the cancelled waiter fails with 57014" \
	"$(cut -d'|' -f1 "$work/cancelled.out") $(grep -o 57014 "$work/cancelled.out" | head -1)" "1 57014"
elapsed=$(( $(returned_at cancelled) - t0 ))
if [ "$elapsed" -lt "$prompt_ms" ]; then
	t_ok "pgbouncer: the cancel is prompt"
else
	t_fail "pgbouncer: the cancel is prompt" "${elapsed} ms"
fi

t0=$(now_ms)
out=$(b -v ON_ERROR_STOP=0 -v VERBOSITY=sqlstate 2>&1 <<SQL || true
BEGIN;
SET LOCAL statement_timeout = '300ms';
SELECT event_store.wait_for_event($head, '30 s');
ROLLBACK;
SHOW statement_timeout;
SQL
)
elapsed=$(($(now_ms) - t0))
t_eq "pgbouncer: statement_timeout ends a waiter with 57014, and SET LOCAL does not outlive it" \
	"$(grep -o 57014 <<<"$out" | head -1) $(tail -1 <<<"$out")" "57014 0"
if [ "$elapsed" -lt "$prompt_ms" ]; then
	t_ok "pgbouncer: statement_timeout ends the wait on time"
else
	t_fail "pgbouncer: statement_timeout ends the wait on time" "${elapsed} ms"
fi
t_eq "pgbouncer: no backend is left waiting after the cancels" "$(waiting)" 0

# The pool still serves waits: twenty clients at once get the first event
# after base at once, and a new waiter wakes for a new append.
for i in $(seq 20); do
	client "again$i" "SELECT event_store.wait_for_event($base, '5 s')"
done
bad=0
for i in $(seq 20); do
	finish "again$i"
	[ "$(result "again$i")" = "0|$pos1" ] || bad=$((bad + 1))
done
t_eq "pgbouncer: after the cancels, twenty clients through the pool get their answer" "$bad" 0
client after "SELECT event_store.wait_for_event($head, '20 s')"
wait_waiting 1
t0=$(now_ms)
b -c "SELECT event_store.append_event('after-1', 0, 'After', '{}')" >/dev/null
finish after
t_eq "pgbouncer: after the cancels, a waiter wakes for a new append" \
	"$(result after)" "0|$(position_of after-1)"
elapsed=$(( $(returned_at after) - t0 ))
if [ "$elapsed" -lt "$prompt_ms" ]; then
	t_ok "pgbouncer: and promptly"
else
	t_fail "pgbouncer: and promptly" "${elapsed} ms"
fi

# ---------------------------------------------------------------------------
# LISTEN through pgbouncer in transaction mode: the notification of an
# append is not delivered.  The listening client stays idle (linked to no
# server connection) while a session connected directly appends with
# event_store.notify on (set in that session: through the pooler, a SET
# would stay with whichever server connection ran it), then runs a
# statement, after which psql prints any notification it received.  The
# same with the listener connected directly shows that it would.  (The
# server connection that ran LISTEN goes on listening for whichever client
# gets it next; dropping the database at the end closes it.)

listen_case() {
	local how=$1 stream=$2 lp
	rm -f "$work/listen.in"
	mkfifo "$work/listen.in"
	if [ "$how" = pgbouncer ]; then
		b <"$work/listen.in" >"$work/listen.out" 2>&1 &
	else
		q <"$work/listen.in" >"$work/listen.out" 2>&1 &
	fi
	lp=$!
	exec 5>"$work/listen.in"
	echo "LISTEN event_store;" >&5
	echo "SELECT 'listening';" >&5
	for _ in $(seq 250); do
		grep -q listening "$work/listen.out" && break
		sleep 0.02
	done
	q -c "SET event_store.notify = on" \
		-c "SELECT event_store.append_event('$stream', 0, 'Noted', '{}')" >/dev/null
	sleep 0.3
	echo "SELECT 'after';" >&5
	exec 5>&-
	wait "$lp" || true
	grep -c 'Asynchronous notification "event_store"' "$work/listen.out" || true
}
t_eq "pgbouncer: a direct connection that LISTENs is notified of an append" \
	"$(listen_case direct listen-1)" 1
t_eq "pgbouncer: a client that LISTENs through pgbouncer is not" \
	"$(listen_case pgbouncer listen-2)" 0

dropdb --force "$db"
t_done
