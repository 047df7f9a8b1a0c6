package iptables

import (
	"bufio"
	"bytes"
	"strings"
)

// splitRule splits one rule as iptables-save and `iptables -S` print it into
// arguments: words separated by spaces, where a double-quoted word may hold
// spaces and backslash-escaped characters.
func splitRule(line string) []string {
	var out []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case c == '"':
			quoted = !quoted
			inWord = true
		case c == ' ' && !quoted:
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}

// rule is one parsed "-A chain ..." line.
type rule struct {
	line  string
	chain string
	args  []string
}

// parseRules returns the "-A" lines of iptables-save or -S output.
func parseRules(out []byte) []rule {
	var rules []rule
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "-A ") {
			continue
		}
		args := splitRule(line)
		if len(args) < 2 {
			continue
		}
		rules = append(rules, rule{line: line, chain: args[1], args: args[2:]})
	}
	return rules
}

// value returns the argument following flag, if present. A comment's text
// is never taken for a flag.
func (r rule) value(flag string) (string, bool) {
	for i := 0; i+1 < len(r.args); i++ {
		switch r.args[i] {
		case flag:
			return r.args[i+1], true
		case "--comment":
			i++
		}
	}
	return "", false
}

// negated reports whether flag is preceded by "!".
func (r rule) negated(flag string) bool {
	for i := 1; i < len(r.args); i++ {
		if r.args[i] == flag && r.args[i-1] == "!" {
			return true
		}
	}
	return false
}

// has reports whether the rule holds the argument (outside comments).
func (r rule) has(arg string) bool {
	for i := 0; i < len(r.args); i++ {
		switch r.args[i] {
		case arg:
			return true
		case "--comment":
			i++
		}
	}
	return false
}

// target returns the rule's -j (or -g) target.
func (r rule) target() string {
	if t, ok := r.value("-j"); ok {
		return t
	}
	t, _ := r.value("-g")
	return t
}

// ourChains returns the chains of ours declared in iptables-save output of
// one table, and the rules of other chains that jump into ours.
func ourChains(out []byte) (chains []string, jumpsIn []rule) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, ":") {
			name, _, _ := strings.Cut(line[1:], " ")
			if isOurChain(name) {
				chains = append(chains, name)
			}
		}
	}
	for _, r := range parseRules(out) {
		if !isOurChain(r.chain) && isOurChain(r.target()) {
			jumpsIn = append(jumpsIn, r)
		}
	}
	return chains, jumpsIn
}
