package file

import (
	"fmt"
	"strings"
)

// Error is one problem in a services file, located by file, line and field.
type Error struct {
	File string
	// Line is 1-based; zero when the problem has no line (an empty file).
	Line int
	// Field is the path of the offending field, such as
	// "services[1].frontends[0].port"; empty for a YAML syntax error.
	Field string
	// Msg says what is wrong.
	Msg string
	// Err is the underlying error, such as an *lb.ValidationError or the
	// error a Sink returned; nil when the problem was found while decoding.
	Err error
}

// Error formats the problem as "FILE:LINE: FIELD: MSG".
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

// ErrorList is every problem Parse found in one file, in file order.
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
