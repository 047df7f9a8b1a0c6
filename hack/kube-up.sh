#!/usr/bin/env bash
# kube-up.sh — a real Kubernetes API server (kube-apiserver + etcd) on
# loopback, for proxyd's end-to-end tests and for trying proxyd by hand.
#
#   hack/kube-up.sh build        build (once) and print the bin directory
#   hack/kube-up.sh up DIR       start etcd and kube-apiserver with state in
#                                DIR; writes DIR/admin.kubeconfig, DIR/env
#   hack/kube-up.sh down DIR     stop what `up DIR` started
#
# kube-apiserver is built from the Go module proxy (no registry or release
# download is reachable from our machines) and cached under
# ${XDG_CACHE_HOME:-~/.cache}/lbkit/kube/<version>/, so only the first run
# pays for it (about 18 minutes on 2 cores). etcd is Debian's etcd-server
# when installed, else built from the module proxy into the same cache.
# LBKIT_KUBE_VERSION picks the Kubernetes release (default below).
set -euo pipefail

KUBE_VERSION=${LBKIT_KUBE_VERSION:-v1.37.2}
ETCD_MODULE_VERSION=v3.7.3
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/lbkit/kube/$KUBE_VERSION
export PATH=/usr/local/go/bin:$PATH

log() { echo "kube-up: $*" >&2; }

# build_apiserver compiles kube-apiserver from a throwaway module that
# requires k8s.io/kubernetes and pins each of its k8s.io/* v0.0.0 staging
# requirements to the matching v0.x release (kubernetes' own replace block
# points at directories the module proxy does not serve).
build_apiserver() {
	local out=$CACHE/bin/kube-apiserver
	[ -x "$out" ] && return 0
	local work staging
	work=$(mktemp -d)
	staging=v0.${KUBE_VERSION#v1.}
	log "building kube-apiserver $KUBE_VERSION (once; cached in $CACHE)"
	(
		cd "$work"
		go mod init lbkit.local/kubebuild >/dev/null 2>&1
		go mod edit -require=k8s.io/kubernetes@"$KUBE_VERSION"
		local gomod
		gomod=$(go mod download -json k8s.io/kubernetes@"$KUBE_VERSION" |
			sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
		[ -n "$gomod" ] || { log "cannot download k8s.io/kubernetes@$KUBE_VERSION"; exit 1; }
		local mods
		mods=$(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" { print $1 }' "$gomod" | sort -u)
		[ -n "$mods" ] || { log "no k8s.io staging modules in $gomod"; exit 1; }
		for m in $mods; do
			go mod edit -replace="$m=$m@$staging"
		done
		cat >tools.go <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
		go mod tidy >/dev/null
		mkdir -p "$CACHE/bin"
		CGO_ENABLED=0 go build -trimpath -o "$out.tmp" k8s.io/kubernetes/cmd/kube-apiserver
		mv "$out.tmp" "$out"
	) || { rm -rf "$work"; return 1; }
	rm -rf "$work"
}

# etcd_bin prints the etcd to use: Debian's, else one built from the
# module proxy into the cache.
etcd_bin() {
	if command -v etcd >/dev/null 2>&1; then
		command -v etcd
		return 0
	fi
	local out=$CACHE/bin/etcd
	if [ ! -x "$out" ]; then
		log "building etcd $ETCD_MODULE_VERSION (no etcd-server package installed)"
		mkdir -p "$CACHE/bin"
		GOBIN=$CACHE/bin.tmp CGO_ENABLED=0 go install -trimpath go.etcd.io/etcd/server/v3@"$ETCD_MODULE_VERSION"
		mv "$CACHE/bin.tmp/server" "$out" 2>/dev/null || mv "$CACHE/bin.tmp/v3" "$out"
		rm -rf "$CACHE/bin.tmp"
	fi
	echo "$out"
}

cmd_build() {
	mkdir -p "$CACHE"
	# One build at a time: a second caller waits and then finds the cache.
	exec 9>"$CACHE/.lock"
	flock 9
	build_apiserver
	local etcd
	etcd=$(etcd_bin)
	ln -sf "$etcd" "$CACHE/bin/etcd" 2>/dev/null || true
	echo "$CACHE/bin"
}

free_port() {
	python3 - <<'PY' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])
PY
}

cmd_up() {
	local dir=${1:?usage: kube-up.sh up DIR}
	local bin
	bin=$(cmd_build)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	local etcd_port peer_port api_port
	etcd_port=$(free_port); peer_port=$(free_port); api_port=$(free_port)

	# A CA and a serving certificate for 127.0.0.1, a service-account key
	# pair, and an admin token.
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=lbkit-e2e-ca \
		-keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj /CN=kube-apiserver \
		-keyout "$dir/apiserver.key" -out "$dir/apiserver.csr" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$dir/san.ext"
	openssl x509 -req -in "$dir/apiserver.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
		-CAcreateserial -days 2 -extfile "$dir/san.ext" -out "$dir/apiserver.crt" 2>/dev/null
	openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
	openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
	local token
	token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
	echo "$token,admin,admin,system:masters" >"$dir/tokens.csv"

	"$bin/etcd" --name lbkit-e2e --data-dir "$dir/etcd" \
		--listen-client-urls "http://127.0.0.1:$etcd_port" \
		--advertise-client-urls "http://127.0.0.1:$etcd_port" \
		--listen-peer-urls "http://127.0.0.1:$peer_port" \
		--initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
		--initial-cluster "lbkit-e2e=http://127.0.0.1:$peer_port" \
		>"$dir/etcd.log" 2>&1 &
	echo $! >"$dir/etcd.pid"

	# --allow-privileged, as kubeadm sets it: the API server otherwise
	# rejects privileged pod templates, such as proxyd's DaemonSet in ipvs
	# mode (examples/kubernetes).
	"$bin/kube-apiserver" \
		--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
		--etcd-servers="http://127.0.0.1:$etcd_port" \
		--tls-cert-file="$dir/apiserver.crt" --tls-private-key-file="$dir/apiserver.key" \
		--client-ca-file="$dir/ca.crt" --token-auth-file="$dir/tokens.csv" \
		--authorization-mode=RBAC \
		--allow-privileged=true \
		--service-account-issuer=https://kubernetes.default.svc \
		--service-account-key-file="$dir/sa.pub" \
		--service-account-signing-key-file="$dir/sa.key" \
		--service-cluster-ip-range=198.19.0.0/16 \
		--endpoint-reconciler-type=none \
		>"$dir/apiserver.log" 2>&1 &
	echo $! >"$dir/apiserver.pid"

	cat >"$dir/admin.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: lbkit-e2e
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority: $dir/ca.crt
users:
- name: admin
  user:
    token: $token
contexts:
- name: lbkit-e2e
  context: {cluster: lbkit-e2e, user: admin}
current-context: lbkit-e2e
KC
	printf 'KUBECONFIG=%s\nLBKIT_KUBE_SERVER=https://127.0.0.1:%s\n' "$dir/admin.kubeconfig" "$api_port" >"$dir/env"

	local i
	for i in $(seq 1 120); do
		if curl -fsS --cacert "$dir/ca.crt" -H "Authorization: Bearer $token" \
			"https://127.0.0.1:$api_port/readyz" >/dev/null 2>&1; then
			log "kube-apiserver ready at https://127.0.0.1:$api_port (kubeconfig $dir/admin.kubeconfig)"
			return 0
		fi
		if ! kill -0 "$(cat "$dir/apiserver.pid")" 2>/dev/null; then
			log "kube-apiserver exited; last lines of $dir/apiserver.log:"
			tail -20 "$dir/apiserver.log" >&2
			cmd_down "$dir"
			return 1
		fi
		sleep 0.5
	done
	log "kube-apiserver not ready after 60 s; see $dir/apiserver.log"
	cmd_down "$dir"
	return 1
}

# cmd_down stops the API server, then etcd (so that the API server does not
# spend its shutdown retrying an etcd that is gone), and waits for each to
# exit, killing it after 20 s: once down returns, DIR can be removed.
cmd_down() {
	local dir=${1:?usage: kube-up.sh down DIR} p pid i
	for p in apiserver etcd; do
		[ -f "$dir/$p.pid" ] || continue
		pid=$(cat "$dir/$p.pid")
		if kill "$pid" 2>/dev/null; then
			for i in $(seq 1 200); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			if kill -0 "$pid" 2>/dev/null; then
				log "$p (pid $pid) still runs 20 s after SIGTERM; killing it"
				kill -KILL "$pid" 2>/dev/null || true
			fi
		fi
		rm -f "$dir/$p.pid"
	done
}

case ${1:-} in
build) cmd_build ;;
up) shift; cmd_up "$@" ;;
down) shift; cmd_down "$@" ;;
*) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac
