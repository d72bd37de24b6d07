#!/usr/bin/env bash
# scripts/test-major.sh: build event_store and run every suite on one
# PostgreSQL major (PG_MAJOR, default 15), on this machine or, for another
# major, inside its chroot (scripts/test.sh runs it there).
#
# Installs the build dependencies, builds with -Wall -Wextra -Werror,
# installs, starts a throwaway cluster (wal_level = logical; before 17 also
# with shared_preload_libraries = event_store, so that the wake-ups of
# wait_for_event and the owed watermark run from shared memory there as the
# named DSM segment gives them from 17 on without it, and both ways of
# getting that memory are tested), runs the
# regression and isolation suites and the cluster-level tests of test/
# (dump and restore, upgrade, hot standby, logical replication, short runs
# of the read_all stress, conflict stress and crash tests, and, when
# ES_UPGRADE_FROM names an older major whose server is installed here,
# pg_upgrade from it), then the Node and Python clients' tests, directly and
# through pgbouncer in transaction mode; prints regression.diffs of any
# suite that fails, and ends with the line
# "PostgreSQL <major>: N passed, N failed".  It exits non-zero on any
# failure.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if [ "${PG_MAJOR:-15}" -lt 17 ]; then
	es_setup -c wal_level=logical -c shared_preload_libraries=event_store
else
	es_setup -c wal_level=logical
fi

passed=0
failed=0

# Run one pg_regress-driven suite through PGXS; count its results.
run_suite() {
	local name=$1 outdir=$2
	shift 2
	local log="$ES_TMP/$name.log" rc=0
	es_log "running the $name suite on PostgreSQL $PG_MAJOR"
	make -C "$ES_ROOT" -s installcheck PG_CONFIG="$PGBIN/pg_config" "$@" >"$log" 2>&1 || rc=$?
	cat "$log"
	local ok bad
	# pg_regress prints "test x ... ok" up to 15 and TAP ("ok 1 - x") from 16.
	ok=$(grep -cE '\.\.\. ok |^ok [0-9]+ ' "$log" || true)
	bad=$(grep -cE '\.\.\. FAILED|^not ok [0-9]+ ' "$log" || true)
	passed=$((passed + ok))
	failed=$((failed + bad))
	if [ "$rc" -ne 0 ]; then
		[ "$bad" -gt 0 ] || failed=$((failed + 1))
		if [ -f "$ES_ROOT/$outdir/regression.diffs" ]; then
			echo "---- $outdir/regression.diffs ----"
			cat "$ES_ROOT/$outdir/regression.diffs"
		fi
	fi
}

# Run one test script of test/; count its named assertions ("ok - ...",
# "not ok - ..."), and a failure if it exits non-zero without one.
run_script() {
	local name=$1 script=$2 out rc=0 ok bad
	es_log "running $name on PostgreSQL $PG_MAJOR"
	out=$(bash "$ES_ROOT/$script" 2>&1) || rc=$?
	echo "$out"
	ok=$(grep -c '^ok - ' <<<"$out" || true)
	bad=$(grep -c '^not ok - ' <<<"$out" || true)
	if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
		echo "not ok - $name: the script failed before its assertions"
		bad=1
	fi
	passed=$((passed + ok))
	failed=$((failed + bad))
}

# Add one client suite's counts to the totals: $1 names it, $2 is its
# runner's exit status, $3 and $4 its passed and failed tests.  A runner
# that failed with no failing test, or printed no result at all, counts as
# one failure.
tally_client() {
	local label=$1 rc=$2 ok=$3 bad=$4
	if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
		echo "not ok - $label: the test runner failed"
		bad=1
	elif [ $((ok + bad)) -eq 0 ]; then
		echo "not ok - $label: no test result found in the output"
		bad=1
	fi
	passed=$((passed + ok))
	failed=$((failed + bad))
}

# Run the Node client's tests (node's test runner, TAP) and the Python
# client's (pytest); count their results.  $1 names the connection path.
run_clients() {
	local how=$1 out rc
	es_log "running the Node client's tests on PostgreSQL $PG_MAJOR ($how)"
	rc=0
	out=$(cd "$ES_ROOT/clients/node" &&
		node --test --test-reporter=tap test/*.test.js 2>&1) || rc=$?
	echo "$out"
	# Top-level results only; subtests are indented.
	tally_client "node client ($how)" "$rc" \
		"$(grep -cE '^ok [0-9]+ ' <<<"$out" || true)" \
		"$(grep -cE '^not ok [0-9]+ ' <<<"$out" || true)"

	es_log "running the Python client's tests on PostgreSQL $PG_MAJOR ($how)"
	rc=0
	out=$(cd "$ES_ROOT/clients/python" &&
		/usr/bin/python3 -m pytest -q -rA -p no:cacheprovider tests 2>&1) || rc=$?
	echo "$out"
	# pytest -rA ends with one "PASSED tests/..." or "FAILED tests/..." line
	# per test.
	tally_client "python client ($how)" "$rc" \
		"$(grep -cE '^PASSED tests/' <<<"$out" || true)" \
		"$(grep -cE '^(FAILED|ERROR) tests/' <<<"$out" || true)"
}

run_suite regression test/results_regress ISOLATION=
run_suite isolation test/results_isolation REGRESS=
run_script dump_restore test/dump_restore.sh
run_script upgrade test/upgrade.sh
run_script standby test/standby.sh
run_script logical_replication test/logical_replication.sh
ES_STRESS_SECONDS=${ES_STRESS_SECONDS:-8} run_script stress_read_all test/stress_read_all.sh
ES_CONFLICT_SECONDS=${ES_CONFLICT_SECONDS:-8} run_script stress_conflicts test/stress_conflicts.sh
ES_CRASH_ROUNDS=${ES_CRASH_ROUNDS:-3} run_script crash_safety test/crash_safety.sh
if [ -n "${ES_UPGRADE_FROM:-}" ]; then
	run_script pg_upgrade test/pg_upgrade.sh
fi

es_install_test_deps
run_clients direct
es_start_pgbouncer
run_script pgbouncer_wait test/pgbouncer_wait.sh
ES_PGBOUNCER_HOST=$ES_PGBOUNCER_HOST ES_PGBOUNCER_PORT=$ES_PGBOUNCER_PORT \
	run_clients "through pgbouncer, transaction mode"

echo
echo "PostgreSQL $PG_MAJOR: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
