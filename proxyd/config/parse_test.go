package config

import "testing"

// TestParseSharedDecoderRules checks the rules proxyd/config now shares
// with sources/file through internal/yamlline.
func TestParseSharedDecoderRules(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		// A second document is located at its "---", where it starts.
		{"second document", header + "---\nmode: ipvs\n",
			`x.yaml:3: a second YAML document starts here; the file must hold one KubeProxyConfiguration`},
		// A key that is a number is not a field name.
		{"integer key", header + "5: x\n", `x.yaml:3: field names must be strings, got integer 5`},
		// A whole number too big for an int64 is out of range, not "a number".
		{"huge integer", header + "conntrack:\n  maxPerCore: 123456789012345678901234567890\n",
			`x.yaml:4: conntrack.maxPerCore: 123456789012345678901234567890 is out of range for a 32-bit integer`},
		// Problems come in line order, whatever the mapping's walk found first.
		{"line order", header + "mode: 3\nmode: 4\nnope: 1\n",
			"x.yaml:3: mode: expected a string, got integer 3\n" +
				`x.yaml:4: duplicate field "mode" (first at line 3)` + "\n" +
				`x.yaml:5: unknown field "nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Parse([]byte(tc.in), "x.yaml")
			if err == nil || err.Error() != tc.want {
				t.Errorf("got\n%v\nwant\n%s", err, tc.want)
			}
		})
	}
	// A final "---" with nothing after it is not a second document.
	if _, _, err := Parse([]byte(header+"mode: ipvs\n---\n"), "x.yaml"); err != nil {
		t.Errorf("trailing ---: %v", err)
	}
}
