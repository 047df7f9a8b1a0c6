package maglev

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// DefaultSize is the default table size M, a prime. A backend's share is off
// by about one slot, i.e. by n/M relative to an even split over n backends,
// so M of at least 100 times the number of backends (as the Maglev paper
// advises) keeps shares within 1%.
const DefaultSize = 16381

// MaxSize is the largest table size New accepts.
const MaxSize = 1 << 24

// Errors New wraps, for errors.Is.
var (
	// ErrInvalidSize means the table size is not prime, too small for the
	// backends, or above MaxSize.
	ErrInvalidSize = errors.New("maglev: invalid table size")
	// ErrInvalidBackend means a backend has an empty or duplicate Name.
	ErrInvalidBackend = errors.New("maglev: invalid backend")
)

// Backend is one entry of a table.
type Backend struct {
	// Name identifies the backend stably, e.g. "198.18.2.10:8080". It alone
	// decides the backend's slot preferences, so it must not change while
	// the backend stays, and must be unique within a table.
	Name string
	// Weight is the backend's relative share of the slots; 0 counts as 1.
	Weight uint32
}

// Table is a built Maglev lookup table. It is immutable and safe for
// concurrent use.
type Table struct {
	// slots holds, for every slot, an index into the backends given to
	// New, or -1 when there are none.
	slots []int32
}

// New builds a table of m slots over backends. m must be prime, at least
// len(backends) and at most MaxSize; Names must be non-empty and unique. With
// no backends the table's Lookup returns -1 everywhere. The result depends
// only on m and the set of (Name, Weight) pairs, not on their order.
func New(backends []Backend, m uint64) (*Table, error) {
	if err := checkSize(m, len(backends)); err != nil {
		return nil, err
	}
	// order[k] is the caller's index of the k-th backend by Name.
	order := make([]int32, len(backends))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		return strings.Compare(backends[a].Name, backends[b].Name)
	})
	if err := checkNames(backends, order); err != nil {
		return nil, err
	}
	walks := make([]walk, len(order))
	weights := make([]uint64, len(order))
	for k, i := range order {
		walks[k].pos, walks[k].skip = permutation(backends[i].Name, m)
		weights[k] = max(uint64(backends[i].Weight), 1)
	}
	slots := populate(walks, weights, m)
	for s, k := range slots {
		if k >= 0 {
			slots[s] = order[k]
		}
	}
	return &Table{slots: slots}, nil
}

// checkSize validates the table size for n backends.
func checkSize(m uint64, n int) error {
	switch {
	case m > MaxSize:
		return fmt.Errorf("%w: %d is above the maximum %d", ErrInvalidSize, m, MaxSize)
	case !IsPrime(m):
		return fmt.Errorf("%w: %d is not prime", ErrInvalidSize, m)
	case m < uint64(n):
		return fmt.Errorf("%w: %d slots are fewer than the %d backends", ErrInvalidSize, m, n)
	}
	return nil
}

// checkNames rejects empty and duplicate names; order sorts backends by Name.
func checkNames(backends []Backend, order []int32) error {
	for k, i := range order {
		if backends[i].Name == "" {
			return fmt.Errorf("%w: backends[%d] has an empty name", ErrInvalidBackend, i)
		}
		if k > 0 && backends[order[k-1]].Name == backends[i].Name {
			a, b := min(order[k-1], i), max(order[k-1], i)
			return fmt.Errorf("%w: backends[%d] and backends[%d] have the same name %q",
				ErrInvalidBackend, a, b, backends[i].Name)
		}
	}
	return nil
}

// Lookup returns the index, in the slice given to New, of the backend that
// owns slot hash % Size(), or -1 if the table has no backends.
func (t *Table) Lookup(hash uint64) int {
	return int(t.slots[hash%uint64(len(t.slots))])
}

// Slots returns a copy of the table: for every slot the index, in the slice
// given to New, of its backend, or -1 if there are no backends. It is meant
// to be copied into a BPF array map.
func (t *Table) Slots() []int32 {
	return slices.Clone(t.slots)
}

// Size returns the number of slots M.
func (t *Table) Size() uint64 {
	return uint64(len(t.slots))
}
