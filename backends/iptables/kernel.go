package iptables

import (
	"context"
	"fmt"
	"strings"
)

// tables are the tables lbkit writes to.
var tables = []string{"nat", "filter"}

// readKernel records, per family, the chains of ours that exist in the
// kernel, so that the next full sync deletes those it does not rewrite.
func (d *Datapath) readKernel(ctx context.Context) error {
	for _, f := range d.fams {
		found := map[string][]string{}
		n := 0
		for _, table := range tables {
			out, err := d.run.save(ctx, f.tools, table)
			if f.v6 && noIPv6(err) {
				break // nothing of ours can exist
			}
			if err != nil {
				return fmt.Errorf("iptables: read %s %s table: %w", familyName(f.v6), table, err)
			}
			chains, _ := ourChains(out)
			found[table] = chains
			n += len(chains)
		}
		f.state.found = found
		// No chain of ours, so no jump either (a jump needs its chain).
		f.clean = n == 0
		if n > 0 {
			d.log.Info("found chains of a previous run", "family", familyName(f.v6), "chains", n)
		}
	}
	d.adopted = true
	return nil
}

// cleanFamily deletes, in one restore, every rule jumping into our chains
// and every chain of ours in the family's tables.
func (d *Datapath) cleanFamily(ctx context.Context, f *family) error {
	var in []byte
	removed := 0
	for _, table := range tables {
		out, err := d.run.save(ctx, f.tools, table)
		if f.v6 && noIPv6(err) {
			return nil // nothing of ours can exist
		}
		if err != nil {
			return fmt.Errorf("read %s table: %w", table, err)
		}
		chains, jumpsIn := ourChains(out)
		if len(chains) == 0 && len(jumpsIn) == 0 {
			continue
		}
		in = append(in, "*"+table+"\n"...)
		for _, j := range jumpsIn {
			// iptables-save output is valid restore input; -D takes the
			// same rule specification as -A.
			in = append(in, "-D "+strings.TrimPrefix(j.line, "-A ")+"\n"...)
		}
		in = appendDeletes(in, chains)
		in = append(in, "COMMIT\n"...)
		removed += len(chains) + len(jumpsIn)
	}
	if in == nil {
		return nil
	}
	if _, err := d.run.restore(ctx, f.tools, in); err != nil {
		return err
	}
	d.log.Info("cleaned up", "family", familyName(f.v6), "chainsAndJumps", removed)
	return nil
}

// noIPv6 reports an ip6tables failure because the kernel has no IPv6 (e.g.
// booted with ipv6.disable=1).
func noIPv6(err error) bool {
	return err != nil && strings.Contains(err.Error(), "Address family not supported")
}
