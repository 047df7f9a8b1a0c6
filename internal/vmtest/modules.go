package vmtest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// DefaultModules are the kernel modules a guest loads unless Options name
// others: IPVS with every scheduler lbkit uses, what connection tracking
// and NAT need (crc32c_generic first: busybox ignores libcrc32c's soft
// dependency on it), conntrack's netlink interface (internal/conntrack
// dumps and deletes entries through it; a node autoloads it on first use,
// the guest cannot, and without it every request fails with EINVAL),
// nftables masquerade, and the link types of
// internal/netns topologies and of the IPVS datapath, and br_netfilter
// (Kubernetes nodes need it: replies between pods on one bridge must pass
// netfilter and IPVS).
var DefaultModules = []string{
	"crc32c_generic", "libcrc32c",
	"nf_defrag_ipv4", "nf_defrag_ipv6", "nf_conntrack", "nf_conntrack_netlink", "nf_nat",
	"nf_tables", "nft_ct", "nft_chain_nat", "nft_masq", "nft_nat",
	"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_lc", "ip_vs_wlc", "ip_vs_sh",
	"ip_vs_dh", "ip_vs_sed", "ip_vs_nq", "ip_vs_mh",
	"veth", "dummy", "bridge", "br_netfilter",
}

// moduleIndex maps module names to their paths (relative to the modules
// directory) and dependencies, as depmod wrote them to modules.dep.
type moduleIndex struct {
	paths   map[string]string   // name -> kernel/.../x.ko
	deps    map[string][]string // path -> dependency paths
	builtin map[string]bool     // names built into the kernel
}

// moduleName returns the canonical name of a module path or name:
// basename without .ko (and any compression suffix), '-' as '_'.
func moduleName(p string) string {
	b := path.Base(p)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return strings.ReplaceAll(b, "-", "_")
}

// loadModuleIndex reads modules.dep and modules.builtin from dir (a
// lib/modules/VERSION directory).
func loadModuleIndex(dir string) (*moduleIndex, error) {
	idx := &moduleIndex{paths: map[string]string{}, deps: map[string][]string{}, builtin: map[string]bool{}}
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("vmtest: %w (was depmod run?)", err)
	}
	defer f.Close()
	if err := idx.parseDep(f); err != nil {
		return nil, fmt.Errorf("vmtest: %s: %w", f.Name(), err)
	}
	if b, err := os.Open(filepath.Join(dir, "modules.builtin")); err == nil {
		defer b.Close()
		sc := bufio.NewScanner(b)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				idx.builtin[moduleName(line)] = true
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("vmtest: %s: %w", b.Name(), err)
		}
	}
	return idx, nil
}

// parseDep reads modules.dep lines: "kernel/a/x.ko: kernel/b/y.ko ...".
func (idx *moduleIndex) parseDep(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		mod, deps, ok := strings.Cut(text, ":")
		if !ok || strings.TrimSpace(mod) == "" {
			return fmt.Errorf("line %d: want \"module.ko: deps...\", got %q", line, text)
		}
		mod = strings.TrimSpace(mod)
		idx.paths[moduleName(mod)] = mod
		idx.deps[mod] = strings.Fields(deps)
	}
	return sc.Err()
}

// loadOrder returns the module paths to insmod, dependencies first, each
// once, for the wanted module names. Built-in modules are skipped; unknown
// ones are an error naming them.
func (idx *moduleIndex) loadOrder(wanted []string) ([]string, error) {
	var (
		order []string
		state = map[string]int{} // 1: visiting, 2: done
		visit func(p string, chain []string) error
	)
	visit = func(p string, chain []string) error {
		switch state[p] {
		case 1:
			return fmt.Errorf("dependency cycle: %s", strings.Join(append(chain, p), " -> "))
		case 2:
			return nil
		}
		state[p] = 1
		for _, d := range idx.deps[p] {
			if err := visit(d, append(chain, p)); err != nil {
				return err
			}
		}
		state[p] = 2
		order = append(order, p)
		return nil
	}
	for _, w := range wanted {
		name := moduleName(w)
		p, ok := idx.paths[name]
		if !ok {
			if idx.builtin[name] {
				continue
			}
			return nil, fmt.Errorf("vmtest: kernel module %q is neither in modules.dep nor built in", w)
		}
		if err := visit(p, nil); err != nil {
			return nil, fmt.Errorf("vmtest: module %s: %w", w, err)
		}
	}
	return order, nil
}
