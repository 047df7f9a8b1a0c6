package vmtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// testBinary is one compiled test package.
type testBinary struct {
	pkg  string // as given in Options.Packages
	name string // file name in the guest's /tests
	path string // on the host
}

// goCommand returns the go command in PATH (go test puts its own
// GOROOT/bin first), else GOROOT/bin/go from the environment.
func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}

// buildTests compiles every package's tests, statically, into dir.
func buildTests(ctx context.Context, o Options, dir string) ([]testBinary, error) {
	var out []testBinary
	used := map[string]int{}
	for _, pkg := range o.Packages {
		base := path.Base(strings.TrimSuffix(pkg, "/..."))
		if strings.HasSuffix(pkg, "/...") {
			return nil, fmt.Errorf("vmtest: package %q: a pattern with /... is not supported, name each package", pkg)
		}
		used[base]++
		name := base + ".test"
		if n := used[base]; n > 1 {
			name = fmt.Sprintf("%s-%d.test", base, n)
		}
		bin := filepath.Join(dir, name)
		cmd := exec.CommandContext(ctx, goCommand(), "test", "-c", "-tags", o.BuildTags, "-o", bin, pkg)
		cmd.Dir = o.Dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		o.Logf("vmtest: go test -c -tags %s %s", o.BuildTags, pkg)
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("vmtest: build tests of %s: %v: %s", pkg, err, strings.TrimSpace(string(b)))
		}
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("vmtest: package %s has no test files (go test -c wrote no binary)", pkg)
		}
		out = append(out, testBinary{pkg: pkg, name: name, path: bin})
	}
	return out, nil
}
