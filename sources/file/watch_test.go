package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// waitFor polls cond until it holds; the timeout is generous, as it only
// bounds a hang, never asserts a speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runSource starts s.Run and stops it (and checks how it ended) at cleanup.
func runSource(t *testing.T, s *Source) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})
}

// withEndpoint returns threeServices with a's second endpoint at ip.
func withEndpoint(ip string) string { return strings.Replace(threeServices, "198.18.1.2", ip, 1) }

func TestRunReloadsOnChange(t *testing.T) {
	s, sink, rec, path := newTestSource(t, threeServices)
	s.opts.PollInterval = -1 // fsnotify alone must see every change
	mustLoad(t, s)
	runSource(t, s)

	writeFile(t, path, withEndpoint("198.18.1.20"))
	waitFor(t, "an in-place write", func() bool { return sink.hasEndpoint("a", "198.18.1.20:8080") })

	replaceFile(t, path, withEndpoint("198.18.1.21"))
	waitFor(t, "an atomic rename", func() bool { return sink.hasEndpoint("a", "198.18.1.21:8080") })

	// A bad edit is reported and changes nothing; the next good one applies.
	rec.take()
	replaceFile(t, path, strings.Replace(threeServices, "scheduler: rr", "scheduler: fastest", 1))
	waitFor(t, "the bad edit to be reported", func() bool {
		errs, _ := rec.take()
		for _, err := range errs {
			if strings.Contains(err.Error(), "services.yaml:8: services[1].scheduler: unknown scheduler") {
				return true
			}
		}
		return false
	})
	if !sink.hasEndpoint("a", "198.18.1.21:8080") {
		t.Fatalf("bad edit changed the state: %q", sink.state())
	}
	replaceFile(t, path, withEndpoint("198.18.1.22"))
	waitFor(t, "a good edit after a bad one", func() bool { return sink.hasEndpoint("a", "198.18.1.22:8080") })
}

// TestRunConfigMapSwap replaces the file the way Kubernetes updates a
// mounted ConfigMap: services.yaml is a symlink through "..data", and an
// update points "..data" at a new directory with a rename.
func TestRunConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	version := func(name, content string) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name, "services.yaml"), content)
		if err := os.Symlink(name, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..v1", threeServices)
	path := filepath.Join(dir, "services.yaml")
	if err := os.Symlink("..data/services.yaml", path); err != nil {
		t.Fatal(err)
	}
	sink := newRecordSink()
	s := New(path, sink, Options{PollInterval: -1})
	mustLoad(t, s)
	runSource(t, s)
	version("..v2", withEndpoint("198.18.1.30"))
	waitFor(t, "a ConfigMap-style symlink swap", func() bool { return sink.hasEndpoint("a", "198.18.1.30:8080") })
}

func TestRunPollingFallback(t *testing.T) {
	s, sink, _, path := newTestSource(t, threeServices)
	s.opts.disableNotify = true
	s.opts.PollInterval = 20 * time.Millisecond
	mustLoad(t, s)
	runSource(t, s)

	replaceFile(t, path, withEndpoint("198.18.1.40"))
	waitFor(t, "polling to see a rename", func() bool { return sink.hasEndpoint("a", "198.18.1.40:8080") })
	// A different size makes the in-place write visible to stat even on a
	// file system with coarse modification times.
	writeFile(t, path, withEndpoint("198.18.1.141"))
	waitFor(t, "polling to see an in-place write", func() bool { return sink.hasEndpoint("a", "198.18.1.141:8080") })
}

// TestRunLoadsWhatChangedBeforeIt covers a change between Load and Run, and
// Run without Load.
func TestRunLoadsWhatChangedBeforeIt(t *testing.T) {
	s, sink, _, path := newTestSource(t, threeServices)
	s.opts.PollInterval = -1
	s.opts.disableNotify = true // only Run's initial check can see it
	mustLoad(t, s)
	replaceFile(t, path, withEndpoint("198.18.1.50"))
	runSource(t, s)
	waitFor(t, "Run's first check", func() bool { return sink.hasEndpoint("a", "198.18.1.50:8080") })

	fresh := newRecordSink()
	s2 := New(path, fresh, Options{PollInterval: -1, disableNotify: true})
	runSource(t, s2)
	waitFor(t, "Run without Load", func() bool { return fresh.hasEndpoint("a", "198.18.1.50:8080") })
}
