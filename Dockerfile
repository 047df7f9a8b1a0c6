# proxyd's container image: the static proxyd binary on Debian bookworm with
# the tools its datapaths call (iptables, nft, conntrack, modprobe).
#
# proxyd is built on the host, not in a build stage (our machines reach no
# registry to pull a Go image from); `make image` (hack/image.sh) builds it
# into _output/proxyd and this file copies it in. By hand, where a registry
# is reachable:
#
#   CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=v1.2.3" \
#       -o _output/proxyd ./proxyd
#   docker build --build-arg VERSION=v1.2.3 -t proxyd:v1.2.3 .
#
# BASE is any Debian bookworm image. hack/image.sh passes a base it made with
# mmdebstrap that already holds the packages below, so the RUN step installs
# nothing and the build needs no network; on debian:bookworm-slim it installs
# them with apt.
ARG BASE=debian:bookworm-slim
FROM ${BASE}

ARG VERSION=devel
ARG REVISION=
LABEL org.opencontainers.image.title="proxyd" \
      org.opencontainers.image.description="lbkit's proxyd: an L4 load balancer that replaces kube-proxy" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"

# Install the datapaths' tools only when the base lacks one of them, then
# prove each one runs.
RUN set -eu; \
    missing=; \
    for tool in iptables nft conntrack modprobe; do \
        command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"; \
    done; \
    [ -e /etc/ssl/certs/ca-certificates.crt ] || missing="$missing ca-certificates"; \
    if [ -n "$missing" ]; then \
        echo "base lacks:$missing; installing them with apt"; \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            iptables nftables conntrack kmod ca-certificates; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    iptables --version; nft --version; conntrack --version; modprobe --version

COPY _output/proxyd /usr/local/bin/proxyd

ENTRYPOINT ["/usr/local/bin/proxyd"]
