package file

import (
	"context"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Run watches the file until ctx is done and applies every change, then
// returns ctx's error. It watches the file's directory with fsnotify, since
// editors and Kubernetes ConfigMap mounts replace a file by rename or
// symlink swap rather than write it in place, and stats the file every
// PollInterval in case an event is missed (or fsnotify is unavailable).
// Bursts of events are coalesced. Call Load first; Run also loads the file
// if it changed, or was never loaded, when it starts.
func (s *Source) Run(ctx context.Context) error {
	var events <-chan fsnotify.Event
	var watchErrs <-chan error
	if !s.opts.disableNotify {
		w, err := fsnotify.NewWatcher()
		if err == nil {
			err = w.Add(filepath.Dir(s.path))
			if err != nil {
				_ = w.Close()
			}
		}
		if err != nil {
			s.log.Warn("cannot watch the services file's directory; relying on polling", "error", err)
		} else {
			defer func() { _ = w.Close() }()
			events, watchErrs = w.Events, w.Errors
		}
	}
	var tick <-chan time.Time
	if s.opts.PollInterval > 0 {
		t := time.NewTicker(s.opts.PollInterval)
		defer t.Stop()
		tick = t.C
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var fire <-chan time.Time
	var first time.Time // first event of the pending burst

	s.poll() // a change between Load and the watch
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if !s.relevant(ev) {
				continue
			}
			if fire == nil {
				first = time.Now()
			} else if time.Since(first) >= maxDebounce {
				continue // let the pending reload happen
			}
			timer.Reset(s.opts.debounce)
			fire = timer.C
		case err, ok := <-watchErrs:
			if !ok {
				watchErrs = nil
				continue
			}
			s.log.Warn("file watch error; polling continues", "error", err)
		case <-fire:
			fire = nil
			_ = s.reload(false) // errors are reported by reload
		case <-tick:
			s.poll()
		}
	}
}

// relevant reports whether an event in the file's directory may concern
// the file: its own name, or a Kubernetes atomic-writer entry ("..data").
func (s *Source) relevant(ev fsnotify.Event) bool {
	name := filepath.Base(ev.Name)
	return name == filepath.Base(s.path) || strings.HasPrefix(name, "..")
}

// poll reloads the file if its identity (inode, size, mtime) changed since
// it was last read, or if it was never parsed.
func (s *Source) poll() {
	s.mu.Lock()
	unchanged := s.parsed && statFile(s.path) == s.sig
	s.mu.Unlock()
	if !unchanged {
		_ = s.reload(false)
	}
}
