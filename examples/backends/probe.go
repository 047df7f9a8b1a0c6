package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sort"
	"strings"

	"github.com/lbkit/lbkit/sources/file"
)

// probeAll sends n requests to every frontend that is reachable from this
// host (not NodePorts on every address) and prints who answered.
func probeAll(ctx context.Context, out io.Writer, entries []file.Entry, n int) error {
	for _, e := range entries {
		for _, fe := range e.Service.Frontends {
			if fe.Addr.IsUnspecified() {
				continue
			}
			addr := netip.AddrPortFrom(fe.Addr, fe.Port)
			counts, failed := probe(ctx, fe.Protocol.String(), addr.String(), n)
			how := string(e.Service.EffectiveScheduler())
			if t := e.Service.AffinityTimeout(); t > 0 {
				how += fmt.Sprintf(", ClientIP affinity %s", t)
			}
			fmt.Fprintf(out, "%s %s (%s): %d requests, %d failed\n", e.Service.Key, fe, how, n, failed)
			printSpread(out, counts, n)
		}
	}
	return ctx.Err()
}

// probe sends n requests and counts the answers by backend name.
func probe(ctx context.Context, network, addr string, n int) (map[string]int, int) {
	counts := map[string]int{}
	failed := 0
	for range n {
		name, err := ask(ctx, network, addr)
		if err != nil {
			failed++
			continue
		}
		counts[name]++
	}
	return counts, failed
}

func ask(ctx context.Context, network, addr string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	_ = c.SetDeadline(deadline)
	if network == "udp" {
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return "", err
		}
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
	return name, nil
}

func printSpread(out io.Writer, counts map[string]int, n int) {
	names := make([]string, 0, len(counts))
	for name := range counts {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c := counts[name]
		fmt.Fprintf(out, "  %-14s %5d  %5.1f%%  %s\n", name, c, 100*float64(c)/float64(n), strings.Repeat("#", 40*c/n))
	}
}
