package file

import "os"

// fileSig identifies one version of a file cheaply; the zero value means
// the file could not be stat'ed.
type fileSig struct {
	exists   bool
	size     int64
	mtime    int64 // UnixNano
	dev, ino uint64
}

// statFile returns the signature of the file path names (following
// symlinks, so a ConfigMap's symlink swap changes it).
func statFile(path string) fileSig {
	fi, err := os.Stat(path)
	if err != nil {
		return fileSig{}
	}
	sig := fileSig{exists: true, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	sig.dev, sig.ino = inode(fi)
	return sig
}
