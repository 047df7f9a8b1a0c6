package file_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"testing"

	"github.com/lbkit/lbkit/lb"
	"github.com/lbkit/lbkit/sources/file"
)

func ExampleParse() {
	data := []byte(`services:
  - name: web
    scheduler: rr
    frontends:
      - {ip: 127.0.0.1, port: 8080}
    endpoints:
      - {ip: 127.0.0.1, port: 9001}
      - {ip: 127.0.0.1, port: 9002, weight: 2}
  - name: dns
    frontends:
      - {ip: 127.0.0.1, port: 70000, protocol: udp}
`)
	_, err := file.Parse(data, "services.yaml")
	fmt.Println(err)

	web := data[:bytes.Index(data, []byte("  - name: dns"))]
	entries, err := file.Parse(web, "services.yaml")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		fmt.Println(e.Service.Key, e.Service.Scheduler, e.Service.Frontends[0], len(e.Endpoints), "endpoints")
	}
	// Output:
	// services.yaml:11: services[1].frontends[0].port: 70000 is out of range 1-65535
	// web rr 127.0.0.1:8080/tcp 2 endpoints
}

// ExampleNew wires a services file to an engine, as the daemon does.
func ExampleNew() {
	run := func(ctx context.Context, eng *lb.Engine, logger *slog.Logger, rejected func()) error {
		src := file.New("/etc/lbkit/services.yaml", eng, file.Options{
			Logger:  logger,
			OnError: func(error) { rejected() }, // e.g. a Prometheus counter
		})
		if err := src.Load(); err != nil {
			return err // refuse to start on a bad file
		}
		return src.Run(ctx) // apply every later edit until ctx is done
	}
	_ = run
}

// TestExampleServicesFile parses the services file in examples/, which a
// newcomer runs on the userspace datapath without root.
func TestExampleServicesFile(t *testing.T) {
	data, err := os.ReadFile("../../examples/services.yaml")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := file.Parse(data, "examples/services.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[lb.ServiceKey]struct {
		sched lb.Scheduler
		fe    string
		eps   int
	}{
		"web":     {lb.RR, "127.0.0.1:8080/tcp", 3},
		"echo":    {lb.Random, "127.0.0.1:8053/udp", 2},
		"api":     {lb.Maglev, "127.0.0.1:8081/tcp", 4},
		"session": {lb.RR, "127.0.0.1:8082/tcp", 2},
	}
	if len(entries) != len(want) {
		t.Fatalf("%d services, want %d", len(entries), len(want))
	}
	loopback := netip.MustParseAddr("127.0.0.1")
	ports := make(map[uint16]string)
	for _, e := range entries {
		w, ok := want[e.Service.Key]
		if !ok || e.Service.Scheduler != w.sched || len(e.Service.Frontends) != 1 ||
			e.Service.Frontends[0].String() != w.fe || len(e.Endpoints) != w.eps {
			t.Errorf("service %s: %+v with %d endpoints, want %+v", e.Service.Key, *e.Service, len(e.Endpoints), w)
		}
		use := func(addr netip.AddrPort, what string) {
			if addr.Addr() != loopback {
				t.Errorf("%s %s is not on 127.0.0.1", what, addr)
			}
			if other, dup := ports[addr.Port()]; dup {
				t.Errorf("%s %s reuses the port of %s", what, addr, other)
			}
			ports[addr.Port()] = what
		}
		for _, fe := range e.Service.Frontends {
			use(netip.AddrPortFrom(fe.Addr, fe.Port), "frontend of "+string(e.Service.Key))
		}
		for _, ep := range e.Endpoints {
			use(ep.Addr, "endpoint of "+string(e.Service.Key))
		}
	}
}

// TestReadmeExamples keeps the format examples in README.md valid.
func TestReadmeExamples(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"yaml", "json"} {
		fence := []byte("```" + lang + "\n")
		i := bytes.Index(readme, fence)
		if i < 0 {
			t.Fatalf("README.md has no %s example", lang)
		}
		block := readme[i+len(fence):]
		block = block[:bytes.Index(block, []byte("```"))]
		entries, err := file.Parse(block, "README.md "+lang)
		if err != nil || len(entries) == 0 {
			t.Errorf("README.md %s example: %d services, %v", lang, len(entries), err)
		}
	}
}
