package privdrop

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestLookup(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no users and groups of the Unix kind")
	}
	root, err := user.LookupId("0")
	if err != nil {
		t.Skipf("no user 0 to look up: %v", err)
	}
	tests := []struct {
		name     string
		lookup   func() (int, error)
		want     int
		unknown  bool
		otherErr bool
	}{
		{"user by name", func() (int, error) { u, _, err := LookupUser(root.Username); return u, err }, 0, false, false},
		{"user by number", func() (int, error) { u, _, err := LookupUser("0"); return u, err }, 0, false, false},
		{"primary group of a user", func() (int, error) { _, g, err := LookupUser(root.Username); return g, err }, 0, false, false},
		{"unknown user", func() (int, error) { u, _, err := LookupUser("quictun-no-such-user"); return u, err }, 0, true, false},
		{"unknown user number", func() (int, error) { u, _, err := LookupUser("2147483000"); return u, err }, 0, true, false},
		{"group by number", func() (int, error) { return LookupGroup("0") }, 0, false, false},
		{"unknown group", func() (int, error) { return LookupGroup("quictun-no-such-group") }, 0, true, false},
		{"unknown group number", func() (int, error) { return LookupGroup("2147483000") }, 0, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.lookup()
			if tt.unknown {
				if !errors.Is(err, ErrUnknown) {
					t.Fatalf("got %d, %v; want an error wrapping ErrUnknown", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	status := `Name:	quictun
Uid:	65534	65534	65534	65534
Gid:	65534	65534	65534	65533
FDSize:	64
Groups:	65534 4
CapInh:	0000000000001000
CapPrm:	0000000000001000
CapEff:	0000000000001000
CapBnd:	0000000000001000
CapAmb:	0000000000001000
NoNewPrivs:	0
`
	tc, err := ParseStatus(status)
	if err != nil {
		t.Fatal(err)
	}
	want := ThreadCreds{UID: 65534, GID: 65534, SameIDs: false, Groups: []int{65534, 4},
		Effective: 1 << 12, Permitted: 1 << 12, Inheritable: 1 << 12, Ambient: 1 << 12, Bounding: 1 << 12}
	if tc.UID != want.UID || tc.GID != want.GID || tc.SameIDs || !slices.Equal(tc.Groups, want.Groups) ||
		tc.Effective != want.Effective || tc.Permitted != want.Permitted || tc.Inheritable != want.Inheritable ||
		tc.Ambient != want.Ambient || tc.Bounding != want.Bounding {
		t.Errorf("got %+v, want %+v", tc, want)
	}
	if _, err := ParseStatus("Name:\tx\nUid:\t0\t0\t0\t0\n"); err == nil {
		t.Error("a status without the Gid and Cap lines parsed")
	}
}

// TestDrop builds the dropper (testdata/dropper) with and without cgo,
// which take different paths to reach every thread, runs it as root and
// checks that afterwards every thread is nobody with CAP_NET_ADMIN and
// nothing else, that each of eight threads locked before the drop can use
// CAP_NET_ADMIN, that another capability (CAP_CHOWN) is gone, and that a
// child process inherits the same.
func TestDrop(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Drop is Linux-only")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: it changes the user of a child process")
	}
	if testing.Short() {
		t.Skip("builds two programs")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	uid, gid, err := LookupUser("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	const netAdmin = uint64(1) << CapNetAdmin
	for _, cgo := range []string{"1", "0"} {
		t.Run("CGO_ENABLED="+cgo, func(t *testing.T) {
			if cgo == "1" {
				if _, err := exec.LookPath("gcc"); err != nil {
					t.Skip("no C compiler for the cgo build")
				}
			}
			dir := t.TempDir()
			bin := filepath.Join(dir, "dropper")
			build := exec.Command(goBin, "build", "-o", bin, "./testdata/dropper")
			build.Env = append(os.Environ(), "CGO_ENABLED="+cgo)
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("build dropper: %v\n%s", err, out)
			}
			if cgo == "1" {
				// The build must link cgo, or this case tests the other path.
				out, err := exec.Command(goBin, "version", "-m", bin).Output()
				if err != nil || !slices.Contains(strings.Split(string(out), "\n"), "\tbuild\tCGO_ENABLED=1") {
					t.Fatalf("dropper not built with cgo: %v\n%s", err, out)
				}
			}
			// A file of nobody's, in a directory nobody can reach.
			work, err := os.MkdirTemp("", "privdrop-test-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(work) })
			if err := os.Chmod(work, 0o755); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(work, "nobodys")
			if err := os.WriteFile(file, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(file, uid, gid); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(bin, "-chown", file).Output()
			if err != nil {
				t.Fatalf("dropper: %v\n%s", err, out)
			}
			var r struct {
				DropErr  string
				Threads  []ThreadCreds
				Locked   int
				ForceOK  int
				ForceErr []string
				ChownErr string
				Child    ThreadCreds
				ChildErr string
			}
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("dropper output: %v\n%s", err, out)
			}
			if r.DropErr != "" {
				t.Fatalf("Drop: %s", r.DropErr)
			}
			if len(r.Threads) < r.Locked+1 {
				t.Errorf("dropper has %d threads, want at least %d", len(r.Threads), r.Locked+1)
			}
			check := func(what string, tc ThreadCreds) {
				t.Helper()
				if tc.UID != uid || tc.GID != gid || !tc.SameIDs || !slices.Equal(tc.Groups, []int{gid}) {
					t.Errorf("%s: uid %d gid %d (all four the same: %v) groups %v, want uid %d gid %d groups [%d]",
						what, tc.UID, tc.GID, tc.SameIDs, tc.Groups, uid, gid, gid)
				}
				if tc.Effective != netAdmin || tc.Permitted != netAdmin || tc.Ambient != netAdmin || tc.Bounding != netAdmin {
					t.Errorf("%s: effective %#x permitted %#x ambient %#x bounding %#x, want CAP_NET_ADMIN (%#x) alone in each",
						what, tc.Effective, tc.Permitted, tc.Ambient, tc.Bounding, netAdmin)
				}
			}
			for _, tc := range r.Threads {
				check("thread "+strconv.Itoa(tc.TID), tc)
			}
			if r.ForceOK != r.Locked {
				t.Errorf("%d of %d locked threads could use CAP_NET_ADMIN after the drop: %v", r.ForceOK, r.Locked, r.ForceErr)
			}
			if r.ChownErr != "EPERM" {
				t.Errorf("chown to root after the drop: got %q, want EPERM", r.ChownErr)
			}
			if r.ChildErr != "" {
				t.Errorf("child: %s", r.ChildErr)
			} else {
				check("child process", r.Child)
			}

			// Started as nobody already (systemd's User=), naming itself:
			// nothing to change, and nothing it may not do (setgroups needs
			// CAP_SETGID even to keep the list).
			// (From a copy nobody can reach: the test's temporary directory
			// is root's alone.)
			selfBin := filepath.Join(work, "dropper")
			data, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(selfBin, data, 0o755); err != nil {
				t.Fatal(err)
			}
			self := exec.Command(selfBin)
			self.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{uint32(gid)}}}
			out, err = self.Output()
			if err != nil {
				t.Fatalf("dropper as nobody: %v\n%s", err, out)
			}
			r.DropErr = "no report"
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("dropper output: %v\n%s", err, out)
			}
			if r.DropErr != "" {
				t.Errorf("Drop to the user and group the process already has: %s", r.DropErr)
			}
		})
	}
}
