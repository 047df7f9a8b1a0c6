package yamlline

import (
	"errors"
	"regexp"

	yaml "go.yaml.in/yaml/v3"
)

// Errors of Int. The caller words the message (with Describe for the
// first).
var (
	// ErrNotInteger means the node is not an integer scalar.
	ErrNotInteger = errors.New("not an integer")
	// ErrOutOfRange means the node is a whole number too large for an
	// int64.
	ErrOutOfRange = errors.New("integer out of range")
)

// String returns the value of a string scalar; ok is false for anything
// else, numbers included.
func String(n *yaml.Node) (s string, ok bool) {
	if IsScalar(n, "!!str") {
		return n.Value, true
	}
	return "", false
}

// Text returns a string or number scalar as written (a zone may be "1");
// ok is false for null, booleans, lists and mappings.
func Text(n *yaml.Node) (s string, ok bool) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!str", "!!int", "!!float":
			return n.Value, true
		}
	}
	return "", false
}

// Bool returns the value of a true or false scalar.
func Bool(n *yaml.Node) (v bool, ok bool) {
	if IsScalar(n, "!!bool") && n.Decode(&v) == nil {
		return v, true
	}
	return false, false
}

var wholeNumber = regexp.MustCompile(`^[-+]?[0-9]+$`)

// Int returns the value of an integer scalar. It returns ErrNotInteger for
// anything else, and ErrOutOfRange for a whole number that does not fit in
// an int64 (YAML reads those as floats). Bounds are the caller's to check.
func Int(n *yaml.Node) (int64, error) {
	if IsScalar(n, "!!float") && wholeNumber.MatchString(n.Value) {
		return 0, ErrOutOfRange
	}
	if !IsScalar(n, "!!int") {
		return 0, ErrNotInteger
	}
	var v int64
	if err := n.Decode(&v); err != nil {
		return 0, ErrOutOfRange
	}
	return v, nil
}
