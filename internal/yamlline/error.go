package yamlline

import (
	"fmt"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Error is one problem in a file, located by file, line and field.
type Error struct {
	File string
	// Line is 1-based; zero when the problem has no line (an empty file).
	Line int
	// Field is the path of the offending field, such as
	// "services[1].frontends[0].port"; empty when there is none (a YAML
	// syntax error).
	Field string
	// Msg says what is wrong.
	Msg string
	// Err is the underlying error, if any: the YAML parser's, an
	// ErrExtraDocument, or one the caller attached.
	Err error
}

// Error formats the problem as "FILE:LINE: FIELD: MSG", leaving out the line
// and the field when there are none.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error, if any.
func (e *Error) Unwrap() error { return e.Err }

// ErrorList is every problem found in one file, in line order.
type ErrorList []*Error

// Error lists the problems one per line.
func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap returns the problems, so that errors.As finds the first *Error.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// Errors collects the problems of one file. The zero value (with File set)
// is ready to use.
type Errors struct {
	// File names the file in every Error.
	File string
	// Max bounds how many problems are kept; the rest are only counted.
	// Zero keeps all.
	Max int

	list    ErrorList
	dropped int
}

// Add records a problem at line with field, wrapping err (which may be nil).
func (c *Errors) Add(line int, field string, err error, format string, args ...any) {
	c.Append(&Error{File: c.File, Line: line, Field: field, Msg: fmt.Sprintf(format, args...), Err: err})
}

// At records a problem with the value or key n, at field.
func (c *Errors) At(n *yaml.Node, field, format string, args ...any) {
	c.Add(n.Line, field, nil, format, args...)
}

// Append records e as it is (its File is not changed).
func (c *Errors) Append(e *Error) {
	if c.Max > 0 && len(c.list) >= c.Max {
		c.dropped++
		return
	}
	c.list = append(c.list, e)
}

// Count returns how many problems were recorded, dropped ones included; a
// caller compares counts to tell whether a part of the file had problems.
func (c *Errors) Count() int { return len(c.list) + c.dropped }

// Err returns the problems as an ErrorList sorted by line (problems on one
// line keep the order they were found in), followed by a count of those
// beyond Max; nil when there are none.
func (c *Errors) Err() error {
	if c.Count() == 0 {
		return nil
	}
	list := slices.Clone(c.list)
	slices.SortStableFunc(list, func(a, b *Error) int { return a.Line - b.Line })
	if c.dropped > 0 {
		list = append(list, &Error{File: c.File, Msg: fmt.Sprintf("%d more problem(s) not shown", c.dropped)})
	}
	return list
}
