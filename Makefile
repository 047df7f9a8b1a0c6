# lbkit — build, test, lint, bench.
#
#   make deps       install the Debian packages the tests use (.ci/packages.txt)
#   make test       the test suite (as root: real kernels in network namespaces;
#                   as any other user: privileged tests skip with a message)
#   make test-user  the suite again as an unprivileged user (nobody), run by CI
#   make cross      build and vet the portable packages for macOS and Windows
#   make lint       gofmt, go vet, staticcheck
#   make bench      engine benchmarks at 1k/5k/10k services
#   make vmtest     IPVS tests in a QEMU guest (make test runs them too when
#                   qemu is installed)
#   make e2e        end-to-end tests against a real kube-apiserver and etcd
#                   (kube-apiserver is built once into ~/.cache/lbkit/kube),
#                   and of the container image (root; run by CI)
#   make bench-kube proxyd with 10k Kubernetes services: first sync, RSS and
#                   programming latency per mode
#   make image      proxyd's container image, localhost/lbkit/proxyd (root;
#                   podman or buildah, mmdebstrap)

GO          ?= go
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $(HOME)/go/bin/staticcheck)
PKGS        := ./...
# The race detector needs cgo and a C compiler; without one, test without it.
RACE        ?= $(shell [ "$$($(GO) env CGO_ENABLED)" = 1 ] && command -v "$$($(GO) env CC)" >/dev/null 2>&1 && echo -race)

.PHONY: all build cross deps test test-user lint bench clean demo bpf bpf-check vmtest vmtest-bench e2e image bench-kube

all: build

build:
	$(GO) build $(PKGS)

# The packages that must work beyond Linux (the model, Maglev, the services
# file and the userspace datapath) build and vet for macOS and Windows too;
# Linux-only code they reach sits behind build tags (internal/nsutil).
CROSS_PKGS    := ./lb ./lb/maglev ./sources/file ./backends/userspace
CROSS_TARGETS := darwin/arm64 windows/amd64

cross:
	@set -e; for t in $(CROSS_TARGETS); do \
		echo "GOOS=$${t%/*} GOARCH=$${t#*/}: go build, go vet $(CROSS_PKGS)"; \
		GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) build $(CROSS_PKGS); \
		GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) vet $(CROSS_PKGS); \
	done

# The one list of Debian packages the build and tests use; CI installs the
# same. A test whose tool is missing skips naming the package, or fails when
# LBKIT_REQUIRE_TOOLS=1 (CI sets it for make test).
deps:
	bash .ci/deps

test:
	$(GO) vet $(PKGS)
	$(GO) test $(RACE) -count=1 -timeout 30m $(PKGS)

# The same tests as an unprivileged user, to prove privileged parts skip
# cleanly and the userspace datapath needs no privileges.
test-user:
	@test "$$(id -u)" = 0 || { echo "test-user drops privileges and must start as root"; exit 1; }
	rm -rf /tmp/lbkit-user && mkdir -p /tmp/lbkit-user/src
	cp -r . /tmp/lbkit-user/src && chown -R 65534:65534 /tmp/lbkit-user
	cd /tmp/lbkit-user/src && setpriv --reuid=65534 --regid=65534 --clear-groups \
		env HOME=/tmp/lbkit-user GOCACHE=/tmp/lbkit-user/cache GOPATH=/tmp/lbkit-user/gopath \
		GOTOOLCHAIN=local LBKIT_VMTEST=0 PATH="$$PATH" \
		$(GO) test -count=1 -timeout 20m $(PKGS)
	rm -rf /tmp/lbkit-user

# make test runs the Kubernetes end-to-end tests too once kube-apiserver is
# built; e2e builds it first (minutes, once) and adds the image test.
e2e:
	bash hack/kube-up.sh build
	LBKIT_E2E=1 $(GO) test -count=1 -timeout 40m ./internal/kubetest/ ./examples/...
	LBKIT_E2E=1 $(GO) test -count=1 -timeout 20m -run Kubernetes ./proxyd/

image:
	bash hack/image.sh

# proxyd against a real API server holding 10k services × 3 endpoints:
# time to the first full sync, memory, and programming latency per mode.
bench-kube:
	bash hack/kube-up.sh build
	LBKIT_E2E=1 LBKIT_KUBE_SCALE=$${LBKIT_KUBE_SCALE:-10000} $(GO) test -count=1 -timeout 90m -v -run TestKubernetesScale ./proxyd/ | grep -E 'RESULT|created|^(---|ok|FAIL)'

lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(STATICCHECK) $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m $(PKGS)

clean:
	$(GO) clean -testcache

# The embedded default: proxyd on the userspace datapath with the example
# services file and its backends, traffic sent through it, spread printed.
demo:
	bash examples/demo.sh

# Regenerate bpf/lb_bpfel.{go,o} and bpf/sources.sum with the pinned clang-14
# (see bpf/gen.go); bpf-check requires the committed objects to match.
bpf:
	cd bpf && $(GO) generate ./...

bpf-check: bpf
	git diff --exit-code -- bpf/

# IPVS and other kernel tests inside a QEMU guest booted from Debian's
# kernel package (needs qemu-system-x86 busybox-static kmod xz-utils).
vmtest:
	$(GO) run ./internal/vmtest/cmd/vmtest ./internal/vmtest ./internal/conntrack ./backends/ipvs -- -test.count 1 -test.timeout 14m

# The IPVS benchmarks in the guest (full sync 5k/10k vs plain moby/ipvs,
# one endpoint change at 1k/5k/10k with netlink request counts).
vmtest-bench:
	$(GO) run ./internal/vmtest/cmd/vmtest -timeout 30m ./backends/ipvs -- -test.run '^$$' -test.bench . -test.benchtime 1x -test.timeout 29m
