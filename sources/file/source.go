package file

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"
)

// DefaultPollInterval is how often Run stats the file when
// Options.PollInterval is zero.
const DefaultPollInterval = 2 * time.Second

// defaultDebounce is how long Run waits after a file system event for more
// before it reloads; maxDebounce bounds the wait during a long burst.
const (
	defaultDebounce = 100 * time.Millisecond
	maxDebounce     = time.Second
)

// Options configures a Source. The zero value works.
type Options struct {
	// Logger receives a line per load and per problem; nil logs nothing.
	Logger *slog.Logger
	// PollInterval is the period of the stat fallback that catches changes
	// fsnotify misses; zero means DefaultPollInterval, negative disables it.
	PollInterval time.Duration
	// OnError is called for every rejected load: once with the ErrorList
	// (or read error) of a file that does not parse, and once per service
	// the Sink rejected, with a located *Error. The daemon counts them.
	OnError func(err error)
	// OnApplied is called after every load that parsed, with the number of
	// services the Sink changed for (zero when nothing changed), even when
	// the Sink rejected some services.
	OnApplied func(changed int)

	// disableNotify makes Run rely on polling alone (tests).
	disableNotify bool
	// debounce overrides defaultDebounce (tests).
	debounce time.Duration
}

// Source loads a services file into a Sink and keeps it there as the file
// changes. Its methods are safe for concurrent use.
type Source struct {
	path string
	opts Options
	log  *slog.Logger

	mu     sync.Mutex // serializes loads; guards the fields below
	app    *applier
	sig    fileSig  // the file's identity when last read
	sum    [32]byte // hash of the content last parsed
	parsed bool     // sum is set
	// applied is set once a parsed file was applied: from then on a bad
	// read or edit keeps the last good state.
	applied bool
	// waiting is set while the file has been missing since before it was
	// first applied, so that polling logs that only once.
	waiting bool
}

// New returns a Source for the file at path feeding sink. Nothing is read
// until Load or Run.
func New(path string, sink Sink, opts Options) *Source {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.debounce <= 0 {
		opts.debounce = defaultDebounce
	}
	return &Source{
		path: path,
		opts: opts,
		log:  opts.Logger.With("file", path),
		app:  newApplier(sink),
	}
}

// Load reads, parses and applies the file once, even if its content did not
// change since the last load (so it also reports again the services the
// Sink still refuses). It returns the read or parse error, if any, in which
// case nothing was applied; services the Sink refuses are reported through
// OnError and the log, not returned.
func (s *Source) Load() error { return s.reload(true) }

// reload loads the file; unless force, only when its content changed since
// the last parse.
func (s *Source) reload(force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sig = statFile(s.path) // before reading: a later write changes it again
	data, err := os.ReadFile(s.path)
	if err != nil {
		err = fmt.Errorf("services file: %w", err)
		s.logReadError(err)
		s.reject(err)
		return err
	}
	s.waiting = false
	sum := sha256.Sum256(data)
	if !force && s.parsed && sum == s.sum {
		return nil
	}
	s.sum, s.parsed = sum, true
	ls, err := parse(data, s.path)
	if err != nil {
		if s.applied {
			s.logProblems("services file rejected; keeping the last good state", err)
		} else {
			s.logProblems("services file rejected; nothing is applied until it is fixed", err)
		}
		s.reject(err)
		return err
	}
	changed, errs := s.app.apply(s.path, ls)
	s.applied = true
	for _, err := range errs {
		s.logProblems("service not programmed as written; the engine keeps it and programs it when it can", err)
		s.reject(err)
	}
	s.log.Info("services file applied", "services", len(ls), "changed", changed, "rejected", len(errs))
	if s.opts.OnApplied != nil {
		s.opts.OnApplied(changed)
	}
	return nil
}

// logReadError logs a failed read. Before the file was first applied there
// is no last good state: a missing file is waited for (and said once while
// it stays missing), as a ConfigMap or a provisioning step may create it
// later.
func (s *Source) logReadError(err error) {
	switch {
	case s.applied:
		s.log.Error("cannot read the services file; keeping the last good state", "error", err)
	case errors.Is(err, fs.ErrNotExist):
		if !s.waiting {
			s.log.Warn("the services file does not exist; waiting for it to appear (no services until then)", "error", err)
		}
		s.waiting = true
	default:
		s.log.Error("cannot read the services file; no services until it can be read", "error", err)
	}
}

func (s *Source) reject(err error) {
	if s.opts.OnError != nil {
		s.opts.OnError(err)
	}
}

// logProblems logs every located problem in err with its line and field.
func (s *Source) logProblems(msg string, err error) {
	var list ErrorList
	var one *Error
	switch {
	case errors.As(err, &list):
	case errors.As(err, &one):
		list = ErrorList{one}
	default:
		s.log.Error(msg, "error", err)
		return
	}
	for _, e := range list {
		s.log.Error(msg, "line", e.Line, "field", e.Field, "problem", e.Msg)
	}
}
