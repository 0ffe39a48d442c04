package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	quic "github.com/quictun/quictun/third_party/quic-go"
)

func TestReadBuildVersion(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: rev},
			{Key: "vcs.time", Value: "2026-05-25T09:12:33Z"},
			{Key: "vcs.modified", Value: modified},
		}
	}
	commitTime := time.Date(2026, 5, 25, 9, 12, 33, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		bi       *debug.BuildInfo
		ld       [3]string // ldCommit, ldTime, ldModified
		short    string
		commit   string
		time     time.Time
		modified bool
	}{
		{name: "go install @v1.2.0", bi: &debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}},
			short: "v1.2.0"},
		{name: "go install @v1.3.0-rc.1", bi: &debug.BuildInfo{Main: debug.Module{Version: "v1.3.0-rc.1"}},
			short: "v1.3.0-rc.1"},
		{name: "go build at a clean tag", bi: &debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}, Settings: vcs("false")},
			short: "v1.2.0", commit: rev, time: commitTime},
		{name: "go build at a tag, modified", bi: &debug.BuildInfo{Main: debug.Module{Version: "v1.2.0+dirty"}, Settings: vcs("true")},
			short: "devel 0123456789ab+modified", commit: rev, time: commitTime, modified: true},
		{name: "go install @commit", bi: &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20260525091233-0123456789ab"}},
			short: "devel 0123456789ab", commit: "0123456789ab", time: commitTime},
		{name: "go install @commit after a tag", bi: &debug.BuildInfo{Main: debug.Module{Version: "v1.2.1-0.20260525091233-0123456789ab"}},
			short: "devel 0123456789ab", commit: "0123456789ab", time: commitTime},
		{name: "go build in a checkout", bi: &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20260525091233-0123456789ab+dirty"}, Settings: vcs("true")},
			short: "devel 0123456789ab+modified", commit: rev, time: commitTime, modified: true},
		{name: "go build, older go", bi: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("false")},
			short: "devel 0123456789ab", commit: rev, time: commitTime},
		{name: "go run", bi: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}},
			short: "devel"},
		{name: "no build info", bi: nil, short: "devel"},
		{name: "make build in a worktree", bi: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}},
			ld:    [3]string{rev, "2026-05-25T09:12:33Z", "true"},
			short: "devel 0123456789ab+modified", commit: rev, time: commitTime, modified: true},
		{name: "build info wins over -ldflags", bi: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("false")},
			ld:    [3]string{"fedcba9876543210fedcba9876543210fedcba98", "2020-01-01T00:00:00Z", "true"},
			short: "devel 0123456789ab", commit: rev, time: commitTime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ldCommit, ldTime, ldModified = tc.ld[0], tc.ld[1], tc.ld[2]
			defer func() { ldCommit, ldTime, ldModified = "", "", "" }()
			v := readBuildVersion(tc.bi)
			if v.Short() != tc.short || v.Commit != tc.commit || !v.Time.Equal(tc.time) || v.Modified != tc.modified {
				t.Errorf("got %q commit %q time %v modified %v; want %q commit %q time %v modified %v",
					v.Short(), v.Commit, v.Time, v.Modified, tc.short, tc.commit, tc.time, tc.modified)
			}
			var b bytes.Buffer
			v.write(&b)
			out := b.String()
			if !strings.HasPrefix(out, "quictun "+tc.short+"\n") {
				t.Errorf("report does not start with the version:\n%s", out)
			}
			if tc.commit == "" && !strings.Contains(out, "commit:  unknown (built without VCS information") {
				t.Errorf("report does not say the commit is unknown:\n%s", out)
			}
			if tc.commit != "" && !strings.Contains(out, "commit:  "+tc.commit+" (2026-05-25T09:12:33Z)") {
				t.Errorf("report does not give the commit and its time:\n%s", out)
			}
			if strings.Contains(out, "uncommitted changes") != tc.modified {
				t.Errorf("report says uncommitted changes: %v, want %v:\n%s", !tc.modified, tc.modified, out)
			}
		})
	}
}

// TestQUICGoVersionCurrent checks that the generated
// third_party/quic-go/quictun_version.go describes the copy's inputs as
// they are: the version set in quic-go.sh and the SHA-256 of quic-go.patch.
// third_party/quic-go.sh --check checks the whole copy; this catches the
// most likely slip (editing the patch, not running the script) in go test,
// offline.
func TestQUICGoVersionCurrent(t *testing.T) {
	patch, err := os.ReadFile("../../third_party/quic-go.patch")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(patch)
	if got := hex.EncodeToString(sum[:]); got != quic.PatchSHA256 {
		t.Errorf("quic.PatchSHA256 = %s, but quic-go.patch has SHA-256 %s: run third_party/quic-go.sh", quic.PatchSHA256, got)
	}
	script, err := os.ReadFile("../../third_party/quic-go.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^version=(\S+)$`).FindSubmatch(script)
	if m == nil {
		t.Fatal("quic-go.sh sets no version=")
	}
	if string(m[1]) != quic.UpstreamVersion {
		t.Errorf("quic.UpstreamVersion = %s, but quic-go.sh makes the copy from %s: run third_party/quic-go.sh", quic.UpstreamVersion, m[1])
	}
}

// TestVersionOfBuilds builds quictun the ways a user does and runs
// `quictun version` and `quictun --version`: with VCS stamping in a git
// checkout (a copy of this module in a fresh repository, since the go
// command stamps nothing in a git worktree), after a change to that
// checkout, with -buildvcs=false, and with go run, which stamps nothing.
func TestVersionOfBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds quictun four times")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(t.TempDir(), "quictun")
	versionCopyModule(t, root, repo)
	run := func(dir string, env []string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	gitEnv := []string{"GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.com", "GIT_COMMITTER_NAME=test",
		"GIT_COMMITTER_EMAIL=test@example.com", "GIT_AUTHOR_DATE=2026-05-25T09:12:33Z", "GIT_COMMITTER_DATE=2026-05-25T09:12:33Z",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1"}
	run(repo, gitEnv, "git", "init", "-q")
	run(repo, gitEnv, "git", "add", "-A")
	run(repo, gitEnv, "git", "commit", "-q", "-m", "test")
	commit := strings.TrimSpace(run(repo, gitEnv, "git", "rev-parse", "HEAD"))
	// GOFLAGS may say -buildvcs=false (it does on some build machines);
	// each build says what it wants.
	goEnv := append([]string{"GOFLAGS=", "GOWORK=off", "GOPROXY=off"}, gitEnv...)
	bin := filepath.Join(t.TempDir(), "quictun")
	build := func(args ...string) {
		t.Helper()
		run(repo, goEnv, gobin, append(append([]string{"build"}, args...), "-o", bin, "./cmd/quictun")...)
	}
	quicLine := "  quic-go: " + quic.UpstreamVersion + " + third_party/quic-go.patch (sha256 " + quic.PatchSHA256 + ")\n"
	check := func(name, out, first, commitLine string) {
		t.Helper()
		lines := strings.SplitAfter(out, "\n")
		if len(lines) < 4 || lines[0] != first || lines[1] != commitLine ||
			!strings.HasPrefix(lines[2], "  go:      go") || lines[3] != quicLine {
			t.Errorf("%s printed\n%s\nwant\n%s%s  go:      go…\n%s", name, out, first, commitLine, quicLine)
		}
	}

	build("-buildvcs=true")
	for _, arg := range []string{"version", "--version"} {
		check("a VCS-stamped build: quictun "+arg, run(repo, nil, bin, arg),
			"quictun devel "+commit[:12]+"\n", "  commit:  "+commit+" (2026-05-25T09:12:33Z)\n")
	}

	if err := os.WriteFile(filepath.Join(repo, "README.md"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	build("-buildvcs=true")
	check("a VCS-stamped build of a modified checkout", run(repo, nil, bin, "version"),
		"quictun devel "+commit[:12]+"+modified\n", "  commit:  "+commit+" (2026-05-25T09:12:33Z), with uncommitted changes\n")

	unknown := "  commit:  unknown (built without VCS information: go run, -buildvcs=false, or not from a git checkout)\n"
	build("-buildvcs=false")
	check("a -buildvcs=false build", run(repo, nil, bin, "version"), "quictun devel\n", unknown)

	check("go run", run(repo, goEnv, gobin, "run", "./cmd/quictun", "version"), "quictun devel\n", unknown)
}

// versionCopyModule copies the module's files at src (without .git and bin) to
// dst.
func versionCopyModule(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() && (rel == ".git" || rel == "bin") {
			return filepath.SkipDir
		}
		if rel == ".git" { // a worktree's .git file
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}
