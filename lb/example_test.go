package lb_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/lbkit/lbkit/lb"
)

// printer is a Datapath that prints what it is asked to program.
type printer struct{}

func (printer) Name() string { return "printer" }
func (printer) Capabilities() lb.Capabilities {
	return lb.Capabilities{
		Schedulers: []lb.Scheduler{lb.Random, lb.Maglev}, Protocols: []lb.Protocol{lb.TCP, lb.UDP},
		FrontendKinds: []lb.FrontendKind{lb.ClusterIP}, Weights: true,
	}
}
func (printer) Cleanup(context.Context) error { return nil }
func (printer) Close() error                  { return nil }
func (printer) Sync(_ context.Context, s *lb.Snapshot, cs lb.ChangeSet) error {
	for _, key := range cs.Keys() {
		st, ok := s.Service(key)
		if !ok {
			fmt.Printf("delete %s\n", key)
			continue
		}
		for _, fe := range st.Frontends {
			fmt.Printf("program %s %s -> %d backends\n", key, fe.Frontend, len(fe.Backends))
		}
	}
	return nil
}

func Example() {
	eng, err := lb.NewEngine(printer{}, lb.Config{NodeName: "node-a"})
	if err != nil {
		panic(err)
	}
	web := &lb.Service{
		Key:       "default/web/http",
		Scheduler: lb.Maglev,
		Frontends: []lb.Frontend{{Addr: netip.MustParseAddr("198.18.100.1"), Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP}},
	}
	_ = eng.Upsert(web)
	_ = eng.SetEndpoints(web.Key, []lb.Endpoint{
		lb.ReadyEndpoint(netip.MustParseAddrPort("198.18.2.10:8080")),
		lb.ReadyEndpoint(netip.MustParseAddrPort("198.18.2.11:8080")),
	})
	// A second service asking for the same frontend waits for it.
	clash := &lb.Service{Key: "default/other/http", Frontends: web.Frontends}
	fmt.Println(eng.Upsert(clash))

	_ = eng.Flush(context.Background()) // or go eng.Run(ctx)
	st, _ := eng.ServiceStatus(clash.Key)
	fmt.Println(clash.Key, st.Phase)

	// When web lets go of the frontend, the waiting service gets it.
	eng.Delete(web.Key)
	_ = eng.Flush(context.Background())
	st, _ = eng.ServiceStatus(clash.Key)
	fmt.Println(clash.Key, st.Phase)
	// Output:
	// service "default/other/http": frontends[0] 198.18.100.1:80/tcp is already used by service "default/web/http" (it passes to this service when released)
	// program default/web/http 198.18.100.1:80/tcp -> 2 backends
	// default/other/http conflict
	// program default/other/http 198.18.100.1:80/tcp -> 0 backends
	// delete default/web/http
	// default/other/http programmed
}
