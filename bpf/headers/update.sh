#!/usr/bin/env bash
# Refreshes the libbpf helper headers in this directory from the libbpf-dev
# package of the build machine (Debian 12: libbpf 1.1.2). The kernel UAPI
# headers (linux/bpf.h, linux/ip.h, ...) are not copied: they come from
# linux-libc-dev, found with -I/usr/include/$(gcc -print-multiarch).
set -euo pipefail
cd "$(dirname "$0")"
src=${LIBBPF_INCLUDE:-/usr/include/bpf}
for f in bpf_helpers.h bpf_helper_defs.h bpf_endian.h; do
	if [ ! -f "$src/$f" ]; then
		echo "update.sh: $src/$f not found; install libbpf-dev" >&2
		exit 1
	fi
	cp "$src/$f" "$f"
done
dpkg-query -W -f='libbpf-dev ${Version}\n' libbpf-dev > VERSION 2>/dev/null || echo "libbpf from $src" > VERSION
