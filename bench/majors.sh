#!/usr/bin/env bash
# bench/majors.sh: run bench/run.sh on each PostgreSQL major, in one sitting.
#
#   BENCH_WORKLOADS=own BENCH_CLIENTS=4 bash bench/majors.sh
#
# 15 runs on this machine, 17 and 18 in their chroots (scripts/chroot.sh,
# made by the test command or here).  Every BENCH_* setting is passed on;
# each major writes bench/results/<date>-<commit>-pg<major>.md.  Compare the
# ratios within a major (each major's methods run interleaved in the same
# cluster); across majors the machine's load may differ.

source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
source "$ES_ROOT/scripts/chroot.sh"

majors=${BENCH_PG_MAJORS:-"15 17 18"}
stamp=$(date +%F)-$(git -C "$ES_ROOT" rev-parse --short HEAD 2>/dev/null || echo nogit)
settings=()
for v in $(compgen -e | grep '^BENCH_' | grep -v '^BENCH_RESULTS$\|^BENCH_PG_MAJORS$'); do
	settings+=("$v=${!v}")
done

for major in $majors; do
	es_log "benchmark on PostgreSQL $major"
	if [ "$major" = 15 ]; then
		env "${settings[@]}" PG_MAJOR=15 \
			BENCH_RESULTS="$ES_ROOT/bench/results/$stamp-pg15.md" \
			bash "$ES_ROOT/bench/run.sh"
	else
		es_chroot_ensure "$major"
		es_chroot_copy_source "$major"
		es_chroot_mount "$major"
		chroot "$(es_chroot_dir "$major")" env -i \
			PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
			"${settings[@]}" PG_MAJOR="$major" \
			BENCH_RESULTS="/build/event_store/bench/results/$stamp-pg$major.md" \
			bash /build/event_store/bench/run.sh || true
		es_chroot_umount "$major"
		cp "$(es_chroot_dir "$major")/build/event_store/bench/results/$stamp-pg$major".* \
			"$ES_ROOT/bench/results/" 2>/dev/null || true
	fi
done
