package main

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/lbkit/lbkit/lb"
)

func TestExampleBalancesRoundRobin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	counts, err := balance(ctx, 30, lb.RR, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != 3 {
		t.Fatalf("answers from %d backends, want 3: %v", len(counts), counts)
	}
	for name, c := range counts {
		if c != 10 {
			t.Fatalf("rr gave %s %d of 30 connections, want exactly 10: %v", name, c, counts)
		}
	}
}
