package main

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// installFiles lists the regular files under root with their modes,
// relative to root.
func installFiles(t *testing.T, root string) map[string]fs.FileMode {
	t.Helper()
	files := map[string]fs.FileMode{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		files[rel] = info.Mode()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func installSortedKeys(m map[string]fs.FileMode) []string {
	var k []string
	for f := range m {
		k = append(k, f)
	}
	sort.Strings(k)
	return k
}

// TestMakeInstall runs make install and make uninstall as a packager
// (DESTDIR) and as an administrator (PREFIX) would, and checks the files:
// exactly the binary, the two systemd units naming the installed binary,
// the man page and the bash and zsh completions, with their modes; that
// the installed units pass systemd-analyze verify (which also checks the
// binary and the man page they name); and that uninstall removes exactly
// those files.
func TestMakeInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds quictun")
	}
	mk, err := exec.LookPath("make")
	if err != nil {
		t.Skip("no make (Debian package make)")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	// The binary is built outside the tree, so the test leaves bin/ alone.
	bin := filepath.Join(t.TempDir(), "quictun")
	makeRun := func(args ...string) {
		t.Helper()
		cmd := exec.Command(mk, append([]string{"--no-print-directory", "-C", root, "BIN=" + bin}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// Files are checked under root/rel; the units must name
	// execPrefix/bin/quictun.
	want := func(p string) map[string]fs.FileMode {
		return map[string]fs.FileMode{
			p + "/bin/quictun": 0o755,
			p + "/lib/systemd/system/quictun-server.service":  0o644,
			p + "/lib/systemd/system/quictun-client@.service": 0o644,
			p + "/share/man/man8/quictun.8":                   0o644,
			p + "/share/bash-completion/completions/quictun":  0o644,
			p + "/share/zsh/site-functions/_quictun":          0o644,
		}
	}
	check := func(root, rel, execPrefix string) {
		t.Helper()
		got, w := installFiles(t, root), want(rel)
		if strings.Join(installSortedKeys(got), "\n") != strings.Join(installSortedKeys(w), "\n") {
			t.Fatalf("installed\n%s\nwant\n%s", strings.Join(installSortedKeys(got), "\n"), strings.Join(installSortedKeys(w), "\n"))
		}
		for f, mode := range w {
			if got[f].Perm() != mode {
				t.Errorf("%s has mode %v, want %v", f, got[f].Perm(), mode)
			}
		}
		for _, u := range []string{"quictun-server.service", "quictun-client@.service"} {
			b, err := os.ReadFile(filepath.Join(root, rel, "lib/systemd/system", u))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), "\nExecStart="+execPrefix+"/bin/quictun ") {
				t.Errorf("%s does not run %s/bin/quictun:\n%s", u, execPrefix, b)
			}
		}
		read := func(f string) string {
			b, err := os.ReadFile(filepath.Join(root, rel, f))
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		if s := read("share/man/man8/quictun.8"); !strings.Contains(s, "\n.TH QUICTUN 8 ") {
			t.Errorf("quictun.8 is no man page:\n%.300s", s)
		}
		if s := read("share/bash-completion/completions/quictun"); !strings.Contains(s, "\ncomplete -o default -F _quictun quictun\n") {
			t.Errorf("the bash completion does not register itself:\n%.300s", s)
		}
		if s := read("share/zsh/site-functions/_quictun"); !strings.HasPrefix(s, "#compdef quictun\n") {
			t.Errorf("the zsh completion has no #compdef line:\n%.300s", s)
		}
	}
	// uninstall must leave what it did not install.
	uninstall := func(root, rel string, args ...string) {
		t.Helper()
		other := filepath.Join(root, rel, "bin", "other")
		if err := os.WriteFile(other, []byte("not ours\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		makeRun(append([]string{"uninstall"}, args...)...)
		got := installFiles(t, root)
		if len(got) != 1 || got[rel+"/bin/other"] == 0 {
			t.Errorf("after make uninstall: %q, want only bin/other, which make install did not put there", installSortedKeys(got))
		}
	}

	t.Run("DESTDIR", func(t *testing.T) {
		dest := t.TempDir()
		makeRun("install", "DESTDIR="+dest)
		check(dest, "usr/local", "/usr/local")
		uninstall(dest, "usr/local", "DESTDIR="+dest)
	})

	t.Run("PREFIX", func(t *testing.T) {
		base := t.TempDir()
		prefix := filepath.Join(base, "usr")
		makeRun("install", "PREFIX="+prefix)
		check(base, "usr", prefix)
		sa := needTool(t, "systemd-analyze", "systemd")
		units := filepath.Join(prefix, "lib/systemd/system")
		cmd := exec.Command(sa, "verify", filepath.Join(units, "quictun-server.service"), filepath.Join(units, "quictun-client@.service"))
		// verify runs man for Documentation=man:quictun(8).
		cmd.Env = append(os.Environ(), "MANPATH="+filepath.Join(prefix, "share/man"))
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
		uninstall(base, "usr", "PREFIX="+prefix)
	})
}
