package maglev_test

import (
	"fmt"

	"github.com/lbkit/lbkit/lb/maglev"
)

func Example() {
	backends := []maglev.Backend{
		{Name: "198.18.2.10:8080", Weight: 1},
		{Name: "198.18.2.11:8080", Weight: 1},
		{Name: "198.18.2.12:8080", Weight: 2},
	}
	t, err := maglev.New(backends, maglev.DefaultSize)
	if err != nil {
		panic(err)
	}
	// A flow's hash (e.g. of its 5-tuple) picks a slot; the same hash always
	// picks the same backend, in every process that builds the same table.
	for _, flowHash := range []uint64{1, 2, 3, 1} {
		fmt.Println(backends[t.Lookup(flowHash)].Name)
	}
	// The eBPF datapath copies the flat table into an array map.
	fmt.Println(len(t.Slots()) == int(t.Size()))
	// Output:
	// 198.18.2.10:8080
	// 198.18.2.12:8080
	// 198.18.2.12:8080
	// 198.18.2.10:8080
	// true
}
