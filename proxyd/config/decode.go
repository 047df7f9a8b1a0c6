package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/lbkit/lbkit/internal/yamlline"
)

// decoder walks a YAML tree over a Config, field by field, so that every
// problem is reported with its line and field path. It collects all problems
// rather than stopping at the first.
type decoder struct {
	file     string
	origin   *origin
	ignored  map[string]string // field path -> hint
	warnings []string
	errs     []*ParseError
}

// fail records a problem with the value at path.
func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &ParseError{File: d.file, Line: n.Line, Field: path,
		Msg: path + ": " + fmt.Sprintf(format, args...)})
}

// value decodes n into v, the field at path. Null keeps v as it is (the
// default).
func (d *decoder) value(n *yaml.Node, path string, v reflect.Value) {
	if yamlline.IsNull(n) {
		return
	}
	if v.Type() == reflect.TypeFor[Duration]() {
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a duration such as \"30s\", got %s", yamlline.Describe(n))
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
		s, ok := yamlline.String(n)
		if !ok {
			d.fail(n, path, "expected a string, got %s", yamlline.Describe(n))
			return
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := yamlline.Bool(n)
		if !ok {
			d.fail(n, path, "expected true or false, got %s", yamlline.Describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int32:
		i, err := yamlline.Int(n)
		switch {
		case errors.Is(err, yamlline.ErrNotInteger):
			d.fail(n, path, "expected an integer, got %s", yamlline.Describe(n))
			return
		case err != nil || v.OverflowInt(i):
			d.fail(n, path, "%s is out of range for a %d-bit integer", n.Value, v.Type().Bits())
			return
		}
		v.SetInt(i)
	case reflect.Float32:
		f, err := strconv.ParseFloat(n.Value, 32)
		if n.Kind != yaml.ScalarNode || err != nil || n.Tag == "!!str" || n.Tag == "!!bool" {
			d.fail(n, path, "expected a number, got %s", yamlline.Describe(n))
			return
		}
		v.SetFloat(f)
	case reflect.Slice:
		d.strings(n, path, v)
	default:
		panic(fmt.Sprintf("config: field %s has unsupported type %s", path, v.Type()))
	}
}

// strings decodes a list of strings.
func (d *decoder) strings(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "expected a list of strings, got %s", yamlline.Describe(n))
		return
	}
	list := make([]string, 0, len(n.Content))
	ok := true
	for i, e := range n.Content {
		e = yamlline.Resolve(e)
		elem := yamlline.Index(path, i)
		s, isStr := yamlline.String(e)
		if !isStr {
			d.fail(e, elem, "expected a string, got %s", yamlline.Describe(e))
			ok = false
			continue
		}
		d.origin.setLine(elem, e.Line)
		list = append(list, s)
	}
	if ok {
		v.Set(reflect.ValueOf(list))
	}
}

// mapping decodes a YAML mapping into the struct v at path ("" for the top).
func (d *decoder) mapping(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", yamlline.Describe(n))
		return
	}
	fields, bad := yamlline.Fields(n, path)
	for _, e := range bad {
		d.errs = append(d.errs, &ParseError{File: d.file, Line: e.Key.Line, Field: e.Field(), Msg: e.Error()})
	}
	for _, f := range fields {
		fv, ok := fieldByName(v, f.Name)
		if !ok {
			d.unknown(f, v)
			continue
		}
		d.origin.setLine(f.Path, f.Key.Line)
		d.value(f.Value, f.Path, fv)
	}
}

// unknown handles a field the struct v does not have: a warning for a
// kube-proxy field lbkit ignores, an error otherwise.
func (d *decoder) unknown(f yamlline.Field, v reflect.Value) {
	if hint, ok := d.ignored[f.Path]; ok {
		w := fmt.Sprintf("%s:%d: field %q accepted but ignored by lbkit", d.file, f.Key.Line, f.Path)
		if hint != "" {
			w += " (" + hint + ")"
		}
		d.warnings = append(d.warnings, w)
		return
	}
	msg := fmt.Sprintf("unknown field %q", f.Path)
	if _, ok := yamlline.Suggest(fieldNames(v.Type()), f.Name); ok {
		msg += " (field names are case-sensitive)"
	}
	d.errs = append(d.errs, &ParseError{File: d.file, Line: f.Key.Line, Field: f.Path, Msg: msg})
}

// fieldByName returns the field of struct v whose yaml name is name,
// looking into inline structs.
func fieldByName(v reflect.Value, name string) (reflect.Value, bool) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if opts == "inline" {
			if f, ok := fieldByName(v.Field(i), name); ok {
				return f, true
			}
			continue
		}
		if tag == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// fieldNames returns the yaml names of the fields of struct type t,
// inline structs' included.
func fieldNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if opts == "inline" {
			names = append(names, fieldNames(sf.Type)...)
			continue
		}
		names = append(names, tag)
	}
	return names
}
