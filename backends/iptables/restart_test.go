package iptables

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/internal/testenv"
	"github.com/lbkit/lbkit/lb"
)

// TestRestartKeepsConnections: a process programs a service and a client
// opens a TCP connection through it; a new process (a new Datapath and
// engine over the same namespace) adopts the chains and syncs; the open
// connection keeps working, and new ones are balanced as before.
func TestRestartKeepsConnections(t *testing.T) {
	for _, f := range flavours {
		t.Run(string(f), func(t *testing.T) {
			requireRoot(t)
			topo := netns.New(t, netns.Options{LocalVIPs: true})
			ctx := context.Background()
			vip := netip.AddrPortFrom(netip.MustParseAddr("198.18.100.1"), 80)
			svc := &lb.Service{Key: "default/web/http", Frontends: []lb.Frontend{clusterIP(vip.Addr().String(), vip.Port(), lb.TCP)}}
			var eps []lb.Endpoint
			for _, b := range topo.Backends {
				eps = append(eps, lb.ReadyEndpoint(netip.AddrPortFrom(b.IPv4, netns.DefaultPort)))
			}
			start := func() *lb.Engine {
				d, err := New(Options{Netns: topo.Node.Path, Flavour: f})
				if err != nil {
					t.Fatal(err)
				}
				return testenv.Program(t, d, svc, eps)
			}
			first := start()
			conn, err := topo.Client.Dial(ctx, "tcp", vip.String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			r := bufio.NewReader(conn)
			greeting, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			_ = first // the old process goes away without cleaning up

			second := start()
			t.Cleanup(func() {
				if err := second.Cleanup(context.Background()); err != nil {
					t.Errorf("Cleanup: %v", err)
				}
			})
			if err := echo(conn, r, "still there"); err != nil {
				t.Errorf("the connection opened before the restart (%s) broke: %v", strings.TrimSpace(greeting), err)
			}
			seen := map[string]bool{}
			for range 30 {
				rep, err := topo.Client.Request(ctx, "tcp", vip)
				if err != nil {
					t.Fatalf("new connection after the restart: %v", err)
				}
				seen[rep.Backend] = true
			}
			if len(seen) != len(topo.Backends) {
				t.Errorf("after the restart new connections reached %v, want all %d backends", seen, len(topo.Backends))
			}
		})
	}
}

// echo writes msg on an identity-server connection and checks it comes
// back.
func echo(c net.Conn, r *bufio.Reader, msg string) error {
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return err
	}
	got, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(got) != msg {
		return fmt.Errorf("sent %q, got back %q", msg, got)
	}
	return nil
}
