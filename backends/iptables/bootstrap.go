package iptables

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	goipt "github.com/coreos/go-iptables/iptables"

	"github.com/lbkit/lbkit/internal/nsutil"
)

// bootstrapper checks the jumps from the built-in chains into ours, once
// per full sync (and when a family gets its first service). Missing jumps
// are inserted by the sync's own restore, so that they cost no extra table
// write.
//
// A full sync of a family whose jumps were installed before does not read
// them first: its restore input ends with a check of each jump ("-C"),
// which costs nothing when they are there. Only when such a check fails
// (someone deleted a jump) does the sync read the jumps and restore again.
//
// How the explicit check reads the kernel depends on the flavour. iptables-nft reads
// only the chain a command names, so go-iptables checks each jump (a few
// milliseconds each). iptables-legacy reads and parses the whole table for
// any command, which at 10,000 services costs a good fraction of a second
// per command, so the check reads each table once with iptables-save.
type bootstrapper struct {
	flavour Flavour
	tools   tools
	v6      bool
	run     runner

	once sync.Once
	ipt  *goipt.IPTables
	err  error
}

func newBootstrapper(f Flavour, t tools, v6 bool, r runner) *bootstrapper {
	return &bootstrapper{flavour: f, tools: t, v6: v6, run: r}
}

// handle returns the go-iptables handle, created on first use (it runs
// `iptables --version`).
func (b *bootstrapper) handle() (*goipt.IPTables, error) {
	b.once.Do(func() {
		proto := goipt.ProtocolIPv4
		if b.v6 {
			proto = goipt.ProtocolIPv6
		}
		b.ipt, b.err = goipt.New(goipt.IPFamily(proto), goipt.Path(b.tools.iptables), goipt.Timeout(30))
		if b.err != nil {
			b.err = fmt.Errorf("go-iptables with %s: %w", b.tools.iptables, b.err)
		}
	})
	return b.ipt, b.err
}

// missing returns the jumps that are not in the kernel.
func (b *bootstrapper) missing(ctx context.Context) ([]jump, error) {
	have, err := b.builtinRules(ctx)
	if err != nil {
		return nil, fmt.Errorf("check jumps: %w", err)
	}
	var out []jump
	for _, j := range jumps() {
		found := slices.ContainsFunc(have[j.table], func(r rule) bool {
			return r.chain == j.chain && slices.Equal(r.args, j.spec)
		})
		if !found {
			out = append(out, j)
		}
	}
	return out, nil
}

// builtinRules returns, per table, the rules of the built-in chains lbkit
// jumps from (and, with iptables-save, of the others too).
func (b *bootstrapper) builtinRules(ctx context.Context) (map[string][]rule, error) {
	have := map[string][]rule{}
	if b.flavour == FlavourLegacy {
		for _, table := range tables {
			out, err := b.run.save(ctx, b.tools, table)
			if err != nil {
				return nil, fmt.Errorf("read %s table: %w", table, err)
			}
			have[table] = parseRules(out)
		}
		return have, nil
	}
	ipt, err := b.handle()
	if err != nil {
		return nil, err
	}
	seen := map[[2]string]bool{}
	for _, j := range jumps() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if seen[[2]string{j.table, j.chain}] {
			continue
		}
		seen[[2]string{j.table, j.chain}] = true
		var lines []string
		err := nsutil.Do(b.run.netns, func() error {
			var err error
			lines, err = ipt.List(j.table, j.chain)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("list %s %s: %w", j.table, j.chain, err)
		}
		have[j.table] = append(have[j.table], parseRules([]byte(strings.Join(lines, "\n")+"\n"))...)
	}
	return have, nil
}

// insertLine returns the jump as a restore command inserting it at the top
// of its chain.
func (j jump) insertLine() string { return j.command("-I " + j.chain + " 1") }

// checkLine returns the restore command that fails unless the jump exists.
func (j jump) checkLine() string { return j.command("-C " + j.chain) }

// command returns the jump's rule specification after head, quoted for
// restore input.
func (j jump) command(head string) string {
	var b strings.Builder
	b.WriteString(head)
	for _, a := range j.spec {
		b.WriteByte(' ')
		if strings.Contains(a, " ") {
			b.WriteString(`"` + a + `"`)
		} else {
			b.WriteString(a)
		}
	}
	return b.String()
}

// withJumps returns restore input in with the insertion of the given jumps
// added at the end of their tables' sections (after our chains are
// declared), or in sections of their own for tables in lacks. in holds
// sections as the plans write them: "*nat" and "*filter", each ending with
// COMMIT.
func withJumps(in []byte, js []jump) []byte { return withJumpLines(in, js, jump.insertLine) }

// withJumpLines adds line(j) for the jumps js to the sections of in.
func withJumpLines(in []byte, js []jump, line func(jump) string) []byte {
	if len(js) == 0 {
		return in
	}
	out := make([]byte, 0, len(in)+1024)
	placed := map[string]bool{}
	rest := string(in)
	for {
		end := strings.Index(rest, "COMMIT\n")
		if end < 0 {
			break
		}
		section := rest[:end]
		out = append(out, section...)
		table, _, _ := strings.Cut(strings.TrimPrefix(section, "*"), "\n")
		out = appendJumpLines(out, js, table, line)
		placed[table] = true
		out = append(out, "COMMIT\n"...)
		rest = rest[end+len("COMMIT\n"):]
	}
	for _, table := range tables {
		if !placed[table] && slices.ContainsFunc(js, func(j jump) bool { return j.table == table }) {
			out = append(out, "*"+table+"\n"...)
			out = appendJumpLines(out, js, table, line)
			out = append(out, "COMMIT\n"...)
		}
	}
	return out
}

// appendJumpLines appends line(j) for the jumps of one table.
func appendJumpLines(b []byte, js []jump, table string, line func(jump) string) []byte {
	for _, j := range js {
		if j.table == table {
			b = append(b, line(j)+"\n"...)
		}
	}
	return b
}
