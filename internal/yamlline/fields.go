package yamlline

import (
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Field is one key of a mapping with its value.
type Field struct {
	Name  string     // the key as written
	Path  string     // Join(the mapping's path, Name)
	Key   *yaml.Node // the key; its Line is the field's line
	Value *yaml.Node // the value, aliases resolved
}

// KeyProblem says why a mapping key names no field.
type KeyProblem int

// The problems Fields reports.
const (
	// NotAString is a key that is not a string (a number, a list...).
	NotAString KeyProblem = iota + 1
	// Duplicate is a key given earlier in the same mapping.
	Duplicate
	// MergeKey is a YAML merge key ("<<: *base"), which would hide where
	// a value was written.
	MergeKey
)

// KeyError is a key of a mapping that Fields does not pass on.
type KeyError struct {
	Problem KeyProblem
	Path    string     // the mapping's path, "" for the top level
	Key     *yaml.Node // the key, aliases resolved; Key.Line locates it
	// First is the line of the key's first use, for a Duplicate.
	First int
}

// Field returns the path of the key: the mapping's path for a key that is
// not a string, the key's own path otherwise.
func (e *KeyError) Field() string {
	if e.Problem == NotAString {
		return e.Path
	}
	return Join(e.Path, e.Key.Value)
}

// Error says what is wrong with the key, without its location.
func (e *KeyError) Error() string {
	switch e.Problem {
	case NotAString:
		return "field names must be strings, got " + Describe(e.Key)
	case Duplicate:
		return fmt.Sprintf("duplicate field %q (first at line %d)", e.Field(), e.First)
	case MergeKey:
		return "YAML merge keys (<<) are not supported"
	}
	return fmt.Sprintf("key problem %d", e.Problem)
}

// Fields returns the fields of the mapping m at path in file order, and
// the keys it leaves out: keys that are not strings, merge keys and keys
// given twice (the first one is kept). m must be a mapping.
func Fields(m *yaml.Node, path string) ([]Field, []*KeyError) {
	var fields []Field
	var bad []*KeyError
	seen := make(map[string]int, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := Resolve(m.Content[i])
		switch {
		case IsScalar(k, "!!merge"):
			bad = append(bad, &KeyError{Problem: MergeKey, Path: path, Key: k})
			continue
		case !IsScalar(k, "!!str"):
			bad = append(bad, &KeyError{Problem: NotAString, Path: path, Key: k})
			continue
		}
		if first, dup := seen[k.Value]; dup {
			bad = append(bad, &KeyError{Problem: Duplicate, Path: path, Key: k, First: first})
			continue
		}
		seen[k.Value] = k.Line
		fields = append(fields, Field{Name: k.Value, Path: Join(path, k.Value), Key: k, Value: Resolve(m.Content[i+1])})
	}
	return fields, bad
}

// Suggest returns the name in known that differs from name only in case,
// for "unknown field" messages (field names are case-sensitive).
func Suggest(known []string, name string) (string, bool) {
	for _, k := range known {
		if strings.EqualFold(k, name) {
			return k, true
		}
	}
	return "", false
}
