package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/lbkit/lbkit/internal/yamlline"
)

// ParseError is a problem in a config file that keeps it from loading.
type ParseError struct {
	File  string
	Line  int    // 0 when the problem has no line
	Field string // field path, e.g. "iptables.syncPeriod"; "" if none
	// Msg is the message after the location, e.g.
	// `unknown field "iptables.masqueradeBits"`.
	Msg string
}

// Error formats the problem as "FILE:LINE: MSG".
func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// Parse reads a KubeProxyConfiguration (YAML or JSON) over Default(): a field
// the file leaves out, or sets to null, keeps its default. As in kube-proxy,
// the zero values a generated file carries (syncPeriod: 0s, bindAddress: "",
// healthzBindAddress: "", ipvs.scheduler: "" ...) also mean the default, and
// a bare IP in metricsBindAddress or healthzBindAddress gets the default
// port. An empty file is Default().
//
// filename is only used in messages. Unknown fields, wrong types, malformed
// values and a wrong apiVersion or kind are errors naming the file, line and
// field (all of them are reported, joined); fields kube-proxy has but lbkit
// ignores come back as warnings. Parse checks syntax and types; Validate
// checks the values.
func Parse(data []byte, filename string) (*Config, []string, error) {
	c := Default()
	c.origin = &origin{file: filename}
	root, err := readDocument(data, filename)
	if err != nil {
		return nil, nil, err
	}
	if root == nil {
		return c, nil, nil
	}
	if err := checkTypeMeta(root, filename); err != nil {
		return nil, nil, err
	}
	// As in kube-proxy, the server addresses default from bindAddress's
	// family unless the file sets them.
	c.HealthzBindAddress, c.MetricsBindAddress = "", ""
	d := &decoder{file: filename, origin: c.origin, ignored: ignoredFields()}
	d.mapping(root, "", reflect.ValueOf(c).Elem())
	if len(d.errs) > 0 {
		// Problems in line order, as sources/file reports them.
		slices.SortStableFunc(d.errs, func(a, b *ParseError) int { return a.Line - b.Line })
		errs := make([]error, len(d.errs))
		for i, e := range d.errs {
			errs[i] = e
		}
		return nil, d.warnings, errors.Join(errs...)
	}
	c.applyKubeProxyDefaults()
	c.origin.ignored = d.warnings
	return c, d.warnings, nil
}

// readDocument returns the top-level node of the one document in data, nil
// for an empty or null document.
func readDocument(data []byte, file string) (*yaml.Node, error) {
	root, err := yamlline.Read(data, file)
	if err != nil {
		pe := &ParseError{File: file, Msg: err.Error()}
		var e *yamlline.Error
		if errors.As(err, &e) {
			pe.Line, pe.Msg = e.Line, e.Msg
		}
		if errors.Is(err, yamlline.ErrExtraDocument) {
			pe.Msg = "a second YAML document starts here; the file must hold one KubeProxyConfiguration"
		}
		return nil, pe
	}
	if root != nil && root.Kind != yaml.MappingNode {
		return nil, &ParseError{File: file, Line: root.Line,
			Msg: "expected a KubeProxyConfiguration mapping, got " + yamlline.Describe(root)}
	}
	return root, nil
}

// checkTypeMeta rejects a document that is not a KubeProxyConfiguration
// v1alpha1 before its fields are looked at, so that a wrong file gets one
// clear error rather than a list of unknown fields.
func checkTypeMeta(root *yaml.Node, file string) error {
	var errs []error
	for _, want := range []struct{ key, value string }{{"apiVersion", APIVersion}, {"kind", Kind}} {
		n := yamlline.Lookup(root, want.key)
		got := ""
		if n != nil {
			got = yamlline.Describe(n)
			if n.Kind == yaml.ScalarNode {
				got = strconv.Quote(n.Value)
			}
		}
		switch {
		case n == nil || yamlline.IsNull(n):
			errs = append(errs, &ParseError{File: file, Line: root.Line, Field: want.key,
				Msg: fmt.Sprintf("missing %s: want %q", want.key, want.value)})
		case n.Kind != yaml.ScalarNode || n.Value != want.value:
			errs = append(errs, &ParseError{File: file, Line: n.Line, Field: want.key,
				Msg: fmt.Sprintf("%s: got %s, want %q", want.key, got, want.value)})
		}
	}
	return errors.Join(errs...)
}
