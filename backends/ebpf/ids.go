package ebpf

import "fmt"

// idAlloc hands out ids 1..limit. A released id goes to the back of a FIFO
// queue and is handed out again only after every never-used id and every
// id released before it: conntrack and affinity entries that still name a
// released id are also checked against the address they expect, and the
// long reuse distance makes such a check rarely needed.
type idAlloc struct {
	what  string
	limit uint32
	next  uint32   // the lowest never-used id
	free  []uint32 // released ids, oldest first
	head  int      // free[head:] are available
	// journal lists the ids handed out since the last commit, so that a
	// failed service can give them all back.
	journal []uint32
}

func newIDAlloc(what string, limit uint32) *idAlloc {
	return &idAlloc{what: what, limit: limit, next: 1}
}

// get returns a fresh id, or an error when all limit ids are in use.
func (a *idAlloc) get() (uint32, error) {
	if a.next <= a.limit {
		id := a.next
		a.next++
		a.journal = append(a.journal, id)
		return id, nil
	}
	if a.head < len(a.free) {
		id := a.free[a.head]
		a.head++
		if a.head > 1024 && a.head*2 > len(a.free) {
			a.free = append(a.free[:0:0], a.free[a.head:]...)
			a.head = 0
		}
		a.journal = append(a.journal, id)
		return id, nil
	}
	return 0, fmt.Errorf("all %d %s ids are in use (raise the map size in Options)", a.limit, a.what)
}

// put releases id.
func (a *idAlloc) put(id uint32) {
	if id != 0 {
		a.free = append(a.free, id)
	}
}

// commit forgets the journal: the ids handed out since are kept.
func (a *idAlloc) commit() { a.journal = a.journal[:0] }

// rollback releases every id handed out since the last commit.
func (a *idAlloc) rollback() {
	for _, id := range a.journal {
		a.put(id)
	}
	a.journal = a.journal[:0]
}

// inUse returns the number of ids handed out and not released.
func (a *idAlloc) inUse() int { return int(a.next-1) - (len(a.free) - a.head) }

// reserve marks id as in use, for ids found in maps a previous process
// left (adoption).
func (a *idAlloc) reserve(id uint32) {
	if id == 0 || id > a.limit {
		return
	}
	if id >= a.next {
		for x := a.next; x < id; x++ {
			a.free = append(a.free, x)
		}
		a.next = id + 1
		return
	}
	for i := a.head; i < len(a.free); i++ {
		if a.free[i] == id {
			a.free = append(a.free[:i], a.free[i+1:]...)
			return
		}
	}
}
