package main

import (
	"slices"
	"testing"

	"go.uber.org/zap"

	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/proxyd/config"
)

// TestDetectOtherModes programs iptables-legacy, iptables-nft and nftables
// state with the real datapaths, then starts "as" iptables mode with the nft
// flavour: the legacy rules and the nftables table are other modes' state,
// and their Cleaners remove exactly that, leaving the configured mode's
// rules in place. Then as nftables mode: the remaining iptables-nft rules
// are found, and the nftables table (its own) would not be.
func TestDetectOtherModes(t *testing.T) {
	netns.Require(t)
	topo := netns.New(t, netns.Options{Backends: 2})
	programState(t, topo, stateIPTablesLegacy)
	programState(t, topo, stateIPTablesNFT)
	programState(t, topo, stateNFTables)

	cfg := scanConfig(topo)
	cfg.Mode, cfg.Lbkit.IPTablesFlavour = config.ModeIPTables, "nft"
	got, err := detectOtherModes(t.Context(), cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if modes := leftoverModes(got); !slices.Equal(modes, []string{stateIPTablesLegacy, stateNFTables}) {
		t.Fatalf("other modes found: %q, want iptables-legacy and nftables", modes)
	}
	for _, l := range got {
		if len(l.Found) == 0 || l.Cleaner.Name() != l.Mode {
			t.Fatalf("leftover %s: found %q, cleaner %q", l.Mode, l.Found, l.Cleaner.Name())
		}
		if err := l.Cleaner.Cleanup(t.Context()); err != nil {
			t.Fatalf("clean up %s: %v", l.Mode, err)
		}
	}
	state := scanKinds(t, cfg)
	if len(state[stateIPTablesLegacy]) > 0 || len(state[stateNFTables]) > 0 {
		t.Fatalf("other modes' state left after their Cleaners: %q", state)
	}
	if len(state[stateIPTablesNFT]) == 0 {
		t.Fatal("the Cleaners removed the configured mode's (iptables-nft) rules")
	}
	if err := requestVIP(topo); err != nil {
		t.Fatalf("the configured mode's rules no longer serve: %v", err)
	}

	cfg.Mode, cfg.Lbkit.IPTablesFlavour = config.ModeNFTables, ""
	got, err = detectOtherModes(t.Context(), cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if modes := leftoverModes(got); !slices.Equal(modes, []string{stateIPTablesNFT}) {
		t.Fatalf("as nftables mode, other modes found: %q, want iptables-nft", modes)
	}
}

func leftoverModes(ls []leftover) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Mode)
	}
	return out
}
