#!/usr/bin/env bash
# scripts/test.sh: set everything up and run every test suite.
#
# Installs the build dependencies, builds with -Wall -Wextra -Werror,
# installs, starts a throwaway cluster (wal_level = logical), runs the
# regression suite, the isolation suite, the dump-and-restore, upgrade,
# hot-standby and logical replication tests, and short runs of the read_all
# stress test, the conflict stress test and the crash test, prints
# regression.diffs of any suite that fails, and exits non-zero on any
# failure.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
es_setup -c wal_level=logical

passed=0
failed=0

# Run one pg_regress-driven suite through PGXS; count its results.
run_suite() {
	local name=$1 outdir=$2
	shift 2
	local log="$ES_TMP/$name.log" rc=0
	es_log "running the $name suite"
	make -C "$ES_ROOT" -s installcheck "$@" >"$log" 2>&1 || rc=$?
	cat "$log"
	local ok bad
	ok=$(grep -cE '\.\.\. ok ' "$log" || true)
	bad=$(grep -cE '\.\.\. FAILED' "$log" || true)
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

# Run one shell test script; it prints "ok" on success.
run_script() {
	local name=$1 script=$2 out rc=0
	es_log "running $name"
	out=$(bash "$ES_ROOT/$script" 2>&1) || rc=$?
	echo "$out"
	if [ "$rc" -eq 0 ]; then
		echo "test $name ... ok"
		passed=$((passed + 1))
	else
		echo "test $name ... FAILED"
		failed=$((failed + 1))
	fi
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

echo
echo "event_store tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
