package vmtest

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// archive is an initramfs under construction: a set of directories, files
// and symlinks, written out as a "newc" cpio archive (the format the kernel
// unpacks into its root file system). Parent directories are created
// implicitly.
type archive struct {
	entries map[string]*entry
}

// entry is one archive member.
type entry struct {
	mode fs.FileMode
	// src is a host file to copy, data inline content; at most one is set.
	src  string
	data []byte
	// link is a symlink's target.
	link string
}

func newArchive() *archive { return &archive{entries: make(map[string]*entry)} }

// clean turns name into the archive's form: no leading slash, cleaned.
func clean(name string) string { return strings.TrimPrefix(path.Clean("/"+name), "/") }

// dir adds a directory (and its parents).
func (a *archive) dir(name string) {
	name = clean(name)
	for p := name; p != "" && p != "."; p = path.Dir(p) {
		if _, ok := a.entries[p]; !ok {
			a.entries[p] = &entry{mode: fs.ModeDir | 0o755}
		}
	}
}

// file adds a file with inline content.
func (a *archive) file(name string, perm fs.FileMode, data []byte) {
	name = clean(name)
	a.dir(path.Dir(name))
	a.entries[name] = &entry{mode: perm, data: data}
}

// copyFile adds the host file src as name; symlinks in src are followed.
func (a *archive) copyFile(name, src string, perm fs.FileMode) {
	name = clean(name)
	a.dir(path.Dir(name))
	a.entries[name] = &entry{mode: perm, src: src}
}

// symlink adds a symbolic link name -> target.
func (a *archive) symlink(name, target string) {
	name = clean(name)
	a.dir(path.Dir(name))
	a.entries[name] = &entry{mode: fs.ModeSymlink | 0o777, link: target}
}

// has reports whether name is in the archive.
func (a *archive) has(name string) bool {
	_, ok := a.entries[clean(name)]
	return ok
}

// writeTo writes the archive as newc cpio to w, parents before children.
func (a *archive) writeTo(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	names := make([]string, 0, len(a.entries))
	for n := range a.entries {
		if n != "." && n != "" {
			names = append(names, n)
		}
	}
	// Sorting by path puts every directory before its contents.
	slices.Sort(names)
	ino := uint32(1)
	for _, n := range names {
		e := a.entries[n]
		if err := writeEntry(bw, n, e, ino); err != nil {
			return fmt.Errorf("vmtest: initramfs member %s: %w", n, err)
		}
		ino++
	}
	if err := writeHeader(bw, "TRAILER!!!", 0, 0, 0, 1); err != nil {
		return err
	}
	if err := pad(bw, 0); err != nil {
		return err
	}
	return bw.Flush()
}

// writeEntry writes one member: header, name, content.
func writeEntry(w *bufio.Writer, name string, e *entry, ino uint32) error {
	var (
		mode uint32
		size int64
		body io.Reader
	)
	switch {
	case e.mode&fs.ModeDir != 0:
		mode = 0o040000 | uint32(e.mode.Perm())
	case e.mode&fs.ModeSymlink != 0:
		mode = 0o120000 | 0o777
		size = int64(len(e.link))
		body = strings.NewReader(e.link)
	case e.src != "":
		f, err := os.Open(e.src)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", e.src)
		}
		mode = 0o100000 | uint32(e.mode.Perm())
		size, body = st.Size(), f
	default:
		mode = 0o100000 | uint32(e.mode.Perm())
		size = int64(len(e.data))
		body = strings.NewReader(string(e.data))
	}
	if size > 0xffffffff {
		return fmt.Errorf("%d bytes is too large for a cpio member", size)
	}
	nlink := uint32(1)
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	if err := writeHeader(w, name, ino, mode, uint32(size), nlink); err != nil {
		return err
	}
	if body != nil {
		n, err := io.Copy(w, body)
		if err != nil {
			return err
		}
		if n != size {
			return fmt.Errorf("copied %d bytes, want %d (file changed?)", n, size)
		}
	}
	return pad(w, size)
}

// writeHeader writes a newc header and the padded name.
func writeHeader(w *bufio.Writer, name string, ino, mode, size, nlink uint32) error {
	// magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize, check.
	if _, err := fmt.Fprintf(w, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name)+1, 0); err != nil {
		return err
	}
	if _, err := w.WriteString(name + "\x00"); err != nil {
		return err
	}
	// The header is 110 bytes; header plus name is padded to 4.
	return pad(w, int64(110+len(name)+1))
}

// pad writes zeros up to the next multiple of 4 after n bytes.
func pad(w *bufio.Writer, n int64) error {
	if r := n % 4; r != 0 {
		_, err := w.Write(make([]byte, 4-r))
		return err
	}
	return nil
}
