// Package yamlline decodes YAML (and JSON, read as YAML) configuration files
// while keeping the line of every field, so that each problem can be reported
// as "FILE:LINE: FIELD: MESSAGE".
//
// It does not map documents onto Go types by itself: a caller walks the node
// tree that Read returns with Fields and the scalar accessors (String, Text,
// Int, Bool), which report what is wrong as typed values (KeyError,
// ErrNotInteger, ErrOutOfRange) so that every caller can word its messages,
// and collects located problems with Errors. proxyd/config and sources/file
// decode their files this way.
package yamlline
