package iptables

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// ErrNoTools is returned (wrapped) by Scan when the programs of a flavour
// are not installed: nothing of that flavour can then be read, and no
// process on the node can have written it with lbkit's tools.
var ErrNoTools = errors.New("the iptables programs of this flavour are not installed")

// ScanOptions says where Scan looks.
type ScanOptions struct {
	// Netns is the network namespace to read (e.g. /var/run/netns/X);
	// empty means the process's own.
	Netns string
	// Flavour is the one flavour to read; empty reads both.
	Flavour Flavour
}

// Scan lists lbkit's iptables state in the namespace, without changing
// anything: one line per chain of lbkit's and per rule of another chain
// that jumps into one, such as
//
//	iptables-legacy: IPv4 table nat chain LBKIT-SERVICES
//	iptables-nft: IPv6 table nat rule -A PREROUTING ... -j LBKIT-SERVICES
//
// It reads every table that exists (iptables-save without -t, which
// creates no table). A flavour whose programs are missing is skipped; when
// every flavour asked for is missing, the error wraps ErrNoTools.
// Datapath.Cleanup of a datapath of that flavour removes what Scan found.
func Scan(ctx context.Context, o ScanOptions) ([]string, error) {
	flavours := []Flavour{FlavourLegacy, FlavourNFT}
	if o.Flavour != FlavourAuto {
		f, err := ParseFlavour(string(o.Flavour))
		if err != nil {
			return nil, err
		}
		flavours = []Flavour{f}
	}
	r := runner{netns: o.Netns}
	var found []string
	var errs, noTools []error
	for _, f := range flavours {
		for _, v6 := range []bool{false, true} {
			save := toolNames(f, v6).save
			path, err := exec.LookPath(save)
			if err != nil {
				noTools = append(noTools, fmt.Errorf("iptables: scan %s: %w (%s: %v)", f, ErrNoTools, save, err))
				continue
			}
			out, _, err := r.run(ctx, nil, path)
			if v6 && noIPv6(err) {
				continue // nothing of ours can exist
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("iptables: scan %s %s: %w", f, familyName(v6), err))
				continue
			}
			found = append(found, scanSave(f, v6, out)...)
		}
	}
	if len(noTools) == 2*len(flavours) {
		// Nothing could be read at all: say why.
		return nil, errors.Join(noTools...)
	}
	return found, errors.Join(errs...)
}

// scanSave lists the chains of ours and the jumps into them in the
// iptables-save output of every table of one flavour and family.
func scanSave(f Flavour, v6 bool, out []byte) []string {
	var found []string
	prefix := fmt.Sprintf("iptables-%s: %s table ", f, familyName(v6))
	for table, body := range saveTables(out) {
		chains, jumpsIn := ourChains(body)
		for _, c := range chains {
			found = append(found, prefix+table+" chain "+c)
		}
		for _, j := range jumpsIn {
			found = append(found, prefix+table+" rule "+j.line)
		}
	}
	return found
}

// saveTables splits iptables-save output into its tables, in order.
func saveTables(out []byte) func(yield func(string, []byte) bool) {
	return func(yield func(string, []byte) bool) {
		var table string
		var body bytes.Buffer
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "*"):
				table = line[1:]
				body.Reset()
			case line == "COMMIT":
				if table != "" && !yield(table, bytes.Clone(body.Bytes())) {
					return
				}
				table = ""
			case table != "":
				body.WriteString(line)
				body.WriteByte('\n')
			}
		}
	}
}
