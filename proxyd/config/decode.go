package config

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decoder walks a YAML tree over a Config, field by field, so that every
// problem is reported with its line and field path. It collects all problems
// rather than stopping at the first.
type decoder struct {
	file     string
	origin   *origin
	ignored  map[string]string // field path -> hint
	warnings []string
	errs     []error
}

// fail records a problem with the value at path.
func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &ParseError{File: d.file, Line: n.Line, Field: path,
		Msg: path + ": " + fmt.Sprintf(format, args...)})
}

// value decodes n into v, the field at path. Null keeps v as it is (the
// default).
func (d *decoder) value(n *yaml.Node, path string, v reflect.Value) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if v.Type() == reflect.TypeFor[Duration]() {
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a duration such as \"30s\", got %s", describe(n))
			return
		}
		dur, err := parseDuration(n.Value)
		if err != nil {
			d.fail(n, path, "%v", err)
			return
		}
		v.Set(reflect.ValueOf(D(dur)))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.mapping(n, path, v)
	case reflect.String:
		if !isScalar(n, "!!str") {
			d.fail(n, path, "expected a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if !isScalar(n, "!!bool") || n.Decode(&b) != nil {
			d.fail(n, path, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int32:
		var i int64
		if !isScalar(n, "!!int") || n.Decode(&i) != nil {
			d.fail(n, path, "expected an integer, got %s", describe(n))
			return
		}
		if v.OverflowInt(i) {
			d.fail(n, path, "%s is out of range for a %d-bit integer", n.Value, v.Type().Bits())
			return
		}
		v.SetInt(i)
	case reflect.Slice:
		d.strings(n, path, v)
	default:
		panic(fmt.Sprintf("config: field %s has unsupported type %s", path, v.Type()))
	}
}

// strings decodes a list of strings.
func (d *decoder) strings(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "expected a list of strings, got %s", describe(n))
		return
	}
	list := make([]string, 0, len(n.Content))
	ok := true
	for i, e := range n.Content {
		e = resolve(e)
		elem := fmt.Sprintf("%s[%d]", path, i)
		if !isScalar(e, "!!str") {
			d.fail(e, elem, "expected a string, got %s", describe(e))
			ok = false
			continue
		}
		d.origin.setLine(elem, e.Line)
		list = append(list, e.Value)
	}
	if ok {
		v.Set(reflect.ValueOf(list))
	}
}

// mapping decodes a YAML mapping into the struct v at path ("" for the top).
func (d *decoder) mapping(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		if k.Kind != yaml.ScalarNode {
			d.errs = append(d.errs, &ParseError{File: d.file, Line: k.Line, Field: path,
				Msg: fmt.Sprintf("field names must be strings, got %s", describe(k))})
			continue
		}
		name, full := k.Value, join(path, k.Value)
		if first, dup := seen[name]; dup {
			d.errs = append(d.errs, &ParseError{File: d.file, Line: k.Line, Field: full,
				Msg: fmt.Sprintf("duplicate field %q (first at line %d)", full, first)})
			continue
		}
		seen[name] = k.Line
		f, ok := fieldByName(v, name, false)
		if !ok {
			d.unknown(k, path, name, v)
			continue
		}
		d.origin.setLine(full, k.Line)
		d.value(n.Content[i+1], full, f)
	}
}

// unknown handles a field the struct v at path does not have: a warning for a
// kube-proxy field lbkit ignores, an error otherwise.
func (d *decoder) unknown(k *yaml.Node, path, name string, v reflect.Value) {
	full := join(path, name)
	if hint, ok := d.ignored[full]; ok {
		w := fmt.Sprintf("%s:%d: field %q accepted but ignored by lbkit", d.file, k.Line, full)
		if hint != "" {
			w += " (" + hint + ")"
		}
		d.warnings = append(d.warnings, w)
		return
	}
	msg := fmt.Sprintf("unknown field %q", full)
	if _, ok := fieldByName(v, name, true); ok {
		msg += " (field names are case-sensitive)"
	}
	if name == "<<" {
		msg = "YAML merge keys (<<) are not supported"
	}
	d.errs = append(d.errs, &ParseError{File: d.file, Line: k.Line, Field: full, Msg: msg})
}

// fieldByName returns the field of struct v whose yaml name is name,
// looking into inline structs; foldCase ignores case.
func fieldByName(v reflect.Value, name string, foldCase bool) (reflect.Value, bool) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if opts == "inline" {
			if f, ok := fieldByName(v.Field(i), name, foldCase); ok {
				return f, true
			}
			continue
		}
		if tag == name || foldCase && strings.EqualFold(tag, name) {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// join appends name to a field path.
func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is a YAML null ("null", "~" or nothing).
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// isScalar reports whether n is a scalar with the given tag.
func isScalar(n *yaml.Node, tag string) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == tag
}

// describe says what a node is, for messages: `string "abc"`, `integer 7`,
// `a list`.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("string %q", n.Value)
		case "!!int":
			return "integer " + n.Value
		case "!!float":
			return "number " + n.Value
		case "!!bool":
			return "boolean " + n.Value
		case "!!null":
			return "null"
		}
		return fmt.Sprintf("%s %q", n.ShortTag(), n.Value)
	}
	return "an unexpected YAML node"
}
