package netns

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestOptionsDefaults(t *testing.T) {
	o, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Backends != 3 || !slices.Equal(o.TCPPorts, []uint16{8080}) || !slices.Equal(o.UDPPorts, []uint16{8080}) {
		t.Errorf("defaults = %+v, want 3 backends, TCP and UDP on 8080", o)
	}
	o, err = Options{Backends: 1, TCPPorts: []uint16{}, UDPPorts: []uint16{53, 54}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Backends != 1 || len(o.TCPPorts) != 0 || !slices.Equal(o.UDPPorts, []uint16{53, 54}) {
		t.Errorf("explicit options changed: %+v", o)
	}
}

func TestOptionsRejected(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Backends: -1}, "Options.Backends is -1"},
		{Options{Backends: MaxBackends + 1}, "Options.Backends is 246"},
		{Options{TCPPorts: []uint16{80, 0}}, "Options.TCPPorts[1] is 0"},
		{Options{UDPPorts: []uint16{53, 53}}, "Options.UDPPorts lists port 53 twice"},
	} {
		_, err := tc.opts.withDefaults()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.opts, err, tc.want)
		}
	}
}

func TestLayoutAddresses(t *testing.T) {
	for _, tc := range []struct {
		got  netip.Addr
		want string
	}{
		{host(clientNet4, clientHost), "198.18.1.2"},
		{host(bridgeNet4, firstBackendID+2), "198.18.2.12"},
		{host(clientNet6, nodeHost), "2001:2:0:1::1"},
		{host(bridgeNet6, firstBackendID+6), "2001:2:0:2::10"},
	} {
		if tc.got.String() != tc.want {
			t.Errorf("got %v, want %s", tc.got, tc.want)
		}
	}
	// Every address the layout uses stays inside the benchmarking ranges.
	for _, p := range []netip.Prefix{clientNet4, bridgeNet4, vipNet4} {
		if !testNet4.Contains(p.Addr()) || !netip.MustParsePrefix("198.18.0.0/15").Contains(p.Addr()) {
			t.Errorf("%v outside 198.18.0.0/15", p)
		}
	}
	for _, p := range []netip.Prefix{clientNet6, bridgeNet6, vipNet6} {
		if !netip.MustParsePrefix("2001:2::/48").Contains(p.Addr()) {
			t.Errorf("%v outside 2001:2::/48", p)
		}
	}
	if n := nodeBackendLink(MaxBackends - 1); len(n) > 15 {
		t.Errorf("interface name %q longer than 15 bytes", n)
	}
}
