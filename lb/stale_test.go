package lb

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// staleState builds a service with one frontend per spec "ADDR:PORT/proto"
// and, for each, the backends listed after "=" (comma separated).
func staleState(name string, specs ...string) *ServiceState {
	st := &ServiceState{Service: &Service{Key: ServiceKey("ns/" + name)}}
	for _, spec := range specs {
		fe, bes, _ := strings.Cut(spec, "=")
		ap, proto, _ := strings.Cut(fe, "/")
		a := netip.MustParseAddrPort(ap)
		fs := FrontendState{Frontend: Frontend{Addr: a.Addr(), Port: a.Port(), Protocol: UDP, Kind: ClusterIP}}
		if proto == "tcp" {
			fs.Protocol = TCP
		}
		if bes != "" {
			for _, b := range strings.Split(bes, ",") {
				fs.Backends = append(fs.Backends, Backend{Addr: netip.MustParseAddrPort(b), Weight: 1})
			}
		}
		st.Frontends = append(st.Frontends, fs)
	}
	return st
}

func formatStale(fs []StaleUDPFrontend) string {
	var parts []string
	for _, f := range fs {
		var bes []string
		for _, b := range f.Backends {
			bes = append(bes, b.String())
		}
		parts = append(parts, fmt.Sprintf("%s=[%s]", f.Frontend, strings.Join(bes, " ")))
	}
	return strings.Join(parts, " ")
}

func TestStaleUDP(t *testing.T) {
	const (
		fe  = "198.18.100.1:53/udp"
		b1  = "198.18.2.1:53"
		b2  = "198.18.2.2:53"
		tcp = "198.18.100.1:80/tcp"
	)
	a0 := staleState("a", fe+"="+b1+","+b2, tcp+"="+b1)
	type pair struct{ old, now *ServiceState }
	for _, tc := range []struct {
		name  string
		notes []pair
		want  string
	}{
		{"nothing changed", []pair{{a0, a0}}, ""},
		{"new service: every UDP frontend, with its backends",
			[]pair{{nil, a0}}, "198.18.100.1:53=[198.18.2.1:53 198.18.2.2:53]"},
		{"backend removed", []pair{{a0, staleState("a", fe+"="+b1, tcp+"="+b1)}},
			"198.18.100.1:53=[198.18.2.1:53]"},
		{"last backend removed", []pair{{a0, staleState("a", fe, tcp+"="+b1)}},
			"198.18.100.1:53=[]"},
		{"first backend added (flows were never NATed)", []pair{{staleState("a", fe), staleState("a", fe+"="+b1)}},
			"198.18.100.1:53=[198.18.2.1:53]"},
		{"service removed", []pair{{a0, nil}}, "198.18.100.1:53=[]"},
		{"only the weight changed", []pair{{a0, func() *ServiceState {
			st := staleState("a", fe+"="+b1+","+b2, tcp+"="+b1)
			st.Frontends[0].Backends[0].Weight = 7
			return st
		}()}}, ""},
		{"TCP frontends are not UDP's business", []pair{{a0, staleState("a", fe+"="+b1+","+b2, tcp+"="+b2)}}, ""},
		{"an IPv4-mapped frontend is the IPv4 one", []pair{{nil, staleState("a", "[::ffff:198.18.100.1]:53/udp="+b1)}},
			"198.18.100.1:53=[198.18.2.1:53]"},
		{"NodePort on every address", []pair{{nil, staleState("a", "0.0.0.0:30053/udp="+b1)}},
			"0.0.0.0:30053=[198.18.2.1:53]"},
		// The frontend moves from a to b in one sync: b's backends decide,
		// in whichever order the services are noted.
		{"moved, dropper first", []pair{{a0, nil}, {nil, staleState("b", fe+"="+b2)}},
			"198.18.100.1:53=[198.18.2.2:53]"},
		{"moved, new owner first", []pair{{nil, staleState("b", fe+"="+b2)}, {a0, nil}},
			"198.18.100.1:53=[198.18.2.2:53]"},
		{"moved with the same backends still clears the old owner's other flows",
			[]pair{{nil, staleState("b", fe+"="+b1+","+b2)}, {a0, nil}},
			"198.18.100.1:53=[198.18.2.1:53 198.18.2.2:53]"},
		{"noted twice", []pair{{a0, nil}, {a0, nil}}, "198.18.100.1:53=[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s StaleUDP
			for _, p := range tc.notes {
				s.Note(p.old, p.now)
			}
			got := s.Frontends()
			if f := formatStale(got); f != tc.want {
				t.Errorf("Frontends() = %q, want %q", f, tc.want)
			}
			if s.Empty() != (len(got) == 0) {
				t.Errorf("Empty() = %v with %d frontends", s.Empty(), len(got))
			}
		})
	}
}

// TestStaleUDPSortedOutput: Frontends comes out sorted, whatever the map
// order, so that the filter a datapath builds from it is deterministic.
func TestStaleUDPSortedOutput(t *testing.T) {
	var s StaleUDP
	s.Note(nil, staleState("a", "198.18.100.3:53/udp", "198.18.100.1:53/udp", "198.18.100.2:53/udp"))
	got := s.Frontends()
	if !slices.IsSortedFunc(got, func(a, b StaleUDPFrontend) int { return a.Frontend.Compare(b.Frontend) }) || len(got) != 3 {
		t.Errorf("Frontends() = %s, want the three frontends sorted", formatStale(got))
	}
}
