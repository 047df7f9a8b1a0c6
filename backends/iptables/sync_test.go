package iptables

import (
	"context"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/lb"
)

// TestSyncLifecycle programs services in a namespace on each flavour,
// changes them partially, and checks what the kernel holds after each step,
// then that Cleanup leaves nothing.
func TestSyncLifecycle(t *testing.T) {
	for _, f := range flavours {
		t.Run(string(f), func(t *testing.T) {
			ns := testNetns(t)
			d := newTest(t, f, ns, Options{})
			ctx := context.Background()
			web := svcState("default/web/http", []lb.Frontend{
				clusterIP("198.18.100.1", 80, lb.TCP),
				clusterIP("2001:2:0:100::1", 80, lb.TCP),
			}, "198.18.2.10:8080", "198.18.2.11:8080", "[2001:2:0:2::10]:8080")
			dns := svcState("kube-system/dns/udp", []lb.Frontend{clusterIP("198.18.100.2", 53, lb.UDP)}, "198.18.2.12:53")
			s := (*lb.Snapshot)(nil).With(web).With(dns)
			if err := d.Sync(ctx, s, full(s)); err != nil {
				t.Fatal(err)
			}
			save := saveAll(t, f, ns)
			for _, want := range []string{
				"-A PREROUTING -m comment --comment \"lbkit service frontends\" -j LBKIT-SERVICES",
				"--to-destination 198.18.2.11:8080",
				"--to-destination [2001:2:0:2::10]:8080",
				"--to-destination 198.18.2.12:53",
				"-A LBKIT-SERVICES -d 0.0.0.1/0.0.0.255 -j LBKIT-FE-01",
			} {
				if !strings.Contains(save, want) {
					t.Errorf("after the full sync, iptables-save lacks %q:\n%s", want, strings.Join(ourLines(save), "\n"))
				}
			}

			// Partial: dns loses its endpoint (reject), web changes ports.
			web2 := svcState("default/web/http", web.Service.Frontends, "198.18.2.10:9090")
			dns2 := svcState("kube-system/dns/udp", dns.Service.Frontends)
			s = s.With(web2).With(dns2)
			if err := d.Sync(ctx, s, partial("default/web/http", "kube-system/dns/udp")); err != nil {
				t.Fatal(err)
			}
			save = saveAll(t, f, ns)
			if strings.Contains(save, "198.18.2.11:8080") || strings.Contains(save, "2001:2:0:2::10") {
				t.Errorf("removed backends still programmed:\n%s", strings.Join(ourLines(save), "\n"))
			}
			for _, want := range []string{"--to-destination 198.18.2.10:9090", "-j REJECT"} {
				if !strings.Contains(save, want) {
					t.Errorf("after the partial sync, iptables-save lacks %q:\n%s", want, strings.Join(ourLines(save), "\n"))
				}
			}
			in, err := d.Inspect(ctx, lb.FrontendID{Addr: web.Service.Frontends[0].Addr, Port: 80, Protocol: lb.TCP})
			if err != nil {
				t.Fatal(err)
			}
			if in.Service != "default/web/http" || len(in.Backends) != 1 || in.Backends[0].Addr.String() != "198.18.2.10:9090" {
				t.Errorf("Inspect = %+v", in)
			}

			// Delete both: the service chains and shards go away.
			s = s.Without("default/web/http").Without("kube-system/dns/udp")
			if err := d.Sync(ctx, s, partial("default/web/http", "kube-system/dns/udp")); err != nil {
				t.Fatal(err)
			}
			save = saveAll(t, f, ns)
			if strings.Contains(save, serviceChainPrefix) || strings.Contains(save, shardPrefix) || strings.Contains(save, "REJECT") {
				t.Errorf("deleted services left chains:\n%s", strings.Join(ourLines(save), "\n"))
			}
			if err := d.Cleanup(ctx); err != nil {
				t.Fatal(err)
			}
			if left := ourLines(saveAll(t, f, ns)); len(left) > 0 {
				t.Errorf("after Cleanup: %q", left)
			}
		})
	}
}
