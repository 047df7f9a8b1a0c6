package conformance

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/lbkit/lbkit/lb"
)

// Source addresses and ports for scenarios that need flows from fixed or
// distinct sources.
const (
	// firstExtraClientHost is the host number of the first extra client
	// address in the client's /24 (198.18.1.100).
	firstExtraClientHost = 100
	// firstSourcePort is where fixed source ports are searched from. It is
	// below the kernel's ephemeral range, so no connection the kernel
	// numbers itself (e.g. a proxy's TIME_WAIT) can hold one.
	firstSourcePort = 20000
)

// extraClientIPs adds n addresses (198.18.1.100, ...) to the client's
// interface, so that flows can come from distinct client IPs. The addresses
// live in the client namespace and go away with it. Namespace mode only.
func (h *harness) extraClientIPs(n int) []netip.Addr {
	h.t.Helper()
	h.requireNamespaces("every client is 127.0.0.1, so distinct client IPs are not available")
	subnet := netip.PrefixFrom(h.client.IPv4, 24).Masked()
	out := make([]netip.Addr, n)
	for i := range n {
		a := nthAddr(subnet, firstExtraClientHost+i)
		if _, err := h.client.Exec(h.ctx, "ip", "addr", "add", netip.PrefixFrom(a, 24).String(), "dev", h.client.Link); err != nil {
			h.t.Fatalf("add client address %s: %v", a, err)
		}
		out[i] = a
	}
	return out
}

// perClient sends each requests to fe from every address in ips (fresh
// source ports) and counts the answers per address. Every request must
// succeed.
func (h *harness) perClient(fe lb.Frontend, ips []netip.Addr, each int) map[netip.Addr]tally {
	h.t.Helper()
	out := make(map[netip.Addr]tally, len(ips))
	for _, ip := range ips {
		c := tally{}
		for range each {
			r, err := h.tryRequestFrom(fe, netip.AddrPortFrom(ip, 0))
			if err != nil {
				h.t.Fatalf("request to %s from %s: %v", fe, ip, err)
			}
			c[r.Backend]++
		}
		out[ip] = c
	}
	return out
}

// assertStickyPerClient fails unless every client address reached a single
// backend, and the addresses together reached more than one backend.
func (h *harness) assertStickyPerClient(fe lb.Frontend, per map[netip.Addr]tally, what string) {
	h.t.Helper()
	used := tally{}
	for ip, c := range per {
		if len(c) != 1 {
			h.t.Errorf("%s (%s): connections from %s reached %v, want one backend", fe, what, ip, c)
		}
		for name := range c {
			used[name]++
		}
	}
	if len(used) < 2 {
		h.t.Errorf("%s (%s): all %d client addresses went to %v, want distinct clients spread over the backends",
			fe, what, len(per), used)
	}
}

// sourcePorts returns n ports that are free on the client, below the
// ephemeral port range.
func (h *harness) sourcePorts(n int) []uint16 {
	h.t.Helper()
	var out []uint16
	err := h.client.Do(func() error {
		low, err := ephemeralLow()
		if err != nil {
			return err
		}
		for p := firstSourcePort; p < low && len(out) < n; p++ {
			ln, err := net.Listen("tcp", netip.AddrPortFrom(h.client.IPv4, uint16(p)).String())
			if err != nil {
				continue // in use: try the next one
			}
			out = append(out, uint16(p))
			if err := ln.Close(); err != nil {
				return fmt.Errorf("close probe listener on port %d: %w", p, err)
			}
		}
		if len(out) < n {
			return fmt.Errorf("only %d free ports between %d and the ephemeral range (%d), want %d", len(out), firstSourcePort, low, n)
		}
		return nil
	})
	if err != nil {
		h.t.Fatalf("conformance: pick source ports: %v", err)
	}
	return out
}

// ephemeralLow reads the low end of the current namespace's ephemeral port
// range.
func ephemeralLow() (int, error) {
	const file = "/proc/sys/net/ipv4/ip_local_port_range"
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", file, err)
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return 0, errors.New(file + ": want two numbers, got " + strconv.Quote(string(b)))
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil {
		return 0, fmt.Errorf("%s: %w", file, err)
	}
	return low, nil
}

// flowMap sends one request to fe from each source port of the client and
// returns which backend answered each. Every request must succeed.
func (h *harness) flowMap(fe lb.Frontend, ports []uint16) map[uint16]string {
	h.t.Helper()
	out := make(map[uint16]string, len(ports))
	src := h.client.Addr(fe.Addr.Is6())
	for _, p := range ports {
		r, err := h.tryRequestFrom(fe, netip.AddrPortFrom(src, p))
		if err != nil {
			h.t.Fatalf("request to %s from port %d: %v", fe, p, err)
		}
		out[p] = r.Backend
	}
	return out
}
