package iptables

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Flavour is which iptables implementation programs the kernel: the legacy
// x_tables one or iptables-nft, which translates iptables rules into
// nf_tables. The two keep separate rulesets; a node should use one.
type Flavour string

// Flavours. The zero value picks what the system's iptables command is.
const (
	FlavourAuto   Flavour = ""
	FlavourLegacy Flavour = "legacy"
	FlavourNFT    Flavour = "nft"
)

// ParseFlavour accepts "legacy", "nft" or "" (auto), in any case.
func ParseFlavour(s string) (Flavour, error) {
	switch f := Flavour(strings.ToLower(s)); f {
	case FlavourAuto, FlavourLegacy, FlavourNFT:
		return f, nil
	}
	return "", fmt.Errorf("iptables: unknown flavour %q (want legacy, nft or empty for the system default)", s)
}

// DetectFlavour returns the flavour of the system's iptables command, from
// `iptables --version` ("iptables v1.8.9 (nf_tables)" or "(legacy)"; old
// versions that print neither are legacy).
func DetectFlavour(ctx context.Context) (Flavour, error) {
	path, err := exec.LookPath("iptables")
	if err != nil {
		return "", fmt.Errorf("iptables: detect flavour: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("iptables: detect flavour: %s --version: %w: %s", path, err, strings.TrimSpace(string(out)))
	}
	return flavourOfVersion(string(out)), nil
}

// flavourOfVersion reads the flavour from `iptables --version` output.
func flavourOfVersion(out string) Flavour {
	if strings.Contains(out, "nf_tables") {
		return FlavourNFT
	}
	return FlavourLegacy
}

// tools are the programs of one flavour and address family.
type tools struct {
	iptables string // iptables-legacy, ip6tables-nft, ...
	restore  string
	save     string
}

// toolNames returns the program names of flavour f for one family.
func toolNames(f Flavour, v6 bool) tools {
	base := "iptables"
	if v6 {
		base = "ip6tables"
	}
	base += "-" + string(f)
	return tools{iptables: base, restore: base + "-restore", save: base + "-save"}
}

// lookTools resolves the programs of flavour f for one family to paths.
func lookTools(f Flavour, v6 bool) (tools, error) {
	t := toolNames(f, v6)
	var err error
	for _, p := range []*string{&t.iptables, &t.restore, &t.save} {
		name := *p
		if *p, err = exec.LookPath(name); err != nil {
			return tools{}, fmt.Errorf("iptables: flavour %s needs %s: %w (install the iptables package)", f, name, err)
		}
	}
	return t, nil
}
