package crypto

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile writes data to path with mode perm (exactly, whatever the
// umask). Without force it refuses to touch an existing file (the error
// wraps fs.ErrExist); with force it replaces the file atomically (a temporary file in
// the same directory, renamed over it).
func WriteFile(path string, data []byte, perm os.FileMode, force bool) error {
	if !force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists (writing without overwriting): %w", path, fs.ErrExist)
		}
		if err != nil {
			return fmt.Errorf("create %s: %w", path, err)
		}
		if err := writeAndClose(f, data, perm); err != nil {
			os.Remove(path)
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	if err := writeAndClose(f, data, perm); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}

// writeAndClose sets f's mode to perm, writes data, syncs and closes f.
func writeAndClose(f *os.File, data []byte, perm os.FileMode) error {
	err := f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ErrKeyFileOpen is wrapped by the errors of CheckKeyFileMode.
var ErrKeyFileOpen = errors.New("private key file is open to others")

// CheckKeyFileMode returns an error wrapping ErrKeyFileOpen when the
// private key file may be read or written by others than its owner (its
// group or other permission bits are set, as OpenSSH refuses), naming the
// file, its mode and the chmod that fixes it. It returns nil for a file it
// cannot stat: loading the file reports that better. Callers decide
// whether to refuse such a key or to warn.
func CheckKeyFileMode(file string) error {
	fi, err := os.Stat(file)
	if err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	perm := fi.Mode().Perm()
	if perm&0o077 == 0 {
		return nil
	}
	what := "execute"
	switch {
	case perm&0o044 != 0:
		what = "read"
	case perm&0o022 != 0:
		what = "change"
	}
	return fmt.Errorf("%w: %s has mode %04o, so others than its owner may %s it: run `chmod 600 %s`", ErrKeyFileOpen, file, perm, what, file)
}
