package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestCPUProfile runs a command with --cpu-profile and checks a profile
// was written (pprof's format: gzip-compressed protobuf), and that an
// unwritable path is a usage error naming the flag.
func TestCPUProfile(t *testing.T) {
	dir := t.TempDir()
	prof := filepath.Join(dir, "cpu.pprof")
	app := newApp()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	if err := app.Run([]string{"quictun", "--cpu-profile", prof, "cert", "ca", "--dir", filepath.Join(dir, "pki")}); err != nil {
		t.Fatalf("quictun --cpu-profile … cert ca: %v\n%s", err, out.String())
	}
	b, err := os.ReadFile(prof)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 20 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("%s is %d bytes and not gzip: not a pprof profile", prof, len(b))
	}

	err = newApp().Run([]string{"quictun", "--cpu-profile", filepath.Join(dir, "no", "such", "dir", "cpu.pprof"), "cert", "ca", "--dir", filepath.Join(dir, "pki2")})
	var u usageError
	if !errors.As(err, &u) || !bytes.Contains([]byte(err.Error()), []byte("--cpu-profile")) {
		t.Errorf("unwritable profile path: %v, want a usage error naming --cpu-profile", err)
	}
}
