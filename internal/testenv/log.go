package testenv

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
)

// Logger returns a logger that writes text lines, debug level and above,
// through t.Log, so that they show with the test that logged them (go
// test -v, or when the test fails).
func Logger(t testing.TB) *slog.Logger { return LoggerAt(t, slog.LevelDebug) }

// LoggerAt is Logger with lines below level left out.
//
// Lines logged after the test and its cleanups have finished (by a
// goroutine that outlived it) are dropped: t.Log panics once a test and
// its parents are done.
func LoggerAt(t testing.TB, level slog.Level) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.finish) // runs after the cleanups registered later, which may still log
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// testWriter writes each line through t.Log until the test has finished.
type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

var _ io.Writer = (*testWriter)(nil)

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(trimNewline(p)))
	}
	return len(p), nil
}

func (w *testWriter) finish() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

func trimNewline(p []byte) []byte {
	if n := len(p); n > 0 && p[n-1] == '\n' {
		return p[:n-1]
	}
	return p
}

// LogEntry is one record a capturing logger received.
type LogEntry struct {
	Level   slog.Level
	Message string
	// Attrs holds the record's attributes and those added with With, by
	// key (a group's name prefixes its keys: "group.key"), with values
	// resolved: an int logs as int64, an error as the error.
	Attrs map[string]any
}

// LogCapture records what a logger from CaptureLogs logs; it is safe for
// concurrent use.
type LogCapture struct {
	mu      sync.Mutex
	entries []LogEntry
}

// CaptureLogs returns a logger that records entries at level and above,
// and the record of them, for tests that check what was logged.
func CaptureLogs(level slog.Level) (*slog.Logger, *LogCapture) {
	c := &LogCapture{}
	return slog.New(&captureHandler{c: c, level: level}), c
}

// All returns the entries recorded so far, oldest first.
func (c *LogCapture) All() []LogEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]LogEntry(nil), c.entries...)
}

// TakeAll returns the entries recorded so far and forgets them.
func (c *LogCapture) TakeAll() []LogEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries
	c.entries = nil
	return e
}

// AtLevel returns the entries recorded so far at exactly level.
func (c *LogCapture) AtLevel(level slog.Level) []LogEntry {
	var out []LogEntry
	for _, e := range c.All() {
		if e.Level == level {
			out = append(out, e)
		}
	}
	return out
}

// WithMessage returns the entries recorded so far whose message is msg.
func (c *LogCapture) WithMessage(msg string) []LogEntry {
	var out []LogEntry
	for _, e := range c.All() {
		if e.Message == msg {
			out = append(out, e)
		}
	}
	return out
}

// captureHandler is the slog.Handler behind CaptureLogs.
type captureHandler struct {
	c      *LogCapture
	level  slog.Level
	prefix string // the open groups, "a.b."
	attrs  map[string]any
}

func (h *captureHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	e := LogEntry{Level: r.Level, Message: r.Message, Attrs: make(map[string]any, len(h.attrs)+r.NumAttrs())}
	for k, v := range h.attrs {
		e.Attrs[k] = v
	}
	r.Attrs(func(a slog.Attr) bool {
		addAttr(e.Attrs, h.prefix, a)
		return true
	})
	h.c.mu.Lock()
	h.c.entries = append(h.c.entries, e)
	h.c.mu.Unlock()
	return nil
}

func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = make(map[string]any, len(h.attrs)+len(as))
	for k, v := range h.attrs {
		n.attrs[k] = v
	}
	for _, a := range as {
		addAttr(n.attrs, h.prefix, a)
	}
	return &n
}

func (h *captureHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.prefix = h.prefix + name + "."
	return &n
}

// addAttr stores a, flattening groups into prefixed keys.
func addAttr(m map[string]any, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			addAttr(m, p, g)
		}
		return
	}
	if a.Key == "" {
		return
	}
	m[prefix+a.Key] = v.Any()
}
