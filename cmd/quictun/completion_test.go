package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// completionScript runs `quictun completion shell` through the app.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	app := newApp()
	var out bytes.Buffer
	app.Writer = &out
	if err := app.Run([]string{"quictun", "completion", shell}); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// completionCases are command lines being completed (the last word is the
// one under the cursor) and what the completion must offer: every word in
// want, and none in not. Run in a directory holding pki/ca.crt and
// pki/ca.key.
var completionCases = []struct {
	name  string
	words []string
	want  []string
	not   []string
}{
	{"commands", []string{"quictun", ""}, []string{"listen", "connect", "cert", "version", "completion"}, []string{"man", "help"}},
	{"subcommands", []string{"quictun", "cert", ""}, []string{"ca", "issue", "show"}, []string{"listen"}},
	{"a prefix", []string{"quictun", "cert", "i"}, []string{"issue"}, []string{"ca", "show"}},
	{"global flags", []string{"quictun", "--log"}, []string{"--log-level", "--log-format"}, []string{"--cert"}},
	{"a global flag's value is skipped", []string{"quictun", "--log-level", "debug", "l"}, []string{"listen"}, nil},
	{"a flag's value is no command", []string{"quictun", "--cpu-profile", "cert", "listen", "--ce"}, []string{"--cert"}, nil},
	{"a flag's value is no command, --flag=value", []string{"quictun", "--cpu-profile=cert", "listen", "--ce"}, []string{"--cert"}, nil},
	{"command flags", []string{"quictun", "listen", "--ce"}, []string{"--cert"}, []string{"--server"}},
	{"after flags and values", []string{"quictun", "connect", "--low-latency", "--mtu", "1300", "--ser"}, []string{"--server", "--server-name"}, []string{"--listen"}},
	{"a file flag", []string{"quictun", "listen", "--cert", "pki/"}, []string{"pki/ca.crt", "pki/ca.key"}, []string{"listen"}},
	{"a file flag, --flag=value", []string{"quictun", "connect", "--ca=pki/ca.c"}, []string{"pki/ca.crt"}, []string{"pki/ca.key"}},
	{"a value that is no file", []string{"quictun", "listen", "--mode", ""}, nil, []string{"pki", "--cert", "listen"}},
	{"argument words", []string{"quictun", "completion", ""}, []string{"bash", "zsh"}, nil},
	{"flags of a subcommand", []string{"quictun", "cert", "issue", "--dir", "pki", "--"}, []string{"--name", "--server", "--host", "--ip", "--route", "--help"}, []string{"--cert"}},
}

func completionDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "pki"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca.crt", "ca.key"} {
		if err := os.WriteFile(filepath.Join(dir, "pki", f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func checkCompletion(t *testing.T, got []string, want, not []string) {
	t.Helper()
	has := map[string]bool{}
	for _, g := range got {
		has[g] = true
	}
	for _, w := range want {
		if !has[w] {
			t.Errorf("offers %q, want %q among them", got, w)
		}
	}
	for _, n := range not {
		if has[n] {
			t.Errorf("offers %q, which must not include %q", got, n)
		}
	}
}

// TestBashCompletion sources the generated script in bash and runs its
// completion function the way bash does (COMP_WORDS, COMP_CWORD; "=" is a
// word of its own, as bash splits --flag=value).
func TestBashCompletion(t *testing.T) {
	bash := needTool(t, "bash", "bash")
	script := filepath.Join(t.TempDir(), "quictun.bash")
	if err := os.WriteFile(script, []byte(completionScript(t, "bash")), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := completionDir(t)
	for _, tc := range completionCases {
		t.Run(tc.name, func(t *testing.T) {
			var words []string
			for _, w := range tc.words {
				if i := strings.Index(w, "="); i > 0 && strings.HasPrefix(w, "--") {
					words = append(words, w[:i], "=", w[i+1:])
					continue
				}
				words = append(words, w)
			}
			var q []string
			for _, w := range words {
				q = append(q, compQuote(w))
			}
			prog := `source "$1" || exit 1
COMP_WORDS=(` + strings.Join(q, " ") + `)
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_quictun || exit 1
printf '%s\n' "${COMPREPLY[@]}"`
			cmd := exec.Command(bash, "--norc", "--noprofile", "-c", prog, "bash", script)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("bash: %v\n%s", err, out)
			}
			checkCompletion(t, strings.Fields(string(out)), tc.want, tc.not)
		})
	}
}

// TestZshCompletion loads the generated script in zsh with the completion
// system's functions (_describe, _files, compadd, compset, compdef)
// replaced by ones that print what they are given, and runs it with
// words and CURRENT as zsh sets them.
func TestZshCompletion(t *testing.T) {
	zsh := needTool(t, "zsh", "zsh")
	script := filepath.Join(t.TempDir(), "_quictun")
	if err := os.WriteFile(script, []byte(completionScript(t, "zsh")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(zsh, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
	dir := completionDir(t)
	for _, tc := range completionCases {
		t.Run(tc.name, func(t *testing.T) {
			var q []string
			for _, w := range tc.words {
				q = append(q, compQuote(w))
			}
			prog := `compdef() { :; }
_describe() { local n; for n in "${(@P)${@[-1]}}"; do print -r -- "${n%%:*}"; done; }
compadd() { [[ $1 == -- ]] && shift; print -rl -- "$@"; }
_files() { print -rl -- ${PREFIX}*(N) ${PREFIX}*/*(N); }
_message() { :; }
compset() { PREFIX=${PREFIX#*=}; }
source "$1" || exit 1
words=(` + strings.Join(q, " ") + `)
CURRENT=${#words}
PREFIX=$words[CURRENT]
_quictun`
			cmd := exec.Command(zsh, "-f", "-c", prog, "zsh", script)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("zsh: %v\n%s", err, out)
			}
			// The stubs print every candidate; the prefix filter is
			// zsh's, so apply it here.
			cur := tc.words[len(tc.words)-1]
			if i := strings.Index(cur, "="); i > 0 && strings.HasPrefix(cur, "--") {
				cur = cur[i+1:]
			}
			var got []string
			for _, w := range strings.Fields(string(out)) {
				if strings.HasPrefix(w, cur) {
					got = append(got, w)
				}
			}
			checkCompletion(t, got, tc.want, tc.not)
		})
	}
}

// TestOpsCommandUsage checks that completion, version and man refuse
// wrong arguments as usage errors (exit status 2).
func TestOpsCommandUsage(t *testing.T) {
	for _, args := range [][]string{
		{"completion"}, {"completion", "fish"}, {"completion", "bash", "zsh"},
		{"version", "extra"}, {"man", "extra"},
	} {
		app := newApp()
		app.Writer = &bytes.Buffer{}
		err := app.Run(append([]string{"quictun"}, args...))
		if code := exitCode(err); err == nil || code != 2 {
			t.Errorf("quictun %s: %v (exit %d), want a usage error (exit 2)", strings.Join(args, " "), err, code)
		}
	}
}
