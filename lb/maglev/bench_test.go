package maglev

import (
	"fmt"
	"testing"
)

func BenchmarkNew(b *testing.B) {
	for _, bc := range []struct {
		m uint64
		n int
	}{{DefaultSize, 3}, {DefaultSize, 100}, {DefaultSize, 1000}, {65537, 1000}} {
		b.Run(fmt.Sprintf("M=%d/n=%d", bc.m, bc.n), func(b *testing.B) {
			bs := backendSet(1, bc.n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := New(bs, bc.m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNewWeighted(b *testing.B) {
	bs := backendSet(1, 1000)
	for i := range bs {
		bs[i].Weight = uint32(1 + i%10)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(bs, 65537); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	tb := mustNew(b, backendSet(1, 100), DefaultSize)
	var h uint64
	sink := 0
	for b.Loop() {
		h += 0x9e3779b97f4a7c15 // spread the hashes over the table
		sink += tb.Lookup(h)
	}
	if sink == 0 {
		b.Log("all lookups hit backend 0")
	}
}
