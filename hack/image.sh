#!/usr/bin/env bash
# image.sh — build proxyd's container image with no registry in reach.
#
#   hack/image.sh                  build the image (make image); prints its
#                                  tag, localhost/lbkit/proxyd:VERSION, which
#                                  is also tagged :latest
#   hack/image.sh podman ARGS...   podman with the flags this machine needs
#                                  (see engine flags below), e.g.
#                                  hack/image.sh podman run --rm IMAGE version
#
# 1. proxyd is built statically on the host (CGO_ENABLED=0), its version
#    stamped into main.version.
# 2. The base is localhost/lbkit-debian-base:bookworm: Debian bookworm made
#    by mmdebstrap from the Debian mirror of /etc/apt/sources.list* with the
#    datapaths' tools already in, imported once and reused while its package
#    list is the one below. LBKIT_IMAGE_BASE names another base instead
#    (e.g. debian:bookworm-slim where a registry is reachable).
# 3. podman build (or buildah bud when podman is missing) of the Dockerfile,
#    with no network when the base is ours.
#
# Environment:
#   LBKIT_VERSION             version to stamp and tag (default: git describe)
#   LBKIT_IMAGE_BASE          base image to build on instead of ours
#   LBKIT_IMAGE_REBUILD_BASE  1: make our base anew even if it is cached
#   LBKIT_DEBIAN_MIRROR       Debian archive URI (default: the host's)
#   LBKIT_IMAGE_TOOL          podman or buildah (default: podman if installed)
#   LBKIT_PODMAN_STORAGE_DRIVER  storage driver for podman/buildah (default:
#                             theirs; vfs where overlay mounts fail)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH=/usr/local/go/bin:$PATH

IMAGE=localhost/lbkit/proxyd
BASE_IMAGE=localhost/lbkit-debian-base:bookworm
SUITE=bookworm
BASE_PACKAGES=iptables,nftables,conntrack,kmod,ca-certificates
BASE_LABEL=org.lbkit.base.packages

# CLEANUP lists the files and directories to remove when the script exits,
# however it exits.
CLEANUP=()
cleanup() {
	local p
	for p in "${CLEANUP[@]}"; do rm -rf "$p"; done
	rmdir "$ROOT/_output" 2>/dev/null || true
}
trap cleanup EXIT

log() { echo "image: $*" >&2; }
die() {
	echo "image: $*" >&2
	exit 1
}

# pick_tool sets TOOL to podman or buildah.
pick_tool() {
	TOOL=${LBKIT_IMAGE_TOOL:-}
	if [ -z "$TOOL" ]; then
		if command -v podman >/dev/null; then
			TOOL=podman
		elif command -v buildah >/dev/null; then
			TOOL=buildah
		else
			die "neither podman nor buildah is installed: apt-get install podman (or buildah)"
		fi
	fi
	case $TOOL in
	podman | buildah) command -v "$TOOL" >/dev/null || die "$TOOL is not installed: apt-get install $TOOL" ;;
	*) die "LBKIT_IMAGE_TOOL=$TOOL: want podman or buildah" ;;
	esac
}

# hybrid_cgroups reports whether the host mounts cgroup v1 controllers with
# a cgroup v2 tree beside them that has controllers of its own, which crun
# (podman's default runtime on Debian) refuses to run containers on.
hybrid_cgroups() {
	[ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = tmpfs ] &&
		[ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]
}

# lacks_sys_resource reports whether this process may not raise resource
# limits (CAP_SYS_RESOURCE, bit 24 of the effective capabilities), as in a
# sandbox.
lacks_sys_resource() {
	local eff
	eff=$(awk '/^CapEff:/ { print $2 }' /proc/self/status)
	[ -n "$eff" ] && (((16#$eff >> 24 & 1) == 0))
}

# engine_flags sets GLOBAL (flags before podman's subcommand), CTR (flags of
# podman run/create/build) and RUNTIME (the OCI runtime to use, if not the
# default) for this machine. Everything is a flag: nothing is written to the
# system's container configuration.
engine_flags() {
	GLOBAL=() CTR=() RUNTIME=
	# No systemd or journald needed: cgroups by hand, events in a file.
	if [ "$TOOL" = podman ]; then
		GLOBAL+=(--cgroup-manager=cgroupfs --events-backend=file)
	fi
	if [ -n "${LBKIT_PODMAN_STORAGE_DRIVER:-}" ]; then
		GLOBAL+=("--storage-driver=$LBKIT_PODMAN_STORAGE_DRIVER")
	fi
	if hybrid_cgroups; then
		command -v runc >/dev/null ||
			die "this host mixes cgroup v1 and v2 (hybrid), which crun refuses; apt-get install runc"
		RUNTIME=runc
		if [ "$TOOL" = podman ]; then GLOBAL+=(--runtime=runc); fi
	fi
	if lacks_sys_resource; then
		# Without CAP_SYS_RESOURCE no limit can be raised, but podman asks
		# for 1048576 open files by default, and podman and buildah lower
		# their own process limit to 32768 when they start: ask for what
		# is there.
		local nofile nproc
		nofile=$(ulimit -Hn) nproc=$(ulimit -Hu)
		if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
		CTR+=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")
	fi
}

# podman_cmd runs podman SUBCOMMAND ARGS with this machine's flags.
podman_cmd() {
	local sub=$1
	shift
	case $sub in
	run | create | build) podman "${GLOBAL[@]}" "$sub" "${CTR[@]}" "$@" ;;
	*) podman "${GLOBAL[@]}" "$sub" "$@" ;;
	esac
}

# buildah_cmd runs buildah SUBCOMMAND ARGS with this machine's flags.
buildah_cmd() {
	local sub=$1
	shift
	case $sub in
	bud | build)
		local rt=()
		[ -z "$RUNTIME" ] || rt=(--runtime "$RUNTIME")
		buildah "${GLOBAL[@]}" "$sub" "${rt[@]}" "${CTR[@]}" "$@"
		;;
	*) buildah "${GLOBAL[@]}" "$sub" "$@" ;;
	esac
}

# image_label prints label $2 of image $1, or fails when the image is not in
# local storage.
image_label() {
	local fmt="{{index .Labels \"$2\"}}"
	if [ "$TOOL" = podman ]; then
		podman_cmd image inspect --format "$fmt" "$1" 2>/dev/null
	else
		buildah_cmd inspect --type image --format "{{index .OCIv1.Config.Labels \"$2\"}}" "$1" 2>/dev/null
	fi
}

# image_id prints the ID of image $1, or nothing when local storage lacks it.
image_id() {
	if [ "$TOOL" = podman ]; then
		podman_cmd image inspect --format '{{.Id}}' "$1" 2>/dev/null || true
	else
		buildah_cmd inspect --type image --format '{{.FromImageID}}' "$1" 2>/dev/null || true
	fi
}

# drop_if_dangling removes the images of IDs $@ that lost their last tag to
# a newer build, so that rebuilds do not pile up in local storage.
drop_if_dangling() {
	local dangling id
	dangling=$("${TOOL}_cmd" images -q --no-trunc --filter dangling=true 2>/dev/null | sed 's/^sha256://')
	for id in "$@"; do
		if [ -n "$id" ] && grep -qx "$id" <<<"$dangling"; then
			"${TOOL}_cmd" rmi "$id" >/dev/null 2>&1 || true
		fi
	done
}

# debian_sources prints the one-line sources mmdebstrap gets: bookworm and
# bookworm-updates from the host's Debian archive, bookworm-security from
# its security archive when it has one. The archives are the URIs of the
# host's apt sources (one-line .list or deb822 .sources) whose path ends in
# /debian or /debian-security, whatever release the host runs.
debian_sources() {
	local main=${LBKIT_DEBIAN_MIRROR:-} security=
	local files=()
	[ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
	for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] && files+=("$f")
	done
	local uris=""
	if [ ${#files[@]} -gt 0 ]; then
		# One-line: "deb [opts] URI SUITE COMPONENTS"; deb822: "URIs: URI ...".
		uris=$(awk '
			/^[[:space:]]*#/ { next }
			$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) { print $i; break } ; next }
			tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }
		' "${files[@]}")
	fi
	local u
	for u in $uris; do
		u=${u%/}
		case $u in
		*/debian-security) [ -n "$security" ] || security=$u ;;
		*/debian) [ -n "$main" ] || main=$u ;;
		esac
	done
	if [ -z "$main" ]; then
		main=http://deb.debian.org/debian
		log "no Debian archive in /etc/apt/sources.list*; using $main (set LBKIT_DEBIAN_MIRROR to change)"
	fi
	echo "deb ${main%/} $SUITE main"
	echo "deb ${main%/} $SUITE-updates main"
	[ -z "$security" ] || echo "deb $security $SUITE-security main"
}

# ensure_base makes BASE_IMAGE with mmdebstrap unless local storage holds it
# with the same package list.
ensure_base() {
	if [ "${LBKIT_IMAGE_REBUILD_BASE:-0}" != 1 ]; then
		local have
		if have=$(image_label "$BASE_IMAGE" "$BASE_LABEL") && [ "$have" = "$BASE_PACKAGES" ]; then
			log "reusing base image $BASE_IMAGE"
			return 0
		fi
	fi
	command -v mmdebstrap >/dev/null ||
		die "the base image $BASE_IMAGE is not in local storage and mmdebstrap, which makes it, is not installed: apt-get install mmdebstrap (or set LBKIT_IMAGE_BASE to a bookworm image you have)"
	local sources=()
	mapfile -t sources < <(debian_sources)
	log "making base image $BASE_IMAGE with mmdebstrap from: ${sources[*]}"
	local work start=$SECONDS
	work=$(mktemp -d "${TMPDIR:-/var/tmp}/lbkit-base.XXXXXX")
	CLEANUP+=("$work")
	# minbase plus the datapaths' tools; merged /usr without the usrmerge
	# package (which pulls in perl); no recommends; no manuals, info pages,
	# translations or docs except the copyright files, as in Debian's slim
	# images.
	mmdebstrap --variant=minbase --include="$BASE_PACKAGES" \
		--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
		--aptopt='APT::Install-Recommends "false"' \
		--dpkgopt='path-exclude=/usr/share/man/*' \
		--dpkgopt='path-exclude=/usr/share/info/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' \
		--dpkgopt='path-exclude=/usr/share/doc/*' \
		--dpkgopt='path-include=/usr/share/doc/*/copyright' \
		"$SUITE" "$work/rootfs.tar" "${sources[@]}" >"$work/mmdebstrap.log" 2>&1 || {
		tail -n 30 "$work/mmdebstrap.log" >&2
		die "mmdebstrap failed (log above)"
	}
	local label="$BASE_LABEL=$BASE_PACKAGES"
	if [ "$TOOL" = podman ]; then
		podman_cmd import --quiet --change "LABEL $label" --change 'CMD ["/bin/bash"]' \
			"$work/rootfs.tar" "$BASE_IMAGE" >/dev/null
	else
		local ctr
		ctr=$(buildah_cmd from scratch)
		buildah_cmd add "$ctr" "$work/rootfs.tar" / >/dev/null
		buildah_cmd config --label "$label" --cmd /bin/bash "$ctr"
		buildah_cmd commit --quiet --rm "$ctr" "$BASE_IMAGE" >/dev/null
	fi
	rm -rf "$work"
	log "base image $BASE_IMAGE made in $((SECONDS - start))s"
}

# version prints the version to stamp and tag: LBKIT_VERSION, else git
# describe (vX.Y.Z[-N-gREV][-dirty]), else devel-REV, else devel.
version() {
	local v=${LBKIT_VERSION:-}
	if [ -z "$v" ]; then
		v=$(git -C "$ROOT" describe --tags --always --dirty 2>/dev/null || true)
		case $v in
		"") v=devel ;;
		v*) ;;
		*) v=devel-$v ;;
		esac
	fi
	[[ $v =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] ||
		die "version '$v' is not a valid image tag (letters, digits, '_', '.', '-'; at most 128)"
	echo "$v"
}

# build_binary builds the static proxyd into _output/proxyd.
build_binary() {
	local v=$1
	command -v go >/dev/null || die "go is not installed (want /usr/local/go/bin/go)"
	mkdir -p "$ROOT/_output"
	log "building proxyd $v (static, $(go env GOOS)/$(go env GOARCH))"
	# -buildvcs=auto stamps the git revision that `proxyd version` prints,
	# whatever GOFLAGS says.
	(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -buildvcs=auto \
		-ldflags "-s -w -X main.version=$v" -o _output/proxyd ./proxyd)
}

build_image() {
	local start=$SECONDS v base rev old_image old_base
	v=$(version)
	old_image=$(image_id "$IMAGE:latest")
	old_base=$(image_id "$BASE_IMAGE")
	rev=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || true)
	CLEANUP+=("$ROOT/_output/proxyd")
	build_binary "$v"
	local net=()
	if [ -n "${LBKIT_IMAGE_BASE:-}" ]; then
		base=$LBKIT_IMAGE_BASE
		# The Dockerfile may need apt. The host's network, not a bridge:
		# podman then adds no NAT rules, links or addresses to the host.
		net=(--network=host)
	else
		ensure_base
		base=$BASE_IMAGE
		# Everything is local: no pull, no network.
		net=(--network=none --pull=never)
	fi
	log "building $IMAGE:$v on $base with $TOOL"
	local args=(-f "$ROOT/Dockerfile" --build-arg "BASE=$base" --build-arg "VERSION=$v"
		--build-arg "REVISION=$rev" "${net[@]}" -t "$IMAGE:$v" -t "$IMAGE:latest" "$ROOT")
	if [ "$TOOL" = podman ]; then
		podman_cmd build --quiet "${args[@]}" >/dev/null
	else
		buildah_cmd bud --quiet "${args[@]}" >/dev/null
	fi
	drop_if_dangling "$old_image"
	drop_if_dangling "$old_base"
	log "built $IMAGE:$v in $((SECONDS - start))s"
	echo "$IMAGE:$v"
}

[ "$(id -u)" = 0 ] || die "building the image needs root (podman's storage, mmdebstrap's chroot): run as root"
pick_tool
engine_flags
case ${1:-build} in
build) build_image ;;
podman)
	shift
	[ "$TOOL" = podman ] || die "podman is not installed: apt-get install podman"
	[ $# -gt 0 ] || die "usage: hack/image.sh podman SUBCOMMAND [ARGS...]"
	podman_cmd "$@"
	;;
*) die "usage: hack/image.sh [build | podman SUBCOMMAND [ARGS...]]" ;;
esac
