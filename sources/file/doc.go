// Package file feeds lbkit's engine from a services file: a YAML (or JSON)
// document that lists services with their frontends, scheduler, session
// affinity, traffic policies and endpoints.
//
// Parse decodes and validates a file and names the file, line and field of
// every problem it finds. A Source loads a file into a Sink (an *lb.Engine),
// then watches it (fsnotify on the file's directory plus a periodic stat) and
// applies each good edit as a diff: only the services and endpoint sets that
// changed reach the Sink. A bad edit changes nothing; the last good state
// stays in place until a later edit fixes the file.
//
// The file format is documented, with a full example, in README.md next to
// this file.
package file
