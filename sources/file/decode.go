package file

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/lbkit/lbkit/internal/yamlline"
)

// maxErrors bounds how many problems one parse reports; the rest are counted.
const maxErrors = 20

// decoder walks a yaml.Node tree and collects located errors.
type decoder struct {
	file string
	errs yamlline.Errors
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, errs: yamlline.Errors{File: file, Max: maxErrors}}
}

// add records a problem at line.
func (d *decoder) add(line int, field string, err error, format string, args ...any) {
	d.errs.Add(line, field, err, format, args...)
}

// errorf records a problem with node n, at field.
func (d *decoder) errorf(n *yaml.Node, field, format string, args ...any) {
	d.errs.At(n, field, format, args...)
}

// result returns the collected problems, or nil when there are none.
func (d *decoder) result() error { return d.errs.Err() }

// document returns the top node of the file's single YAML document.
func (d *decoder) document(data []byte) (*yaml.Node, bool) {
	root, err := yamlline.Read(data, d.file)
	if err != nil {
		e := &yamlline.Error{File: d.file, Msg: err.Error(), Err: err}
		errors.As(err, &e)
		if errors.Is(err, yamlline.ErrExtraDocument) {
			e.Msg = "a second YAML document starts here; a services file holds one"
		}
		d.errs.Append(e)
		return nil, false
	}
	if root == nil {
		d.add(0, "", nil, "the file is empty (write \"services: []\" to remove every service)")
		return nil, false
	}
	return root, true
}

// describe names what a node holds, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		}
		return n.Value
	}
	return yamlline.Describe(n)
}

// mapping calls fn for every field of the mapping n in file order. It
// reports a node that is not a mapping, keys that are not strings,
// duplicate keys and keys not in known (with a hint when only the case
// differs); false when there was any of these.
func (d *decoder) mapping(n *yaml.Node, path string, known []string, fn func(yamlline.Field)) bool {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping (fields: %s), got %s", strings.Join(known, ", "), describe(n))
		return false
	}
	fields, bad := yamlline.Fields(n, path)
	for _, e := range bad {
		switch e.Problem {
		case yamlline.NotAString:
			d.errorf(e.Key, e.Field(), "want a field name, got %s", describe(e.Key))
		case yamlline.Duplicate:
			d.errorf(e.Key, e.Field(), "duplicate field (first at line %d)", e.First)
		default:
			d.errorf(e.Key, e.Field(), "%v", e)
		}
	}
	ok := len(bad) == 0
	for _, f := range fields {
		if !slices.Contains(known, f.Name) {
			d.errorf(f.Key, f.Path, "unknown field%s (known: %s)", hint(known, f.Name), strings.Join(known, ", "))
			ok = false
			continue
		}
		fn(f)
	}
	return ok
}

// sequence returns the items of the list n; null is an empty list.
func (d *decoder) sequence(n *yaml.Node, path string) ([]*yaml.Node, bool) {
	switch {
	case n.Kind == yaml.SequenceNode:
		items := make([]*yaml.Node, len(n.Content))
		for i, c := range n.Content {
			items[i] = yamlline.Resolve(c)
		}
		return items, true
	case yamlline.IsNull(n):
		return nil, true
	}
	d.errorf(n, path, "want a list, got %s", describe(n))
	return nil, false
}

// str returns a scalar as written. Numbers are accepted (a zone may be
// "1"); null, booleans, lists and mappings are not.
func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	s, ok := yamlline.Text(n)
	if !ok {
		d.errorf(n, path, "want a string, got %s", describe(n))
	}
	return s, ok
}

// strings decodes a list of non-empty strings.
func (d *decoder) strings(n *yaml.Node, path string) []string {
	items, ok := d.sequence(n, path)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		if v, ok := d.str(it, yamlline.Index(path, i)); ok && v != "" {
			out = append(out, v)
		} else if ok {
			d.errorf(it, yamlline.Index(path, i), "want a non-empty string")
		}
	}
	return out
}

// integer returns an integer scalar within [lo, hi].
func (d *decoder) integer(n *yaml.Node, path string, lo, hi int64) (int64, bool) {
	v, err := yamlline.Int(n)
	switch {
	case errors.Is(err, yamlline.ErrNotInteger):
		d.errorf(n, path, "want an integer, got %s", describe(n))
		return 0, false
	case err != nil || v < lo || v > hi:
		d.errorf(n, path, "%s is out of range %d-%d", n.Value, lo, hi)
		return 0, false
	}
	return v, true
}

// boolean returns a true or false scalar.
func (d *decoder) boolean(n *yaml.Node, path string) (bool, bool) {
	v, ok := yamlline.Bool(n)
	if !ok {
		d.errorf(n, path, "want true or false, got %s", describe(n))
	}
	return v, ok
}

// duration returns a positive Go duration such as "3h" or "90s".
func (d *decoder) duration(n *yaml.Node, path string) (time.Duration, bool) {
	s, ok := yamlline.String(n)
	if !ok {
		d.errorf(n, path, "want a duration such as 3h or 10800s, got %s", describe(n))
		return 0, false
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		d.errorf(n, path, "%q is not a positive duration such as 3h or 10800s", s)
		return 0, false
	}
	return v, true
}

// choice returns which of names a string scalar equals, ignoring case.
func (d *decoder) choice(n *yaml.Node, path, what string, names []string) (int, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return 0, false
	}
	for i, name := range names {
		if strings.EqualFold(s, name) {
			return i, true
		}
	}
	d.errorf(n, path, "unknown %s %q (want %s)", what, s, orList(names))
	return 0, false
}

// hint suggests the known name that differs from s only in case.
func hint(known []string, s string) string {
	if k, ok := yamlline.Suggest(known, s); ok {
		return fmt.Sprintf(" (did you mean %s?)", k)
	}
	return ""
}

// orList formats names as "a, b or c".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
