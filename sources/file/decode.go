package file

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// maxErrors bounds how many problems one parse reports; the rest are counted.
const maxErrors = 20

// decoder walks a yaml.Node tree and collects located errors.
type decoder struct {
	file    string
	errs    ErrorList
	dropped int
}

// add records a problem at line.
func (d *decoder) add(line int, field string, err error, format string, args ...any) {
	if len(d.errs) >= maxErrors {
		d.dropped++
		return
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...), Err: err})
}

// errorf records a problem with node n, at field.
func (d *decoder) errorf(n *yaml.Node, field, format string, args ...any) {
	d.add(n.Line, field, nil, format, args...)
}

// result returns the collected problems, or nil when there are none.
func (d *decoder) result() error {
	if len(d.errs) == 0 {
		return nil
	}
	errs := slices.Clone(d.errs)
	slices.SortStableFunc(errs, func(a, b *Error) int { return a.Line - b.Line })
	if d.dropped > 0 {
		errs = append(errs, &Error{File: d.file, Msg: fmt.Sprintf("%d more problem(s) not shown", d.dropped)})
	}
	return errs
}

// resolve follows aliases (*anchor) to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// describe names what a node holds, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		}
		return n.Value
	}
	return "an unexpected node"
}

// mapping calls fn for every key of the mapping n in file order. It reports
// a node that is not a mapping, keys that are not strings, duplicate keys
// and keys not in known (with a hint when only the case differs).
func (d *decoder) mapping(n *yaml.Node, path string, known []string, fn func(key string, keyNode, val *yaml.Node)) bool {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping (fields: %s), got %s", strings.Join(known, ", "), describe(n))
		return false
	}
	seen := make(map[string]int, len(n.Content)/2)
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || (k.ShortTag() != "!!str" && k.ShortTag() != "!!merge") {
			d.errorf(k, path, "want a field name, got %s", describe(k))
			ok = false
			continue
		}
		field := join(path, k.Value)
		if line, dup := seen[k.Value]; dup {
			d.errorf(k, field, "duplicate field (first at line %d)", line)
			ok = false
			continue
		}
		seen[k.Value] = k.Line
		if !slices.Contains(known, k.Value) {
			d.errorf(k, field, "unknown field%s (known: %s)", hint(known, k.Value), strings.Join(known, ", "))
			ok = false
			continue
		}
		fn(k.Value, k, v)
	}
	return ok
}

// sequence returns the items of the list n; null is an empty list.
func (d *decoder) sequence(n *yaml.Node, path string) ([]*yaml.Node, bool) {
	switch {
	case n.Kind == yaml.SequenceNode:
		items := make([]*yaml.Node, len(n.Content))
		for i, c := range n.Content {
			items[i] = resolve(c)
		}
		return items, true
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null":
		return nil, true
	}
	d.errorf(n, path, "want a list, got %s", describe(n))
	return nil, false
}

// str returns a scalar as written. Numbers are accepted (a zone may be
// "1"); null, booleans, lists and mappings are not.
func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!str", "!!int", "!!float":
			return n.Value, true
		}
	}
	d.errorf(n, path, "want a string, got %s", describe(n))
	return "", false
}

// integer returns an integer scalar within [lo, hi].
func (d *decoder) integer(n *yaml.Node, path string, lo, hi int64) (int64, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!float" && wholeNumber.MatchString(n.Value) {
			// YAML reads an integer too big for int64 as a float.
			d.errorf(n, path, "%s is out of range %d-%d", n.Value, lo, hi)
		} else {
			d.errorf(n, path, "want an integer, got %s", describe(n))
		}
		return 0, false
	}
	var v int64
	if err := n.Decode(&v); err != nil {
		d.errorf(n, path, "%s is out of range %d-%d", n.Value, lo, hi)
		return 0, false
	}
	if v < lo || v > hi {
		d.errorf(n, path, "%s is out of range %d-%d", n.Value, lo, hi)
		return 0, false
	}
	return v, true
}

// boolean returns a true or false scalar.
func (d *decoder) boolean(n *yaml.Node, path string) (bool, bool) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
		var v bool
		if err := n.Decode(&v); err == nil {
			return v, true
		}
	}
	d.errorf(n, path, "want true or false, got %s", describe(n))
	return false, false
}

// duration returns a positive Go duration such as "3h" or "90s".
func (d *decoder) duration(n *yaml.Node, path string) (time.Duration, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		d.errorf(n, path, "want a duration such as 3h or 10800s, got %s", describe(n))
		return 0, false
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil || v <= 0 {
		d.errorf(n, path, "%q is not a positive duration such as 3h or 10800s", n.Value)
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

var wholeNumber = regexp.MustCompile(`^[-+]?[0-9]+$`)

var syntaxLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a YAML parser error into a located problem.
func (d *decoder) syntaxError(err error) {
	msg := err.Error()
	if m := syntaxLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		d.add(line, "", err, "invalid YAML: %s", m[2])
		return
	}
	d.add(0, "", err, "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// join appends a field name to a path.
func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// index appends a list index to a path.
func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// parent strips the last field or index from a path: "a[1].b" -> "a[1]" -> "a".
func parent(path string) string {
	if i := strings.LastIndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return ""
}

// hint suggests the known name that differs from s only in case.
func hint(known []string, s string) string {
	for _, k := range known {
		if strings.EqualFold(k, s) {
			return fmt.Sprintf(" (did you mean %s?)", k)
		}
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
