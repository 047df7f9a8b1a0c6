package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden files")

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

// load is what proxyd does with a --config file and no flags: Parse, then
// Validate.
func load(data []byte, name string) (*Config, []string, error) {
	c, warnings, err := Parse(data, name)
	if err != nil {
		return nil, warnings, err
	}
	if err := c.Validate(); err != nil {
		return nil, warnings, err
	}
	return c, warnings, nil
}

// render is a golden file's text for one input: the error, or the warnings
// and the effective configuration.
func render(t *testing.T, c *Config, warnings []string, err error) []byte {
	t.Helper()
	if err != nil {
		return []byte(err.Error() + "\n")
	}
	var b strings.Builder
	b.WriteString("# warnings\n")
	for _, w := range warnings {
		b.WriteString(w + "\n")
	}
	b.WriteString("# effective configuration\n")
	out, merr := c.Marshal()
	if merr != nil {
		t.Fatal(merr)
	}
	b.Write(out)
	return []byte(b.String())
}

// TestGolden loads every testdata input (YAML and JSON) and compares the
// outcome with its .golden file. Inputs named err-* must fail, the others
// must load; a loaded configuration must also survive a Marshal/Parse round
// trip unchanged and without warnings.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	jsons, _ := filepath.Glob("testdata/*.json")
	inputs = append(inputs, jsons...)
	if len(inputs) < 20 {
		t.Fatalf("found only %d inputs in testdata", len(inputs))
	}
	for _, in := range inputs {
		name := filepath.Base(in)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			c, warnings, err := load(data, name)
			wantErr := strings.HasPrefix(name, "err-")
			if wantErr && err == nil {
				t.Fatalf("%s loaded, want an error", name)
			}
			if !wantErr && err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			checkGolden(t, strings.TrimSuffix(name, filepath.Ext(name))+".golden", render(t, c, warnings, err))
			if err == nil {
				assertRoundTrip(t, c)
			}
		})
	}
}

// assertRoundTrip checks that Parse(Marshal(c)) is c. The comments that
// name the ignored fields of c's file do not come back: they are compared
// without.
func assertRoundTrip(t *testing.T, c *Config) {
	t.Helper()
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for bytes.HasPrefix(out, []byte("#")) {
		_, out, _ = bytes.Cut(out, []byte("\n"))
	}
	back, warnings, err := load(out, "marshalled.yaml")
	if err != nil || len(warnings) > 0 {
		t.Fatalf("marshalled config does not load cleanly: %v %v\n%s", err, warnings, out)
	}
	again, err := back.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, again) {
		t.Errorf("round trip changed the config\n--- first:\n%s\n--- after Parse:\n%s", out, again)
	}
}

// TestDefaultGolden pins what `proxyd --write-config-to` writes with no file
// and no flags.
func TestDefaultGolden(t *testing.T) {
	out, err := Default().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "default.golden", out)
	assertRoundTrip(t, Default())
}
