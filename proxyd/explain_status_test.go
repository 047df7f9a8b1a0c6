package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/lbkit/lbkit/lb"
)

// syncedDatapath realizes what it was last synced to, and can be inspected.
type syncedDatapath struct {
	mu sync.Mutex
	snapshotDatapath
}

func (d *syncedDatapath) Capabilities() lb.Capabilities {
	return lb.Capabilities{Schedulers: []lb.Scheduler{lb.Random}, Protocols: []lb.Protocol{lb.TCP},
		FrontendKinds: []lb.FrontendKind{lb.ClusterIP}}
}

func (d *syncedDatapath) Sync(_ context.Context, s *lb.Snapshot, _ lb.ChangeSet) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.snap = s
	return nil
}

func (d *syncedDatapath) Inspect(ctx context.Context, id lb.FrontendID) (*lb.Inspection, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.snapshotDatapath.Inspect(ctx, id)
}

// explain goes through the engine: it shows a service's status, by
// service and by frontend, and for a frontend nobody holds as asked, the
// services that want it and why they do not have it.
func TestExplainShowsServiceStatus(t *testing.T) {
	eng, err := lb.NewEngine(&syncedDatapath{}, lb.Config{})
	if err != nil {
		t.Fatal(err)
	}
	fe := lb.Frontend{Addr: netip.MustParseAddr("198.18.100.1"), Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP}
	_ = eng.Upsert(&lb.Service{Key: "web", Frontends: []lb.Frontend{fe}})
	_ = eng.Upsert(&lb.Service{Key: "copy", Frontends: []lb.Frontend{fe}})
	lc := fe
	lc.Port = 81
	_ = eng.Upsert(&lb.Service{Key: "lc", Scheduler: lb.LC, Frontends: []lb.Frontend{lc}})
	if err := eng.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(engineExplainHandler(eng))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")

	var out, errOut bytes.Buffer
	if code := explainServiceCommand(addr, "copy", false, &out, &errOut); code != 0 {
		t.Fatalf("explain copy: %d %s", code, errOut.String())
	}
	if s := out.String(); !strings.Contains(s, "status     conflict") || !strings.Contains(s, `already used by service "web"`) {
		t.Fatalf("explain copy:\n%s", s)
	}
	out.Reset()
	if code := explainCommand([]string{"--server", addr, "198.18.100.1:80"}, &out, &errOut); code != 0 {
		t.Fatalf("explain the frontend: %d %s", code, errOut.String())
	}
	if s := out.String(); !strings.Contains(s, "service    web") || !strings.Contains(s, "status     programmed") {
		t.Fatalf("explain the frontend:\n%s", s)
	}
	errOut.Reset()
	if code := explainCommand([]string{"--server", addr, "198.18.100.1:81"}, &out, &errOut); code != 1 {
		t.Fatalf("explain an unsupported service's frontend: exit %d", code)
	}
	if s := errOut.String(); !strings.Contains(s, "not programmed") {
		t.Fatalf("explain an unprogrammed frontend: %s", s)
	}
	out.Reset()
	if code := explainServiceCommand(addr, "lc", false, &out, &errOut); code != 0 || !strings.Contains(out.String(), "status     unsupported") ||
		!strings.Contains(out.String(), "scheduler lc is not supported by the fake datapath") {
		t.Fatalf("explain lc: %d\n%s", code, out.String())
	}
	if code := explainServiceCommand(addr, "nope", false, &out, &errOut); code != 1 {
		t.Fatal("explain of an unknown service succeeded")
	}
}
