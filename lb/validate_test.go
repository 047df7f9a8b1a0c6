package lb

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestValidateRejectsEachBadField(t *testing.T) {
	ok := func() *Service { return svc("ns/web/http", "198.18.100.1", 80) }
	cases := []struct {
		name  string
		edit  func(s *Service)
		field string
	}{
		{"empty key", func(s *Service) { s.Key = "" }, "key"},
		{"key with space", func(s *Service) { s.Key = "a b" }, "key"},
		{"no frontends", func(s *Service) { s.Frontends = nil }, "frontends"},
		{"invalid ip", func(s *Service) { s.Frontends[0].Addr = netip.Addr{} }, "frontends[0].ip"},
		{"mapped ip", func(s *Service) { s.Frontends[0].Addr = netip.MustParseAddr("::ffff:198.18.0.1") }, "frontends[0].ip"},
		{"multicast", func(s *Service) { s.Frontends[0].Addr = netip.MustParseAddr("224.0.0.1") }, "frontends[0].ip"},
		{"unspecified ClusterIP", func(s *Service) { s.Frontends[0].Addr = netip.MustParseAddr("0.0.0.0") }, "frontends[0].ip"},
		{"port 0", func(s *Service) { s.Frontends[0].Port = 0 }, "frontends[0].port"},
		{"protocol", func(s *Service) { s.Frontends[0].Protocol = 9 }, "frontends[0].protocol"},
		{"kind", func(s *Service) { s.Frontends[0].Kind = 0 }, "frontends[0].kind"},
		{"duplicate frontend", func(s *Service) { s.Frontends = append(s.Frontends, s.Frontends[0]) }, "frontends[1]"},
		{"scheduler", func(s *Service) { s.Scheduler = "fastest" }, "scheduler"},
		{"affinity timeout", func(s *Service) {
			s.Affinity = SessionAffinity{Type: AffinityClientIP, Timeout: 90000 * time.Second}
		}, "affinity.timeout"},
		{"affinity type", func(s *Service) { s.Affinity.Type = 7 }, "affinity.type"},
		{"policy", func(s *Service) { s.ExternalPolicy = 3 }, "externalTrafficPolicy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := ok()
			c.edit(s)
			err := s.Validate()
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want a *ValidationError", err)
			}
			if ve.Field != c.field || ve.Reason == "" {
				t.Fatalf("field %q reason %q, want field %q", ve.Field, ve.Reason, c.field)
			}
			if !strings.Contains(err.Error(), string(s.Key)) && s.Key != "" {
				t.Fatalf("error %q does not name the service", err)
			}
		})
	}
	if err := ok().Validate(); err != nil {
		t.Fatalf("good service rejected: %v", err)
	}
	np := ok()
	np.Frontends[0] = Frontend{Addr: netip.IPv4Unspecified(), Port: 30080, Protocol: UDP, Kind: NodePort}
	if err := np.Validate(); err != nil {
		t.Fatalf("NodePort on every address rejected: %v", err)
	}
}

func TestValidateEndpoints(t *testing.T) {
	s := svc("a", "198.18.100.1", 80)
	cases := []struct {
		name  string
		eps   []Endpoint
		field string
	}{
		{"port 0", []Endpoint{ep("198.18.2.10:0")}, "endpoints[0].port"},
		{"weight", []Endpoint{{Addr: netip.MustParseAddrPort("198.18.2.10:80"), Weight: 70000}}, "endpoints[0].weight"},
		{"mixed family", []Endpoint{ep("[2001:2::10]:80")}, "endpoints[0].ip"},
		{"duplicate", []Endpoint{ep("198.18.2.10:80"), ep("198.18.2.10:80")}, "endpoints[1]"},
		{"invalid", []Endpoint{{}}, "endpoints[0].ip"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ve *ValidationError
			if err := ValidateEndpoints("a", s, c.eps); !errors.As(err, &ve) || ve.Field != c.field {
				t.Fatalf("got %v, want field %s", err, c.field)
			}
		})
	}
	if err := ValidateEndpoints("a", nil, []Endpoint{ep("[2001:2::10]:80")}); err != nil {
		t.Fatalf("family cannot be checked without a service: %v", err)
	}
}

func TestParseFrontendID(t *testing.T) {
	good := map[string]FrontendID{
		"198.18.100.1:80":      {netip.MustParseAddr("198.18.100.1"), 80, TCP},
		"198.18.100.1:53/UDP":  {netip.MustParseAddr("198.18.100.1"), 53, UDP},
		"[2001:2::1]:443/sctp": {netip.MustParseAddr("2001:2::1"), 443, SCTP},
	}
	for in, want := range good {
		got, err := ParseFrontendID(in)
		if err != nil || got != want {
			t.Fatalf("ParseFrontendID(%q) = %v, %v; want %v", in, got, err, want)
		}
		if in == "198.18.100.1:53/UDP" && got.String() != "198.18.100.1:53/udp" {
			t.Fatalf("String() = %q", got.String())
		}
	}
	for _, bad := range []string{"", "198.18.100.1", "198.18.100.1:0", "198.18.100.1:80/icmp", "host:80"} {
		if _, err := ParseFrontendID(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Fatalf("ParseFrontendID(%q) error %v, want one naming the input", bad, err)
		}
	}
}
