package testenv

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// recorder is a testing.TB that records how a test ended instead of ending
// the calling test. Skip and Fatal end the goroutine as the real ones do.
type recorder struct {
	testing.TB
	mu      sync.Mutex
	skipped string
	failed  string
}

func (r *recorder) Helper() {}

func (r *recorder) Skip(args ...any) {
	r.mu.Lock()
	r.skipped = fmt.Sprint(args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.failed = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

// run calls fn with a recorder on its own goroutine, as testing does, and
// returns the recorder once fn returned or ended the "test".
func run(t *testing.T, fn func(tb testing.TB)) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
	return r
}

const missing = "lbkit-no-such-tool"

func TestRequireToolSkipsNamingThePackage(t *testing.T) {
	t.Setenv(RequireEnv, "")
	r := run(t, func(tb testing.TB) { RequireTool(tb, missing, "lbkit-pkg") })
	want := missing + " not found: apt-get install lbkit-pkg (or make deps)"
	if r.skipped != want || r.failed != "" {
		t.Fatalf("skipped %q, failed %q; want a skip %q", r.skipped, r.failed, want)
	}
}

func TestRequireToolFailsWhenRequired(t *testing.T) {
	t.Setenv(RequireEnv, "1")
	r := run(t, func(tb testing.TB) { RequireTool(tb, missing, "lbkit-pkg") })
	if r.skipped != "" || !strings.Contains(r.failed, "apt-get install lbkit-pkg") || !strings.Contains(r.failed, RequireEnv+"=1") {
		t.Fatalf("skipped %q, failed %q; want a failure naming the package and %s", r.skipped, r.failed, RequireEnv)
	}
}

func TestRequireToolReturnsThePath(t *testing.T) {
	t.Setenv(RequireEnv, "1")
	var got string
	r := run(t, func(tb testing.TB) { got = RequireTool(tb, "sh", "dash") })
	if r.skipped != "" || r.failed != "" || !strings.HasSuffix(got, "/sh") {
		t.Fatalf("RequireTool(sh) = %q (skipped %q, failed %q)", got, r.skipped, r.failed)
	}
}
