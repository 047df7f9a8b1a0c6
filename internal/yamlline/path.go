package yamlline

import (
	"fmt"
	"strings"
)

// Join appends a field name to a path: Join("a", "b") is "a.b", and
// Join("", "b") is "b".
func Join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// Index appends a list index to a path: Index("a", 2) is "a[2]".
func Index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// Parent strips the last field or index from a path: "a[1].b" -> "a[1]"
// -> "a" -> "".
func Parent(path string) string {
	if i := strings.LastIndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return ""
}

// Lines maps field paths to the line they were read from.
type Lines map[string]int

// Set records that path was read from line.
func (l Lines) Set(path string, line int) { l[path] = line }

// Find returns the line of path, or of its nearest enclosing field that
// has one; ok is false when none has.
func (l Lines) Find(path string) (line int, ok bool) {
	for p := path; p != ""; p = Parent(p) {
		if line, ok := l[p]; ok {
			return line, true
		}
	}
	return 0, false
}
