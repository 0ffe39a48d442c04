//go:build unix

package crypto

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWriteFile(t *testing.T) {
	old := syscall.Umask(0o077) // the mode must be exact whatever the umask
	defer syscall.Umask(old)
	dir := t.TempDir()
	tests := []struct {
		name    string
		perm    os.FileMode
		force   bool
		data    string
		wantErr string
	}{
		{name: "new key", perm: 0o600, data: "one"},
		{name: "exists without force", perm: 0o600, data: "two", wantErr: "already exists"},
		{name: "exists with force", perm: 0o644, force: true, data: "three"},
	}
	path := filepath.Join(dir, "f.key")
	content := ""
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := WriteFile(path, []byte(tt.data), tt.perm, tt.force)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Errorf("error %v, want one naming %s and containing %q", err, path, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			} else {
				content = tt.data
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != tt.perm {
					t.Errorf("mode %v, want %v", fi.Mode().Perm(), tt.perm)
				}
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != content {
				t.Errorf("file holds %q (%v), want %q", got, err, content)
			}
		})
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("directory holds %d entries (%v), want only f.key: no temporary files left", len(entries), err)
	}
	if err := WriteFile(filepath.Join(dir, "missing", "f"), nil, 0o600, false); err == nil {
		t.Error("write into a missing directory: no error")
	}
}
