package nsutil

import (
	"errors"
	"testing"
)

func TestDoEmptyPathRunsHere(t *testing.T) {
	want := errors.New("from fn")
	ran := false
	err := Do("", func() error { ran = true; return want })
	if !ran || err != want {
		t.Fatalf("Do(\"\") ran fn: %v, returned %v; want fn run and its error", ran, err)
	}
}
