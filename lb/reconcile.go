package lb

import (
	"iter"
	"slices"
)

// Applied is the bookkeeping of a datapath that remembers what it
// programmed: for every service it holds, a value of the datapath's own (V:
// its sockets, map entries, rule handles...) and the ServiceState that value
// was last programmed from.
//
// A sync goes plan -> apply -> commit: Work lists what to reconcile, the
// datapath plans and applies it, and only what the kernel accepted is
// recorded, with Set and Delete or, for a datapath that applies a whole
// sync at once, with one Commit. A failure then leaves Applied describing
// what is programmed, and the next sync retries exactly what failed.
//
// The zero value is empty and ready to use. Applied is not safe for
// concurrent use.
type Applied[V any] struct {
	m map[ServiceKey]appliedEntry[V]
}

type appliedEntry[V any] struct {
	v  V
	st *ServiceState
}

// Work is one service a sync reconciles.
type Work[V any] struct {
	Key ServiceKey
	// State is the desired state; nil when the service was deleted.
	State *ServiceState
	// Old is what the datapath holds for Key, its zero value when Has is
	// false.
	Old V
	Has bool
	// Applied is the state Old was programmed from; nil when Has is false
	// or when the last attempt did not fully succeed.
	Applied *ServiceState
}

// Unchanged reports whether the service is programmed from exactly State.
// Snapshots share unchanged states, so pointer equality is exact.
func (w Work[V]) Unchanged() bool { return w.State != nil && w.State == w.Applied }

// Work returns the services a sync reconciles. A partial sync
// (!changed.Full) lists the keys changed names, sorted, at a cost that does
// not grow with the number of services. A full sync lists every service of
// s, in s's order, then every service a holds that s does not, sorted by
// key; unchanged services are listed too (see Pending).
func (a *Applied[V]) Work(s *Snapshot, changed ChangeSet) []Work[V] {
	return a.work(s, changed, false)
}

// Pending is Work without, on a full sync, the services that are
// Unchanged: for datapaths whose full sync need not touch them.
func (a *Applied[V]) Pending(s *Snapshot, changed ChangeSet) []Work[V] {
	return a.work(s, changed, true)
}

func (a *Applied[V]) work(s *Snapshot, changed ChangeSet, skipUnchanged bool) []Work[V] {
	if !changed.Full {
		keys := changed.Keys()
		todo := make([]Work[V], 0, len(keys))
		for _, k := range keys {
			st, _ := s.Service(k)
			todo = append(todo, a.item(k, st))
		}
		return todo
	}
	var gone []ServiceKey
	for k := range a.m {
		if _, ok := s.Service(k); !ok {
			gone = append(gone, k)
		}
	}
	slices.Sort(gone)
	var todo []Work[V]
	if !skipUnchanged {
		todo = make([]Work[V], 0, s.Len()+len(gone))
	}
	s.Range(func(st *ServiceState) bool {
		k := st.Key()
		e, ok := a.m[k]
		if !skipUnchanged || e.st != st {
			todo = append(todo, Work[V]{Key: k, State: st, Old: e.v, Has: ok, Applied: e.st})
		}
		return true
	})
	for _, k := range gone {
		todo = append(todo, a.item(k, nil))
	}
	return todo
}

// item returns the work item of key with desired state st.
func (a *Applied[V]) item(key ServiceKey, st *ServiceState) Work[V] {
	e, ok := a.m[key]
	return Work[V]{Key: key, State: st, Old: e.v, Has: ok, Applied: e.st}
}

// Get returns the value held for key, the state it was programmed from
// (nil when its last attempt failed) and whether there is one.
func (a *Applied[V]) Get(key ServiceKey) (V, *ServiceState, bool) {
	e, ok := a.m[key]
	return e.v, e.st, ok
}

// Len returns the number of services held.
func (a *Applied[V]) Len() int { return len(a.m) }

// All yields every service held and its value, in no particular order.
func (a *Applied[V]) All() iter.Seq2[ServiceKey, V] {
	return func(yield func(ServiceKey, V) bool) {
		for k, e := range a.m {
			if !yield(k, e.v) {
				return
			}
		}
	}
}

// Set records v as what is programmed for key, from st. A nil st records a
// service that is (partly) programmed by v but not as any desired state,
// e.g. after a failure: the next full sync reconciles it again.
func (a *Applied[V]) Set(key ServiceKey, v V, st *ServiceState) {
	if a.m == nil {
		a.m = make(map[ServiceKey]appliedEntry[V])
	}
	a.m[key] = appliedEntry[V]{v: v, st: st}
}

// Delete forgets key: nothing of it is programmed any more.
func (a *Applied[V]) Delete(key ServiceKey) { delete(a.m, key) }

// Reset forgets every service and makes room for n.
func (a *Applied[V]) Reset(n int) { a.m = make(map[ServiceKey]appliedEntry[V], n) }

// Commit is the bookkeeping of one sync held back until the kernel has
// accepted the sync: Set and Delete record what the sync programs, and
// Applied.Commit makes it so once it is. The zero value is empty.
type Commit[V any] struct {
	ops []commitOp[V]
}

type commitOp[V any] struct {
	key ServiceKey
	del bool
	e   appliedEntry[V]
}

// Set records that the sync programs v for key, from st (nil: partly, see
// Applied.Set).
func (c *Commit[V]) Set(key ServiceKey, v V, st *ServiceState) {
	c.ops = append(c.ops, commitOp[V]{key: key, e: appliedEntry[V]{v: v, st: st}})
}

// Delete records that the sync removes everything of key.
func (c *Commit[V]) Delete(key ServiceKey) {
	c.ops = append(c.ops, commitOp[V]{key: key, del: true})
}

// Grow makes room for n more records.
func (c *Commit[V]) Grow(n int) { c.ops = slices.Grow(c.ops, n) }

// Len returns the number of services the commit records.
func (c *Commit[V]) Len() int { return len(c.ops) }

// Commit records c's outcome in a, in the order c recorded it, and empties
// c. Call it only once the kernel accepted every change c describes.
func (a *Applied[V]) Commit(c *Commit[V]) {
	for _, op := range c.ops {
		if op.del {
			a.Delete(op.key)
		} else {
			a.Set(op.key, op.e.v, op.e.st)
		}
	}
	clear(c.ops)
	c.ops = c.ops[:0]
}
