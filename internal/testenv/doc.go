// Package testenv is part of lbkit's test kit: it lets a test that needs an
// external program (nft, iptables-legacy, ip, qemu-system-x86_64, ...) say
// so, and decides what happens when the program is missing.
//
// By default such a test is skipped with a message naming the Debian
// package that provides the program and `make deps`, which installs every
// package the tests use. With LBKIT_REQUIRE_TOOLS=1 in the environment (CI
// sets it for `make test` as root) the test fails instead, so that a missing
// package can never hide a suite behind a skip.
//
// Only missing programs are governed here. A test that skips because it
// does not run as root (as in `make test-user`) keeps skipping: check for
// root first, then call RequireTool.
//
// It also gives tests their loggers: Logger writes log/slog lines through
// t.Log, and CaptureLogs records entries for tests that check what was
// logged.
package testenv
