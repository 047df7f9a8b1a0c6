package testenv

import (
	"context"
	"testing"

	"github.com/lbkit/lbkit/lb"
)

// Program programs svc with eps into dp the way a user does, through a
// new engine (node "node-a") and a Flush, and fails the test on any error.
// It returns the engine, for further changes.
func Program(t testing.TB, dp lb.Datapath, svc *lb.Service, eps []lb.Endpoint) *lb.Engine {
	t.Helper()
	eng, err := lb.NewEngine(dp, lb.Config{NodeName: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Upsert(svc); err != nil {
		t.Fatal(err)
	}
	if err := eng.SetEndpoints(svc.Key, eps); err != nil {
		t.Fatal(err)
	}
	if err := eng.Flush(context.Background()); err != nil {
		t.Fatalf("program %s into %s: %v", svc.Key, dp.Name(), err)
	}
	return eng
}
