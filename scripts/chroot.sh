# scripts/chroot.sh: PostgreSQL majors that Debian 12 does not carry, each in
# a Debian chroot of the release that does (17 in trixie, 18 in forky).
#
# A chroot is made once, with debootstrap, and kept in
# /var/cache/event_store/pg<major> (ES_CHROOT_ROOT); later runs reuse it.  It
# holds that major's server, client and server headers, a compiler and make:
# what scripts/test-major.sh needs to build the extension and run every
# suite inside it.  Its server binaries need the newer C library of their
# release, which is why they run in a chroot and not on the host.
#
# Source it (after scripts/lib.sh); do not run it.

ES_CHROOT_ROOT=${ES_CHROOT_ROOT:-/var/cache/event_store}

# The Debian release that carries a major, and debootstrap's extra arguments
# for it (Debian 12's debootstrap has no script for forky; sid's fits).
es_chroot_release() {
	case $1 in
	17) echo trixie ;;
	18) echo forky ;;
	*) return 1 ;;
	esac
}

es_chroot_dir() { echo "$ES_CHROOT_ROOT/pg$1"; }

# Mount what a chroot needs for a cluster to run in it, and undo it.
es_chroot_mount() {
	local dir
	dir=$(es_chroot_dir "$1")
	mountpoint -q "$dir/proc" || mount -t proc proc "$dir/proc"
	mkdir -p "$dir/dev/shm"
	mountpoint -q "$dir/dev/shm" || mount -t tmpfs -o mode=1777 tmpfs "$dir/dev/shm"
}

es_chroot_umount() {
	local dir
	dir=$(es_chroot_dir "$1")
	mountpoint -q "$dir/dev/shm" && umount "$dir/dev/shm"
	mountpoint -q "$dir/proc" && umount "$dir/proc"
	return 0
}

# Make the chroot for a major unless it is complete already.
es_chroot_ensure() {
	local major=$1 dir release script=() apt_opts=()
	dir=$(es_chroot_dir "$major")
	release=$(es_chroot_release "$major") || {
		echo "no Debian release is known to carry PostgreSQL $major" >&2
		return 1
	}
	[ -f "$dir/.event_store-ready" ] && return 0

	command -v debootstrap >/dev/null || {
		es_log "installing debootstrap"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
	}
	if [ "$release" = forky ]; then
		script=(/usr/share/debootstrap/scripts/sid)
		# The archive's forky Release file is past its Valid-Until date.
		apt_opts=(-o Acquire::Check-Valid-Until=false)
	fi
	es_log "making a Debian $release chroot for PostgreSQL $major in $dir (once)"
	rm -rf "$dir"
	mkdir -p "$dir"
	debootstrap --variant=minbase "$release" "$dir" http://deb.debian.org/debian \
		"${script[@]}" >"$ES_CHROOT_ROOT/pg$major-debootstrap.log" 2>&1 || {
		tail -20 "$ES_CHROOT_ROOT/pg$major-debootstrap.log" >&2
		return 1
	}
	es_chroot_mount "$major"
	chroot "$dir" apt-get "${apt_opts[@]}" update -qq &&
		chroot "$dir" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends "postgresql-$major" \
			"postgresql-server-dev-$major" make gcc libc6-dev >/dev/null
	local rc=$?
	es_chroot_umount "$major"
	[ "$rc" -eq 0 ] || return "$rc"
	# The package made a cluster of its own; the tests make theirs.
	rm -rf "$dir/var/lib/postgresql/$major/main" "$dir/etc/postgresql/$major/main"
	touch "$dir/.event_store-ready"
}

# Put a copy of the working tree at /build/event_store in the chroot.
es_chroot_copy_source() {
	local dir
	dir=$(es_chroot_dir "$1")
	rm -rf "$dir/build/event_store"
	mkdir -p "$dir/build/event_store"
	tar -C "$ES_ROOT" --exclude=.git --exclude='*.o' --exclude='*.so' \
		--exclude='*.bc' --exclude=test/results_regress \
		--exclude=test/results_isolation -cf - . |
		tar -C "$dir/build/event_store" -xf -
}

# Copy another major's installed server (binaries, libraries, shared files,
# the extension built for it) into the chroot, with the libraries its
# binaries need that the chroot's release lacks, for pg_upgrade from it.
# $1: the chroot's major; $2: the source root ("/" for the host, or another
# chroot's directory); $3: the old major.
es_chroot_copy_server() {
	local major=$1 src=$2 old=$3 dir lib
	dir=$(es_chroot_dir "$major")
	rm -rf "$dir/usr/lib/postgresql/$old" "$dir/usr/share/postgresql/$old"
	mkdir -p "$dir/usr/lib/postgresql" "$dir/usr/share/postgresql"
	cp -a "$src/usr/lib/postgresql/$old" "$dir/usr/lib/postgresql/"
	cp -a "$src/usr/share/postgresql/$old" "$dir/usr/share/postgresql/"
	mkdir -p "$dir/usr/lib/postgresql/$old/compat-libs"
	# Every shared library the old binaries use that the chroot does not
	# have under the same name.
	for lib in $(chroot "$src" sh -c "ldd /usr/lib/postgresql/$old/bin/* \
			/usr/lib/postgresql/$old/lib/*.so 2>/dev/null" |
		awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u); do
		if ! chroot "$dir" sh -c "ldconfig -p | grep -q '$(basename "$lib") '"; then
			cp -L "$src$lib" "$dir/usr/lib/postgresql/$old/compat-libs/"
		fi
	done
}
