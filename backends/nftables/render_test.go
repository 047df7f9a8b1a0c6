package nftables

import (
	"encoding/hex"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
	goldenfile "github.com/lbkit/lbkit/internal/golden"
	"github.com/lbkit/lbkit/internal/nftutil"
	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	goldenfile.Check(t, filepath.Join("testdata", name), got, *update)
}

// renderChain renders a chain like `nft --debug=netlink`, one expression
// per bracket, registers by netlink number.
func renderChain(c chainDef) string {
	var b strings.Builder
	fmt.Fprintf(&b, "chain %s", c.name)
	if c.base() {
		fmt.Fprintf(&b, " { type %s hook %d priority %d }", c.ctype, *c.hook, c.prio)
	}
	b.WriteString("\n")
	for _, r := range c.rules {
		b.WriteString("  " + renderRule(r) + "\n")
	}
	return b.String()
}

func renderRule(r []expr.Any) string {
	parts := make([]string, len(r))
	for i, e := range r {
		parts[i] = "[ " + renderExpr(e) + " ]"
	}
	return strings.Join(parts, " ")
}

func renderExpr(e expr.Any) string {
	switch e := e.(type) {
	case *expr.Meta:
		if e.SourceRegister {
			return fmt.Sprintf("meta set %d with reg %d", e.Key, e.Register)
		}
		return fmt.Sprintf("meta load %d => reg %d", e.Key, e.Register)
	case *expr.Cmp:
		return fmt.Sprintf("cmp %d reg %d 0x%s", e.Op, e.Register, hex.EncodeToString(e.Data))
	case *expr.Payload:
		return fmt.Sprintf("payload load %db @ base %d + %d => reg %d", e.Len, e.Base, e.Offset, e.DestRegister)
	case *expr.Bitwise:
		return fmt.Sprintf("bitwise reg %d = (reg %d & 0x%s) ^ 0x%s", e.DestRegister, e.SourceRegister, hex.EncodeToString(e.Mask), hex.EncodeToString(e.Xor))
	case *expr.Lookup:
		if e.IsDestRegSet {
			return fmt.Sprintf("lookup reg %d set %s dreg %d", e.SourceRegister, e.SetName, e.DestRegister)
		}
		return fmt.Sprintf("lookup reg %d set %s", e.SourceRegister, e.SetName)
	case *expr.Numgen:
		return fmt.Sprintf("numgen reg %d = random mod %d", e.Register, e.Modulus)
	case *expr.NAT:
		return fmt.Sprintf("nat dnat family %d addr_min reg %d proto_min reg %d", e.Family, e.RegAddrMin, e.RegProtoMin)
	case *expr.Dynset:
		return fmt.Sprintf("dynset op %d reg_key %d set %s timeout %s", e.Operation, e.SrcRegKey, e.SetName, e.Timeout)
	case *expr.Immediate:
		return fmt.Sprintf("immediate reg %d 0x%s", e.Register, hex.EncodeToString(e.Data))
	case *expr.Verdict:
		switch e.Kind {
		case expr.VerdictJump:
			return "jump " + e.Chain
		case expr.VerdictGoto:
			return "goto " + e.Chain
		case expr.VerdictReturn:
			return "return"
		}
		return fmt.Sprintf("verdict %d", e.Kind)
	case *expr.Fib:
		return fmt.Sprintf("fib saddr=%v daddr=%v type => reg %d", e.FlagSADDR, e.FlagDADDR, e.Register)
	case *expr.Ct:
		return fmt.Sprintf("ct load %d => reg %d", e.Key, e.Register)
	case *expr.Masq:
		return fmt.Sprintf("masq fully-random=%v", e.FullyRandom)
	case *expr.Reject:
		return fmt.Sprintf("reject type %d code %d", e.Type, e.Code)
	}
	return fmt.Sprintf("%T", e)
}

// regWords maps a netlink register number and a length in bytes to the
// 32-bit data registers (0..15) it covers; ok is false for the verdict.
func regWords(r uint32, n int) (first, count int, ok bool) {
	switch {
	case r == unix.NFT_REG_VERDICT:
		return 0, 0, false
	case r <= unix.NFT_REG_4:
		first = int(r-1) * 4
	default:
		first = int(r - unix.NFT_REG32_00)
	}
	return first, (n + 3) / 4, true
}

// checkRegisters simulates a rule's register use: every read must cover
// registers an earlier expression of the rule wrote, with the length the
// set it looks up expects, within the 16 data registers.
func checkRegisters(t *testing.T, chain string, v6 bool, rule []expr.Any) {
	t.Helper()
	loaded := map[int]bool{}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("chain %s (ipv6=%v) rule %s: %s", chain, v6, renderRule(rule), fmt.Sprintf(format, args...))
	}
	write := func(r uint32, n int) {
		first, count, ok := regWords(r, n)
		if !ok {
			return
		}
		if first < 0 || first+count > 16 {
			fail("writes registers %d..%d, beyond the 16 data registers", first, first+count-1)
		}
		for i := first; i < first+count; i++ {
			loaded[i] = true
		}
	}
	read := func(what string, r uint32, n int) {
		first, count, _ := regWords(r, n)
		if first < 0 || first+count > 16 {
			fail("%s reads registers %d..%d, beyond the 16 data registers", what, first, first+count-1)
			return
		}
		for i := first; i < first+count; i++ {
			if !loaded[i] {
				fail("%s reads register %d, which nothing wrote", what, i)
				return
			}
		}
	}
	set := func(name string) setDef {
		for _, d := range familySets(v6) {
			if d.name == name {
				return d
			}
		}
		fail("unknown set %q", name)
		return setDef{}
	}
	for _, e := range rule {
		switch e := e.(type) {
		case *expr.Payload:
			write(e.DestRegister, int(e.Len))
		case *expr.Meta:
			if e.SourceRegister {
				read("meta set", e.Register, 4)
			} else {
				write(e.Register, 4)
			}
		case *expr.Immediate:
			write(e.Register, len(e.Data))
		case *expr.Numgen, *expr.Fib, *expr.Ct:
			var r uint32
			switch e := e.(type) {
			case *expr.Numgen:
				r = e.Register
			case *expr.Fib:
				r = e.Register
			case *expr.Ct:
				r = e.Register
			}
			write(r, 4)
		case *expr.Bitwise:
			read("bitwise", e.SourceRegister, int(e.Len))
			write(e.DestRegister, int(e.Len))
		case *expr.Cmp:
			read("cmp", e.Register, len(e.Data))
		case *expr.Lookup:
			d := set(e.SetName)
			read("lookup "+e.SetName, e.SourceRegister, fieldsSize(d.key))
			if e.IsDestRegSet && d.kind == dataMap {
				write(e.DestRegister, fieldsSize(d.data))
			}
		case *expr.Dynset:
			d := set(e.SetName)
			read("dynset "+e.SetName, e.SrcRegKey, fieldsSize(d.key))
		case *expr.NAT:
			read("nat address", e.RegAddrMin, nftutil.AddrLen(v6))
			read("nat port", e.RegProtoMin, 2)
		}
	}
}
