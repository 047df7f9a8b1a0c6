package main

import (
	"net/netip"
	"testing"

	"github.com/lbkit/lbkit/proxyd/config"
)

func TestClusterCIDRsAndNodePortPrefixes(t *testing.T) {
	cfg := config.Default()
	if got, err := clusterCIDRs(cfg); err != nil || got != nil {
		t.Fatalf("empty clusterCIDR: %v, %v", got, err)
	}
	cfg.ClusterCIDR = "198.18.0.0/15, 2001:2::/48"
	got, err := clusterCIDRs(cfg)
	if err != nil || len(got) != 2 || got[1] != netip.MustParsePrefix("2001:2::/48") {
		t.Fatalf("dual-stack clusterCIDR: %v, %v", got, err)
	}
	cfg.NodePortAddresses = []string{"198.18.1.0/24"}
	if got, err := nodePortPrefixes(cfg, nil); err != nil || len(got) != 1 || got[0].String() != "198.18.1.0/24" {
		t.Fatalf("nodePortAddresses: %v, %v", got, err)
	}
	cfg.NodePortAddresses = []string{"primary"}
	cfg.BindAddress = "198.18.1.1"
	if got, err := nodePortPrefixes(cfg, nil); err != nil || len(got) != 1 || got[0].String() != "198.18.1.1/32" {
		t.Fatalf("primary with bindAddress: %v, %v", got, err)
	}
	// The Kubernetes Node's IPs, when known, are the primary ones.
	nodeIPs := []netip.Addr{netip.MustParseAddr("198.18.2.1"), netip.MustParseAddr("2001:2::1")}
	if got, err := nodePortPrefixes(cfg, nodeIPs); err != nil || len(got) != 2 || got[0].String() != "198.18.2.1/32" || got[1].String() != "2001:2::1/128" {
		t.Fatalf("primary from the Node: %v, %v", got, err)
	}
	cfg.ClusterCIDR = "not-a-cidr"
	if _, err := clusterCIDRs(cfg); err == nil {
		t.Fatal("bad clusterCIDR accepted")
	}
}
