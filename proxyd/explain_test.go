package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/lb"
)

// snapshotDatapath is an inspectable datapath that realizes a snapshot as it
// is stored: a frontend is found only at the exact address it has, as in
// the kernel datapaths (a NodePort on every node address is 0.0.0.0:PORT).
type snapshotDatapath struct{ snap *lb.Snapshot }

func (d *snapshotDatapath) Name() string                  { return "fake" }
func (d *snapshotDatapath) Capabilities() lb.Capabilities { return lb.Capabilities{} }
func (d *snapshotDatapath) Sync(context.Context, *lb.Snapshot, lb.ChangeSet) error {
	return nil
}
func (d *snapshotDatapath) Cleanup(context.Context) error { return nil }
func (d *snapshotDatapath) Close() error                  { return nil }

func (d *snapshotDatapath) Inspect(_ context.Context, id lb.FrontendID) (*lb.Inspection, error) {
	var in *lb.Inspection
	d.snap.Range(func(st *lb.ServiceState) bool {
		for _, fe := range st.Frontends {
			if fe.ID() == id {
				in = &lb.Inspection{Datapath: "fake", Service: st.Key(), Frontend: fe.Frontend,
					Scheduler: st.Scheduler(), Backends: fe.Backends}
				return false
			}
		}
		return true
	})
	if in == nil {
		return nil, fmt.Errorf("fake: frontend %s is not programmed", id)
	}
	return in, nil
}

// fixedEngine is an explainEngine over a fixed datapath and snapshot.
type fixedEngine struct {
	dp   lb.Datapath
	snap *lb.Snapshot
}

func (e fixedEngine) Datapath() lb.Datapath  { return e.dp }
func (e fixedEngine) Snapshot() *lb.Snapshot { return e.snap }
func (e fixedEngine) ServiceStatus(lb.ServiceKey) (lb.ServiceStatus, bool) {
	return lb.ServiceStatus{}, false
}
func (e fixedEngine) FrontendOwner(lb.FrontendID) (lb.ServiceKey, []lb.ServiceKey) { return "", nil }

// explainFixture serves the explain handler for one service "web" with a
// ClusterIP and a NodePort on every node address (0.0.0.0 and ::), two
// ready endpoints, one serving-terminating and one not-ready endpoint.
func explainFixture(t *testing.T) *httptest.Server {
	t.Helper()
	svc := &lb.Service{Key: "web", Frontends: []lb.Frontend{
		{Addr: netip.MustParseAddr("198.18.100.1"), Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP},
		{Addr: netip.IPv4Unspecified(), Port: 30080, Protocol: lb.TCP, Kind: lb.NodePort},
		{Addr: netip.IPv6Unspecified(), Port: 30080, Protocol: lb.TCP, Kind: lb.NodePort},
	}}
	eps := []lb.Endpoint{
		lb.ReadyEndpoint(netip.MustParseAddrPort("198.18.1.1:8080")),
		lb.ReadyEndpoint(netip.MustParseAddrPort("198.18.1.2:8080")),
		{Addr: netip.MustParseAddrPort("198.18.1.3:8080"), Serving: true, Terminating: true},
		{Addr: netip.MustParseAddrPort("198.18.1.4:8080")},
	}
	snap := (*lb.Snapshot)(nil).With(lb.Select(svc, eps, lb.Node{Name: "node-a"}))
	srv := httptest.NewServer(engineExplainHandler(fixedEngine{dp: &snapshotDatapath{snap}, snap: snap}))
	t.Cleanup(srv.Close)
	return srv
}

// askExplain asks the handler about frontend and decodes the answer.
func askExplain(t *testing.T, srv *httptest.Server, frontend string) (int, *explainResult) {
	t.Helper()
	resp, err := http.Get(srv.URL + explainPath + "?frontend=" + url.QueryEscape(frontend))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res explainResult
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, &res
}

// TestExplainFindsNodePortAtANodeAddress: a NodePort served on every node
// address is stored at 0.0.0.0 (or ::); explain NODEIP:NODEPORT must find
// it, for either family, while a port that is no NodePort stays not found.
func TestExplainFindsNodePortAtANodeAddress(t *testing.T) {
	srv := explainFixture(t)
	for _, fe := range []string{"198.18.0.5:30080/tcp", "[2001:2::5]:30080/tcp", "0.0.0.0:30080/tcp"} {
		code, res := askExplain(t, srv, fe)
		if code != http.StatusOK || res.Service != "web" || res.Frontend.Kind != lb.NodePort {
			t.Fatalf("explain %s: status %d, %+v; want the NodePort of web", fe, code, res.Inspection)
		}
	}
	code, res := askExplain(t, srv, "198.18.0.5:30080/tcp")
	if code != http.StatusOK || len(res.Details) == 0 || !strings.Contains(res.Details[0], "NodePort 0.0.0.0:30080/tcp") {
		t.Fatalf("explain NODEIP:NODEPORT does not say it is the NodePort on every address: %v", res.Details)
	}
	for _, fe := range []string{"198.18.0.5:30081/tcp", "198.18.0.5:30080/udp", "198.18.0.5:80/tcp"} {
		if code, _ := askExplain(t, srv, fe); code != http.StatusNotFound {
			t.Fatalf("explain %s: status %d, want 404", fe, code)
		}
	}
}

// TestExplainShowsTerminatingEndpoints: endpoints the datapath does not use
// (terminating while ready ones exist, not ready) are listed and marked, in
// JSON and in the text output.
func TestExplainShowsTerminatingEndpoints(t *testing.T) {
	srv := explainFixture(t)
	code, res := askExplain(t, srv, "198.18.100.1:80/tcp")
	if code != http.StatusOK || len(res.Backends) != 2 {
		t.Fatalf("explain: status %d, %+v", code, res.Inspection)
	}
	want := map[string]explainEndpoint{
		"198.18.1.1:8080": {Addr: "198.18.1.1:8080", State: "ready", InUse: true},
		"198.18.1.2:8080": {Addr: "198.18.1.2:8080", State: "ready", InUse: true},
		"198.18.1.3:8080": {Addr: "198.18.1.3:8080", State: "terminating (serving)"},
		"198.18.1.4:8080": {Addr: "198.18.1.4:8080", State: "not ready"},
	}
	if len(res.Endpoints) != len(want) {
		t.Fatalf("endpoints %+v, want %d", res.Endpoints, len(want))
	}
	for _, ep := range res.Endpoints {
		if want[ep.Addr] != ep {
			t.Errorf("endpoint %+v, want %+v", ep, want[ep.Addr])
		}
	}
	var out bytes.Buffer
	printInspection(&out, res)
	for _, line := range []string{"198.18.1.3:8080  -       -     terminating (serving), not in use", "198.18.1.4:8080  -       -     not ready, not in use"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("text output lacks %q:\n%s", line, out.String())
		}
	}
}

// TestExplainMarksTerminatingBackendsInUse: when only terminating endpoints
// serve (kube-proxy's fallback), the backends in use are marked as such even
// when the datapath reads them back without the flag.
func TestExplainMarksTerminatingBackendsInUse(t *testing.T) {
	svc := &lb.Service{Key: "db", Frontends: []lb.Frontend{
		{Addr: netip.MustParseAddr("198.18.100.2"), Port: 5432, Protocol: lb.TCP, Kind: lb.ClusterIP},
	}}
	eps := []lb.Endpoint{{Addr: netip.MustParseAddrPort("198.18.1.9:5432"), Serving: true, Terminating: true}}
	snap := (*lb.Snapshot)(nil).With(lb.Select(svc, eps, lb.Node{}))
	kernel := &lb.Inspection{Datapath: "fake", Service: "db", Frontend: svc.Frontends[0],
		Backends: []lb.Backend{{Addr: eps[0].Addr, Weight: 1}}} // no Terminating: read from a kernel
	res := withEndpoints(kernel, snap)
	if len(res.Backends) != 1 || !res.Backends[0].Terminating || kernel.Backends[0].Terminating {
		t.Fatalf("backends %+v (kernel's %+v): want the one in use marked terminating, the input untouched", res.Backends, kernel.Backends)
	}
	var out bytes.Buffer
	printInspection(&out, res)
	if !strings.Contains(out.String(), "terminating (in use: no endpoint is ready)") {
		t.Fatalf("text output does not mark the terminating backend:\n%s", out.String())
	}
}
