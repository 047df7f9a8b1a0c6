package bpf

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestObjectsMatchSources checks that the committed object was generated
// from the C sources as they are now: `make bpf` records the sources'
// SHA-256 in sources.sum when it regenerates, so an edited source without a
// regenerated object fails here even where no clang is installed. (CI with
// clang-14 also regenerates and compares the object byte for byte.)
func TestObjectsMatchSources(t *testing.T) {
	f, err := os.Open("sources.sum")
	if err != nil {
		t.Fatalf("sources.sum (written by make bpf): %v", err)
	}
	defer f.Close()
	recorded := make(map[string]string)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, file, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("sources.sum: malformed line %q", sc.Text())
		}
		recorded[file] = sum
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, pat := range []string{"lb.c", "lb*.h", "headers/*.h"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	slices.Sort(files)
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(b)
		switch want, ok := recorded[file]; {
		case !ok:
			t.Errorf("%s is not in sources.sum: run make bpf and commit the regenerated files", file)
		case want != hex.EncodeToString(h[:]):
			t.Errorf("%s changed since lb_bpfel.o was generated: run make bpf and commit the regenerated files", file)
		}
		delete(recorded, file)
	}
	for file := range recorded {
		t.Errorf("sources.sum lists %s, which no longer exists: run make bpf", file)
	}
}
