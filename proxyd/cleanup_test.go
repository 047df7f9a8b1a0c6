package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// fakeKind is a kind of state held in memory; objects in stuck cannot be
// removed.
func fakeKind(name string, objects []string, stuck map[string]bool) stateKind {
	return stateKind{
		name: name,
		scan: func(context.Context) ([]string, error) { return objects, nil },
		clean: func(context.Context) error {
			var left []string
			for _, o := range objects {
				if stuck[o] {
					left = append(left, o)
				}
			}
			objects = left
			if len(left) > 0 {
				return errors.New("permission denied")
			}
			return nil
		},
	}
}

// TestCleanupKindsReports: every removed object is logged, what remains is
// logged and fails the run, a kind that cannot exist is skipped, and a
// second run removes nothing and succeeds.
func TestCleanupKindsReports(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	a := fakeKind("a", []string{"a: one", "a: two"}, nil)
	b := fakeKind("b", []string{"b: gone", "b: stuck"}, map[string]bool{"b: stuck": true})
	none := stateKind{name: "none", scan: func(context.Context) ([]string, error) {
		return nil, errNothingToScan
	}, clean: func(context.Context) error { t.Fatal("cleaned a kind that cannot exist"); return nil }}
	err := cleanupKinds(t.Context(), []stateKind{a, b, none}, zap.New(core))
	if err == nil || !strings.Contains(err.Error(), "b: stuck") || strings.Contains(err.Error(), "b: gone") {
		t.Fatalf("error %v: want one naming only what remains (b: stuck)", err)
	}
	objects := func(msg string) []string {
		var out []string
		for _, e := range logs.FilterMessage(msg).All() {
			out = append(out, e.ContextMap()["object"].(string))
		}
		return out
	}
	if got := strings.Join(objects("removed"), ","); got != "a: one,a: two,b: gone" {
		t.Fatalf("removed lines: %s", got)
	}
	if got := strings.Join(objects("still present"), ","); got != "b: stuck" {
		t.Fatalf("still present lines: %s", got)
	}

	core, logs = observer.New(zap.InfoLevel)
	if err := cleanupKinds(t.Context(), []stateKind{a, none}, zap.New(core)); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if n := logs.FilterMessage("removed").Len(); n != 0 {
		t.Fatalf("a second run removed %d objects", n)
	}
}

// TestKindCleanerNamesWhatRemains: the Cleaner of a leftover fails when a
// scan after the removal still finds objects, and names them.
func TestKindCleanerNamesWhatRemains(t *testing.T) {
	c := kindCleaner{fakeKind("b", []string{"b: gone", "b: stuck"}, map[string]bool{"b: stuck": true})}
	err := c.Cleanup(t.Context())
	if err == nil || !strings.Contains(err.Error(), "b: stuck") {
		t.Fatalf("Cleanup: %v, want an error naming b: stuck", err)
	}
	ok := kindCleaner{fakeKind("a", []string{"a: one"}, nil)}
	if err := ok.Cleanup(t.Context()); err != nil || ok.Name() != "a" {
		t.Fatalf("Cleanup: %v, Name %q", err, ok.Name())
	}
}
