//go:build !vmtest

package vmtest

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/internal/testenv"
)

// TestArchiveWithCpio writes an archive and lists and unpacks it with the
// real cpio tool.
func TestArchiveWithCpio(t *testing.T) {
	testenv.RequireTool(t, "cpio", "cpio")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("from the host\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := newArchive()
	a.file("/init", 0o755, []byte("#!/bin/sh\n"))
	a.copyFile("usr/local/bin/prog", src, 0o755)
	a.symlink("var/run", "../run")
	a.dir("proc")
	var buf bytes.Buffer
	if err := a.writeTo(&buf); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("cpio", "-idm", "--quiet")
	cmd.Dir, cmd.Stdin = out, &buf
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -id: %v: %s", err, b)
	}
	if b, err := os.ReadFile(filepath.Join(out, "usr/local/bin/prog")); err != nil || string(b) != "from the host\n" {
		t.Errorf("prog = %q, %v", b, err)
	}
	if st, err := os.Stat(filepath.Join(out, "init")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("init: %v, %v; want mode 0755", st, err)
	}
	if l, err := os.Readlink(filepath.Join(out, "var/run")); err != nil || l != "../run" {
		t.Errorf("var/run -> %q, %v; want ../run", l, err)
	}
	if st, err := os.Stat(filepath.Join(out, "proc")); err != nil || !st.IsDir() {
		t.Errorf("proc: %v, %v; want a directory", st, err)
	}
}

func TestModuleLoadOrder(t *testing.T) {
	dep := `kernel/lib/libcrc32c.ko:
kernel/net/nf_defrag_ipv4.ko:
kernel/net/nf_conntrack.ko: kernel/net/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/net/ipvs/ip_vs.ko: kernel/net/nf_conntrack.ko kernel/net/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/net/ipvs/ip_vs_rr.ko: kernel/net/ipvs/ip_vs.ko kernel/net/nf_conntrack.ko kernel/net/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/drivers/net/dummy.ko:
`
	idx := &moduleIndex{paths: map[string]string{}, deps: map[string][]string{}, builtin: map[string]bool{"ipv6": true}}
	if err := idx.parseDep(strings.NewReader(dep)); err != nil {
		t.Fatal(err)
	}
	order, err := idx.loadOrder([]string{"ip_vs_rr", "ipv6", "dummy", "ip-vs"})
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(order))
	for i, p := range order {
		names[i] = moduleName(p)
	}
	pos := func(n string) int { return slices.Index(names, n) }
	for _, pair := range [][2]string{{"nf_defrag_ipv4", "nf_conntrack"}, {"libcrc32c", "nf_conntrack"}, {"nf_conntrack", "ip_vs"}, {"ip_vs", "ip_vs_rr"}} {
		if pos(pair[0]) < 0 || pos(pair[1]) < 0 || pos(pair[0]) > pos(pair[1]) {
			t.Errorf("order %v: want %s before %s", names, pair[0], pair[1])
		}
	}
	if len(names) != 6 {
		t.Errorf("order %v: want 6 modules, each once (ipv6 is built in)", names)
	}
	if _, err := idx.loadOrder([]string{"nosuchmod"}); err == nil || !strings.Contains(err.Error(), `"nosuchmod"`) {
		t.Errorf("unknown module: err = %v, want one naming it", err)
	}
	if err := idx.parseDep(strings.NewReader("no colon here\n")); err == nil {
		t.Error("parseDep accepted a line without a colon")
	}
}

func TestParseDepends(t *testing.T) {
	out := []byte("linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n  Recommends: firmware\n")
	if got := parseDepends(out); got != "linux-image-6.1.0-56-amd64" {
		t.Errorf("parseDepends = %q", got)
	}
	if got := parseDepends([]byte("linux-image-amd64\n")); got != "" {
		t.Errorf("parseDepends without Depends = %q, want empty", got)
	}
}

func TestParseLdd(t *testing.T) {
	out := []byte("\tlinux-vdso.so.1 (0x00007ffd)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f)\n\t/lib64/ld-linux-x86-64.so.2 (0x7f)\n")
	want := []string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}
	if got := parseLdd(out); !slices.Equal(got, want) {
		t.Errorf("parseLdd = %q, want %q", got, want)
	}
}

// TestShellQuote runs the quoted words through a real shell.
func TestShellQuote(t *testing.T) {
	sh := testenv.RequireTool(t, "sh", "dash")
	words := []string{"plain", "two words", "it's", `$HOME "x" \n`, ""}
	var script strings.Builder
	script.WriteString("for w in")
	for _, w := range words {
		script.WriteString(" " + shellQuote(w))
	}
	script.WriteString(`; do printf '%s|' "$w"; done`)
	out, err := exec.Command(sh, "-c", script.String()).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(words, "|") + "|"; string(out) != want {
		t.Errorf("shell saw %q, want %q", out, want)
	}
}

// TestConsoleMarkers: only lines with the run's nonce count.
func TestConsoleMarkers(t *testing.T) {
	var out bytes.Buffer
	c := &console{nonce: "vmtest-abc", out: &out}
	in := strings.Join([]string{
		"vmtest-abc booted 6.1.0-56-amd64\r",
		"vmtest-abc insmod-failed dummy.ko",
		"vmtest-xyz exit forged.test 0",
		"vmtest-abc exit a.test 0",
		"vmtest-abc exit b.test 1",
		"vmtest-abc done",
	}, "\n")
	if err := c.follow(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	res, tail := c.snapshot()
	if !res.Booted || res.Release != "6.1.0-56-amd64" || !res.Completed {
		t.Errorf("result = %+v", res)
	}
	want := []TestResult{{"a.test", 0}, {"b.test", 1}}
	if !slices.Equal(res.Tests, want) {
		t.Errorf("tests = %v, want %v", res.Tests, want)
	}
	if len(tail) != 6 || strings.Contains(out.String(), "\r") {
		t.Errorf("tail %q, output %q: want 6 lines without CR", tail, out.String())
	}
	err := res.Err()
	if err == nil || !strings.Contains(err.Error(), "b.test exited with 1") || !strings.Contains(err.Error(), "dummy.ko") {
		t.Errorf("Err = %v, want b.test and dummy.ko named", err)
	}
	if (&Result{Booted: true, Completed: true, Tests: want[:1]}).Err() != nil {
		t.Error("a clean result has an error")
	}
	if err := (&Result{Booted: true}).Err(); err == nil {
		t.Error("an incomplete run has no error")
	}
}

// TestExtractVMLinux finds the compressed ELF inside a fake bzImage.
func TestExtractVMLinux(t *testing.T) {
	payload := append([]byte("\x7fELF"), bytes.Repeat([]byte("kernel"), 1000)...)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(payload)
	zw.Close()
	dir := t.TempDir()
	img := filepath.Join(dir, "vmlinuz")
	// A decoy gzip header that does not unpack, then the real stream.
	data := slices.Concat([]byte("setup code \x1f\x8b\x08 junk"), gz.Bytes(), []byte("trailer"))
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "vmlinux")
	if err := extractVMLinux(t.Context(), img, dst); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, payload) {
		t.Errorf("vmlinux is %d bytes, want the %d-byte payload", len(got), len(payload))
	}
	if err := os.WriteFile(img, []byte("no kernel in here"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := extractVMLinux(t.Context(), img, dst); err == nil {
		t.Error("extractVMLinux accepted an image without a compressed kernel")
	}
}

func TestOptionsErrors(t *testing.T) {
	for _, o := range []Options{
		{},
		{Packages: []string{"./x"}, Env: []string{"NOVALUE"}},
		{Packages: []string{"./x"}, Env: []string{"BAD KEY=1"}},
		{Packages: []string{"./x"}, Timeout: -1},
	} {
		if _, err := o.withDefaults(); err == nil {
			t.Errorf("withDefaults(%+v) accepted", o)
		}
	}
	o, err := Options{Packages: []string{"./x"}, Dir: "/tmp", CacheDir: "/tmp/c"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Timeout != DefaultTimeout || o.CPUs != DefaultCPUs || o.Memory != DefaultMemory || !slices.Equal(o.Modules, DefaultModules) {
		t.Errorf("defaults not applied: %+v", o)
	}
}
