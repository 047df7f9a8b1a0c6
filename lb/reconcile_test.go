package lb_test

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/lbkit/lbkit/lb"
)

// recState returns a one-frontend state of service key.
func recState(key string, port uint16) *lb.ServiceState {
	fe := lb.Frontend{Addr: netip.MustParseAddr("198.18.100.1"), Port: port, Protocol: lb.TCP, Kind: lb.ClusterIP}
	return &lb.ServiceState{
		Service:   &lb.Service{Key: lb.ServiceKey(key), Frontends: []lb.Frontend{fe}},
		Frontends: []lb.FrontendState{{Frontend: fe}},
	}
}

func changed(full bool, keys ...lb.ServiceKey) lb.ChangeSet {
	cs := lb.ChangeSet{Full: full, Changed: make(map[lb.ServiceKey]struct{})}
	for _, k := range keys {
		cs.Changed[k] = struct{}{}
	}
	return cs
}

// describe renders a work list as "key:old/state" items: old is the value
// held (- for none), state is "same" (Unchanged), "new" or "del".
func describe(todo []lb.Work[string]) []string {
	var out []string
	for _, w := range todo {
		old := "-"
		if w.Has {
			old = w.Old
		}
		state := "new"
		switch {
		case w.State == nil:
			state = "del"
		case w.Unchanged():
			state = "same"
		}
		out = append(out, fmt.Sprintf("%s:%s/%s", w.Key, old, state))
	}
	return out
}

func TestAppliedWork(t *testing.T) {
	a1, b1, c1, d1 := recState("a", 1), recState("b", 2), recState("c", 3), recState("d", 4)
	var ap lb.Applied[string]
	ap.Set("a", "A", a1)
	ap.Set("b", "B", b1)
	ap.Set("c", "C", nil) // its last attempt failed
	ap.Set("z", "Z", recState("z", 9))
	b2 := recState("b", 2)
	s := (*lb.Snapshot)(nil).With(a1).With(b2).With(c1).With(d1)

	// A partial sync lists the changed keys only, sorted, whatever the
	// snapshot holds.
	got := describe(ap.Work(s, changed(false, "z", "b", "d")))
	if want := []string{"b:B/new", "d:-/new", "z:Z/del"}; !slices.Equal(got, want) {
		t.Errorf("partial Work = %v, want %v", got, want)
	}
	if got := describe(ap.Pending(s, changed(false, "a"))); !slices.Equal(got, []string{"a:A/same"}) {
		t.Errorf("partial Pending lists a changed key whatever its state: got %v", got)
	}

	// A full sync lists every service of s, then the held ones s lacks.
	full := ap.Work(s, changed(true))
	got = describe(full)
	slices.Sort(got[:4]) // s's order is its own
	if want := []string{"a:A/same", "b:B/new", "c:C/new", "d:-/new", "z:Z/del"}; !slices.Equal(got, want) {
		t.Errorf("full Work = %v, want %v", got, want)
	}
	var order []lb.ServiceKey
	s.Range(func(st *lb.ServiceState) bool { order = append(order, st.Key()); return true })
	for i, k := range order {
		if full[i].Key != k {
			t.Errorf("full Work[%d] is %s, want the snapshot's order %v", i, full[i].Key, order)
		}
	}
	got = describe(ap.Pending(s, changed(true)))
	slices.Sort(got)
	if want := []string{"b:B/new", "c:C/new", "d:-/new", "z:Z/del"}; !slices.Equal(got, want) {
		t.Errorf("full Pending = %v, want %v (a unchanged)", got, want)
	}
}

func TestAppliedCommit(t *testing.T) {
	a1, b1 := recState("a", 1), recState("b", 2)
	var ap lb.Applied[string]
	ap.Set("a", "A", a1)
	ap.Set("gone", "G", recState("gone", 3))

	var c lb.Commit[string]
	c.Set("b", "B", b1)
	c.Delete("gone")
	c.Set("a", "A2", nil)
	c.Set("a", "A3", a1) // the last record of a key wins
	if c.Len() != 4 {
		t.Fatalf("Commit.Len = %d, want 4", c.Len())
	}
	// Nothing changes before the commit.
	if v, st, ok := ap.Get("a"); v != "A" || st != a1 || !ok || ap.Len() != 2 {
		t.Fatalf("before Commit: a = %q %v %v, %d held", v, st, ok, ap.Len())
	}
	ap.Commit(&c)
	if c.Len() != 0 {
		t.Errorf("Commit left %d records in the batch", c.Len())
	}
	held := map[lb.ServiceKey]string{}
	for k, v := range ap.All() {
		held[k] = v
	}
	if fmt.Sprint(held) != "map[a:A3 b:B]" {
		t.Errorf("after Commit: %v, want a:A3 b:B", held)
	}
	if _, st, _ := ap.Get("b"); st != b1 {
		t.Errorf("b's applied state is %v, want the committed one", st)
	}

	ap.Reset(8)
	if ap.Len() != 0 {
		t.Errorf("Reset left %d services", ap.Len())
	}
}

// BenchmarkAppliedWorkPartial measures the work list of a one-service
// change among 10000 services held.
func BenchmarkAppliedWorkPartial(b *testing.B) {
	var ap lb.Applied[int]
	var s *lb.Snapshot
	for i := range 10000 {
		st := recState(fmt.Sprintf("svc-%05d", i), uint16(1+i%60000))
		s = s.With(st)
		ap.Set(st.Key(), i, st)
	}
	cs := changed(false, "svc-04242")
	b.ReportAllocs()
	for b.Loop() {
		if todo := ap.Work(s, cs); len(todo) != 1 {
			b.Fatal(len(todo))
		}
	}
}
