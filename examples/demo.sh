#!/usr/bin/env bash
# The embedded-default demo: no root, no cluster. Starts the backends of
# examples/services.yaml on 127.0.0.1, runs proxyd on the userspace datapath,
# sends traffic through every frontend, prints the spread, and stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

bin=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$bin"' EXIT
go build -o "$bin/proxyd" ./proxyd
go build -o "$bin/backends" ./examples/backends

"$bin/backends" --services examples/services.yaml >"$bin/backends.log" 2>&1 &
"$bin/proxyd" --mode=userspace --services examples/services.yaml \
	--healthz-bind-address 127.0.0.1:10256 --log-format=console >"$bin/proxyd.log" 2>&1 &

# Wait (at most 10 s) until proxyd serves the first frontend.
for _ in $(seq 100); do
	if (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null; then
		break
	fi
	sleep 0.1
done
echo "--- proxyd log"
cat "$bin/proxyd.log"
echo "--- traffic through proxyd"
"$bin/backends" --services examples/services.yaml -probe "${1:-300}"
echo "--- proxyd explain 127.0.0.1:8080/tcp"
"$bin/proxyd" explain 127.0.0.1:8080/tcp
