package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestInstallableFromOutside checks what `go install
// github.com/quictun/quictun/cmd/quictun@latest` and `go get` need: our
// go.mod has no replace or exclude directive (go install refuses a module
// with one), and a module outside the tree that requires ours builds the
// command and a program that imports the core against the patched quic-go
// copy (quic.ReleaseDatagram exists only there). The outside module
// stands in for the published one with a replace of its own; it builds
// offline from the module cache. Its go.mod lists our requirements too, as
// `go mod tidy` would write it for a user: with an untidy go.mod the go
// command walks the whole module graph and wants go.mod files (an old
// x/sys of netlink's) that `go mod download` in our tree never fetched.
func TestInstallableFromOutside(t *testing.T) {
	gobin, err := e2eGoCommand()
	if err != nil {
		t.Skip(err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^\s*(replace|exclude)\b.*`).Find(gomod); m != nil {
		t.Fatalf("go.mod has %q: go install refuses a module with replace or exclude directives", m)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)`).FindSubmatch(gomod)
	if goVersion == nil {
		t.Fatal("go.mod has no go line")
	}
	gosum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	requires := regexp.MustCompile(`(?ms)^require (\(.*?^\)|[^(\n]*$)`).FindAll(gomod, -1)
	write("go.mod", "module example.com/outside\n\ngo "+string(goVersion[1])+"\n\n"+
		"require github.com/quictun/quictun v0.0.0\n\n"+string(bytes.Join(requires, []byte("\n\n")))+
		"\n\nreplace github.com/quictun/quictun => "+root+"\n")
	write("go.sum", string(gosum))
	write("main.go", `package main

import (
	"fmt"

	"github.com/quictun/quictun/quictun"
	quic "github.com/quictun/quictun/third_party/quic-go"
)

func main() {
	quic.ReleaseDatagram(nil) // only in the patched copy
	fmt.Println(quictun.ProtocolVersion)
}
`)
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	for _, args := range [][]string{
		{"build", "-o", filepath.Join(dir, "outside"), "."},
		{"build", "-o", filepath.Join(dir, "quictun"), "github.com/quictun/quictun/cmd/quictun"},
	} {
		cmd := exec.Command(gobin, args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s in a module outside the tree: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	out, err := exec.Command(filepath.Join(dir, "quictun"), "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "quictun") {
		t.Errorf("the command built from outside: --help = %v\n%s", err, out)
	}
}
