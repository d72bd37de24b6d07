#!/usr/bin/env bash
# scripts/test.sh: set everything up and run every test suite on every
# PostgreSQL major event_store supports: 15, 17 and 18 (ES_PG_MAJORS).
#
# 15 runs on this Debian 12 machine.  17 and 18 run in Debian chroots of the
# releases that carry them (scripts/chroot.sh), made on the first run and
# reused after.  For each major, scripts/test-major.sh builds the extension
# with -Wall -Wextra -Werror, starts a throwaway cluster and runs the
# regression and isolation suites, the cluster-level tests and the Node and
# Python clients' tests (directly and through pgbouncer); each major after
# the first also tests pg_upgrade from the major before it (15 to 17,
# 17 to 18).  Every line of a major's output is prefixed with it, failures
# print their diffs, and the run ends with the plain line
# "N passed, N failed".  Exits non-zero on any failure.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$ES_ROOT/scripts/chroot.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "run this as root (it installs packages and the extension)" >&2
	exit 1
fi

majors=${ES_PG_MAJORS:-"15 17 18"}
host_major=15
total_passed=0
total_failed=0
summary=()
previous=

# Run one major's tests; $1 is the major, the rest the command.
run_major() {
	local major=$1 log rc=0 line start
	shift
	log=$(mktemp "/tmp/event_store_pg$major.XXXXXX.log")
	start=$(date +%s)
	"$@" 2>&1 | tee "$log" | sed -u "s/^/[pg$major] /" || rc=$?
	line=$(grep -E "^PostgreSQL $major: [0-9]+ passed, [0-9]+ failed$" "$log" | tail -1 || true)
	if [ -z "$line" ]; then
		line="PostgreSQL $major: 0 passed, 1 failed (the run stopped early)"
	elif [ "$rc" -ne 0 ] && [ "$(awk '{ print $5 }' <<<"$line")" = 0 ]; then
		line="PostgreSQL $major: $(awk '{ print $3 }' <<<"$line") passed, 1 failed"
	fi
	total_passed=$((total_passed + $(awk '{ print $3 }' <<<"$line")))
	total_failed=$((total_failed + $(awk '{ print $5 }' <<<"$line")))
	summary+=("$line ($(($(date +%s) - start)) s)")
	rm -f "$log"
}

# The client packages' test dependencies on this machine; the Node client's
# modules installed here are copied into the chroots with the source.
es_install_test_deps

for major in $majors; do
	if [ "$major" = "$host_major" ]; then
		run_major "$major" env PG_MAJOR="$major" bash "$ES_ROOT/scripts/test-major.sh"
	else
		es_log "PostgreSQL $major: preparing its chroot"
		if ! es_chroot_ensure "$major"; then
			summary+=("PostgreSQL $major: 0 passed, 1 failed (no chroot)")
			total_failed=$((total_failed + 1))
			previous=$major
			continue
		fi
		es_chroot_copy_source "$major"
		# pg_upgrade from the major tested just before, with the extension
		# as that run built and installed it.
		upgrade_from=
		if [ -n "$previous" ]; then
			if [ "$previous" = "$host_major" ]; then
				es_chroot_copy_server "$major" / "$previous"
			else
				es_chroot_copy_server "$major" "$(es_chroot_dir "$previous")" "$previous"
			fi
			upgrade_from=$previous
		fi
		es_chroot_mount "$major"
		run_major "$major" chroot "$(es_chroot_dir "$major")" env -i \
			PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
			PG_MAJOR="$major" ES_UPGRADE_FROM="$upgrade_from" \
			${ES_STRESS_SECONDS:+ES_STRESS_SECONDS=$ES_STRESS_SECONDS} \
			${ES_CONFLICT_SECONDS:+ES_CONFLICT_SECONDS=$ES_CONFLICT_SECONDS} \
			${ES_CRASH_ROUNDS:+ES_CRASH_ROUNDS=$ES_CRASH_ROUNDS} \
			bash /build/event_store/scripts/test-major.sh
		es_chroot_umount "$major"
	fi
	previous=$major
done

echo
for line in "${summary[@]}"; do
	echo "$line"
done
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
