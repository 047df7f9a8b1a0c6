// Command library shows lbkit embedded as a library: it starts three small
// backend servers on 127.0.0.1, balances a service over them with the
// userspace datapath (no privileges needed), sends connections through the
// service and prints how they were spread.
//
//	go run ./examples/library [-n 300] [-scheduler random|rr|wrr|lc|sh|maglev]
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/lbkit/lbkit/backends/userspace"
	"github.com/lbkit/lbkit/lb"
)

func main() {
	n := flag.Int("n", 300, "connections to send through the service")
	sched := flag.String("scheduler", "random", "scheduler of the service")
	flag.Parse()
	if err := run(*n, lb.Scheduler(*sched)); err != nil {
		fmt.Fprintln(os.Stderr, "library:", err)
		os.Exit(1)
	}
}

func run(n int, sched lb.Scheduler) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	counts, err := balance(ctx, n, sched, os.Stdout)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(counts))
	for name := range counts {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Printf("  %-10s %4d  %5.1f%%  %s\n", name, counts[name], 100*float64(counts[name])/float64(n),
			strings.Repeat("#", 50*counts[name]/n))
	}
	return nil
}

// balance sets everything up, sends n connections and returns how many each
// backend answered.
func balance(ctx context.Context, n int, sched lb.Scheduler, out io.Writer) (map[string]int, error) {
	// Three backends that answer with their name.
	var eps []lb.Endpoint
	for i := range 3 {
		addr, stop, err := serve(fmt.Sprintf("backend-%d", i))
		if err != nil {
			return nil, err
		}
		defer stop()
		eps = append(eps, lb.ReadyEndpoint(addr))
	}

	// The datapath and the engine that drives it, both logging with
	// log/slog (here warnings and errors to stderr; a nil Logger logs
	// nothing).
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dp, err := userspace.New(userspace.Options{Logger: log.With("component", "userspace")})
	if err != nil {
		return nil, err
	}
	defer dp.Close()
	eng, err := lb.NewEngine(dp, lb.Config{NodeName: "example", Logger: log.With("component", "engine")})
	if err != nil {
		return nil, err
	}
	vip, err := freePort()
	if err != nil {
		return nil, err
	}
	svc := &lb.Service{
		Key:       "example/web/http",
		Scheduler: sched,
		Frontends: []lb.Frontend{{Addr: vip.Addr(), Port: vip.Port(), Protocol: lb.TCP, Kind: lb.ClusterIP}},
	}
	if err := eng.Upsert(svc); err != nil {
		return nil, err
	}
	if err := eng.SetEndpoints(svc.Key, eps); err != nil {
		return nil, err
	}
	if err := eng.Flush(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "service %s (%s) -> %d backends\n", svc.Key, svc.EffectiveScheduler(), len(eps))

	// Send connections through the service and count who answered.
	counts := map[string]int{}
	for range n {
		name, err := ask(ctx, vip)
		if err != nil {
			return nil, err
		}
		counts[name]++
	}
	return counts, nil
}

// serve starts a TCP server on 127.0.0.1 that writes its name and closes.
func serve(name string) (netip.AddrPort, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return netip.AddrPort{}, nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, name)
			c.Close()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String()), func() { ln.Close() }, nil
}

func ask(ctx context.Context, addr netip.AddrPort) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

func freePort() (netip.AddrPort, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return netip.AddrPort{}, err
	}
	defer ln.Close()
	return netip.MustParseAddrPort(ln.Addr().String()), nil
}
