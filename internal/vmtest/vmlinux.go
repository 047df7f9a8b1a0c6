package vmtest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
)

// elfMagic starts every ELF file, and so the vmlinux inside a bzImage.
var elfMagic = []byte("\x7fELF")

// compressions are the payload formats a bzImage may use that we can
// unpack: gzip in Go, xz and zstd with their command-line tools.
var compressions = []struct {
	name  string
	magic []byte
	cmd   []string // nil: gzip in Go
}{
	{"xz", []byte("\xfd7zXZ\x00"), []string{"xz", "-dc", "--single-stream"}},
	{"gzip", []byte("\x1f\x8b\x08"), nil},
	{"zstd", []byte("\x28\xb5\x2f\xfd"), []string{"zstd", "-dc"}},
}

// extractVMLinux writes the uncompressed ELF kernel inside the bzImage
// vmlinuz to dst. QEMU's microvm machine boots an ELF (PVH) kernel, not a
// bzImage. Every compressed stream in the image is tried until one
// unpacks to an ELF file.
func extractVMLinux(ctx context.Context, vmlinuz, dst string) error {
	img, err := os.ReadFile(vmlinuz)
	if err != nil {
		return fmt.Errorf("vmtest: read kernel image: %w", err)
	}
	var tried []error
	for _, c := range compressions {
		for off := 0; ; {
			i := bytes.Index(img[off:], c.magic)
			if i < 0 {
				break
			}
			off += i
			out, err := decompress(ctx, c.cmd, img[off:])
			if err == nil && bytes.HasPrefix(out, elfMagic) {
				if err := os.WriteFile(dst, out, 0o644); err != nil {
					return fmt.Errorf("vmtest: write vmlinux: %w", err)
				}
				return nil
			}
			if err != nil {
				tried = append(tried, fmt.Errorf("%s stream at offset %d: %w", c.name, off, err))
			}
			off++
		}
	}
	if len(tried) == 0 {
		return fmt.Errorf("vmtest: %s: no xz, gzip or zstd stream found", vmlinuz)
	}
	return fmt.Errorf("vmtest: %s: no compressed stream unpacks to an ELF kernel: %w", vmlinuz, errors.Join(tried...))
}

// decompress unpacks data with cmd (nil: gzip).
func decompress(ctx context.Context, cmd []string, data []byte) ([]byte, error) {
	if cmd == nil {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		zr.Multistream(false)
		out, err := io.ReadAll(zr)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, err
		}
		return out, nil
	}
	if _, err := exec.LookPath(cmd[0]); err != nil {
		return nil, fmt.Errorf("%s is not installed", cmd[0])
	}
	c := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
	c.Stdin = bytes.NewReader(data)
	var out, stderr bytes.Buffer
	c.Stdout, c.Stderr = &out, &stderr
	if err := c.Run(); err != nil {
		return nil, fmt.Errorf("%v: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out.Bytes(), nil
}
