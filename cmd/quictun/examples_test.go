package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// exampleLines returns the command lines of a Description: each indented
// line that runs quictun (after "source <(" or environment assignments),
// with "\" continuations joined, from "quictun" on.
func exampleLines(text string) []string {
	var out []string
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], " ") && !strings.HasPrefix(lines[i], "\t") {
			continue // prose
		}
		l := strings.TrimSpace(lines[i])
		for strings.HasSuffix(l, `\`) && i+1 < len(lines) {
			i++
			l = strings.TrimSpace(strings.TrimSuffix(l, `\`)) + " " + strings.TrimSpace(lines[i])
		}
		if strings.HasPrefix(l, "#") {
			continue
		}
		j := strings.Index(l, "quictun ")
		if j < 0 {
			continue
		}
		// What comes before must be a shell construct or VAR=value
		// words, not prose.
		before := strings.TrimSpace(l[:j])
		ok := true
		for _, w := range strings.Fields(before) {
			if w != "source" && w != "<(" && w != "$(" && !strings.Contains(w, "=") {
				ok = false
			}
		}
		if !ok {
			continue
		}
		out = append(out, l[j:])
	}
	return out
}

// shellWords splits a command line roughly as sh does: words, double or
// single quotes, up to a comment or a redirection, pipe or list operator.
func shellWords(l string) []string {
	var words []string
	var cur strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case !in && (c == '#' || c == '>' || c == '|' || c == '&' || c == ')' || c == ';'):
			return words
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// exampleCommand follows words (from "quictun" on) through the app's
// commands as urfave/cli parses them: flags of the current command (a
// value after those that take one), then a subcommand name. It returns
// the command path and the problems found: unknown flags or commands.
func exampleCommand(app *cli.App, words []string) (path string, problems []string) {
	flags := append([]cli.Flag{cli.HelpFlag, cli.VersionFlag}, app.Flags...)
	cmds := app.Commands
	var names []string
	for i := 1; i < len(words); i++ {
		w := words[i]
		if strings.HasPrefix(w, "-") && w != "-" {
			name := strings.TrimLeft(w, "-")
			name, _, hasValue := strings.Cut(name, "=")
			f := exampleFindFlag(flags, name)
			if f == nil {
				problems = append(problems, "unknown flag "+w+" of "+strings.Join(append([]string{"quictun"}, names...), " "))
				continue
			}
			if d, ok := f.(cli.DocGenerationFlag); ok && d.TakesValue() && !hasValue {
				i++
			}
			continue
		}
		var next *cli.Command
		for _, c := range cmds {
			if c.HasName(w) {
				next = c
			}
		}
		if next == nil {
			// A command with subcommands takes no arguments.
			if len(cmds) > 0 {
				problems = append(problems, "unknown command "+w+" after "+strings.Join(append([]string{"quictun"}, names...), " "))
			}
			break
		}
		names = append(names, next.Name)
		flags = append([]cli.Flag{cli.HelpFlag}, next.Flags...)
		cmds = next.Subcommands
	}
	return strings.Join(names, " "), problems
}

func exampleFindFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

// TestHelpExamples checks that every command's --help has examples, and
// that every example names commands and flags that exist, starting with
// the command it is an example of: an example left behind by a renamed
// flag fails here.
func TestHelpExamples(t *testing.T) {
	app := newApp()
	check := func(path, text string) {
		t.Helper()
		lines := exampleLines(text)
		if len(lines) == 0 {
			t.Errorf("quictun %s --help has no example (add one to examples in examples.go, or to its Description)", path)
		}
		for _, l := range lines {
			got, problems := exampleCommand(app, shellWords(l))
			for _, p := range problems {
				t.Errorf("example %q: %s", l, p)
			}
			if got != "" && path != "" && got != path && !strings.HasPrefix(got, path+" ") {
				t.Errorf("example %q in the help of quictun %s runs quictun %s", l, path, got)
			}
		}
	}
	check("", app.Description)
	shown := map[string]string{} // path → its first example line as written
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			path := strings.TrimSpace(prefix + " " + c.Name)
			check(path, c.Description)
			for _, l := range strings.Split(c.Description, "\n") {
				if len(exampleLines(l)) > 0 {
					shown[path] = strings.TrimSpace(l)
					break
				}
			}
			walk(path, c.Subcommands)
		}
	}
	walk("", app.Commands)

	// And --help shows them.
	for path, line := range shown {
		app := newApp()
		var out bytes.Buffer
		app.Writer = &out
		args := append(append([]string{"quictun"}, strings.Fields(path)...), "--help")
		if err := app.Run(args); err != nil {
			t.Fatalf("%s: %v", strings.Join(args, " "), err)
		}
		if !strings.Contains(out.String(), line) {
			t.Errorf("%s does not show the example %q:\n%s", strings.Join(args, " "), line, out.String())
		}
	}
}

// TestExampleCommand checks the checker: it must find unknown flags and
// commands, and follow flag values and subcommands.
func TestExampleCommand(t *testing.T) {
	app := newApp()
	for _, tc := range []struct {
		line     string
		path     string
		problems int
	}{
		{"quictun listen --cert a --key b --ca c --ip 10.77.0.1/24", "listen", 0},
		{"quictun --log-level debug connect --server=x:1 --low-latency=false", "connect", 0},
		{"quictun cert issue --dir pki --name laptop1 --ip 10.77.0.11/24", "cert issue", 0},
		{"quictun cert show pki/a.crt pki/b.crt", "cert show", 0},
		{"quictun listen --certificate a", "listen", 1},
		{"quictun connect --listen x", "connect", 1},
		{"quictun cert sign --dir pki", "cert", 1},
		{"quictun stats", "", 1},
	} {
		path, problems := exampleCommand(app, shellWords(tc.line))
		if path != tc.path || len(problems) != tc.problems {
			t.Errorf("%q: path %q, problems %q; want path %q and %d problems", tc.line, path, problems, tc.path, tc.problems)
		}
	}
	got := exampleLines("Examples:\n  QUICTUN_CERT=a quictun listen \\\n      --ip 10.77.0.1/24   # comment\n  source <(quictun completion bash)\nquictun joins a device.\n  and then quictun runs\n")
	want := []string{"quictun listen --ip 10.77.0.1/24   # comment", "quictun completion bash)"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("exampleLines: %q, want %q", got, want)
	}
}
