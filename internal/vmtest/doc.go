// Package vmtest boots a throwaway Linux guest under QEMU and runs Go test
// binaries inside it, for tests that need kernel features the build machine
// lacks (IPVS above all: the stock kernel of the build machine has no IP_VS
// and cannot load modules).
//
// The guest kernel is the distribution's own: the kernel image package that
// Debian's linux-image-amd64 depends on is fetched with `apt-get download`,
// unpacked with `dpkg-deb -x` (never installed), given a modules.dep with
// `depmod -b`, and its compressed vmlinuz is unpacked into the ELF vmlinux
// that QEMU's microvm machine boots. All of that is cached under
// os.UserCacheDir()/lbkit/vmtest, so it happens once per kernel version.
//
// Every run builds a fresh initramfs: a static busybox, the kernel modules
// the tests need (in dependency order), a few host programs with their
// shared libraries (iproute2's ip, for network namespaces), and the test
// binaries, built with `go test -c -tags vmtest` and CGO_ENABLED=0. Its
// /init loads the modules, runs each test binary with -test.v, prints a
// result line carrying a per-run nonce (so test output cannot forge it) and
// powers the guest off. The guest has no network device (`-nic none`):
// tests build their own network namespaces inside it.
//
// Run is the entry point for a host test: it skips the test with the reason
// when QEMU is missing or the kernel cannot be fetched, streams the guest
// console into the test log, fails the test when any guest test fails, and
// bounds the whole run with a timeout. Boot is the same without a
// testing.TB, for the cmd/vmtest driver behind `make vmtest`.
//
// Setting LBKIT_VMTEST=0 in the environment skips every guest run.
package vmtest
