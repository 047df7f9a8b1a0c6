package config

import (
	"strconv"
	"strings"

	"github.com/lbkit/lbkit/internal/yamlline"
)

// origin records where the values of a Config came from, so that a rejected
// value can be traced to a file line or a flag.
type origin struct {
	file  string
	lines yamlline.Lines    // field path -> line in file
	flags map[string]string // field path -> flag, "--name"
	// ignored are the warnings about fields the file has that lbkit
	// ignores; Marshal writes them as comments, since it leaves them out.
	ignored []string
}

// setLine records that path was read from line.
func (o *origin) setLine(path string, line int) {
	if o.lines == nil {
		o.lines = yamlline.Lines{}
	}
	o.lines.Set(path, line)
}

// setFlag records that path was set by flag.
func (o *origin) setFlag(path, flag string) {
	if o.flags == nil {
		o.flags = map[string]string{}
	}
	o.flags[path] = flag
}

// fromFile reports whether path was written in the file.
func (o *origin) fromFile(path string) bool {
	if o == nil {
		return false
	}
	_, ok := o.lines[path]
	return ok
}

// fromFlag reports whether path was set by a flag.
func (o *origin) fromFlag(path string) bool {
	if o == nil {
		return false
	}
	_, ok := o.flags[path]
	return ok
}

// source returns where path's value came from: "flag --x", "file:line" (and
// the line) or "" when it is a default or was set by code. An element path
// ("a.b[2]") falls back to its list's origin.
func (o *origin) source(path string) (string, int) {
	if o == nil {
		return "", 0
	}
	for _, p := range []string{path, trimIndex(path)} {
		if f, ok := o.flags[p]; ok {
			return "flag " + f, 0
		}
	}
	for _, p := range []string{path, trimIndex(path)} {
		if l, ok := o.lines[p]; ok {
			return o.file + ":" + strconv.Itoa(l), l
		}
	}
	return "", 0
}

// trimIndex turns "a.b[2]" into "a.b".
func trimIndex(path string) string {
	if i := strings.LastIndexByte(path, '['); i > 0 && strings.HasSuffix(path, "]") {
		return path[:i]
	}
	return path
}
