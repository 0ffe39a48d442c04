package main

import (
	"bytes"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestManPage renders `quictun man` with groff, warnings on, and checks
// that the page has every visible command with its flags, the examples
// with their hyphens and backslashes as typed, and no groff warning.
func TestManPage(t *testing.T) {
	app := newApp()
	var page bytes.Buffer
	app.Writer = &page
	if err := app.Run([]string{"quictun", "man"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), "\n.TH QUICTUN 8 ") {
		t.Fatalf("no .TH line:\n%s", page.String())
	}
	groff := needTool(t, "groff", "groff-base")
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-rLL=300n", "-P-cbou")
	cmd.Stdin = &page
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("groff: %v\n%s", err, stderr.String())
	}
	// Lines are not filled past 300 columns; join what groff still
	// hyphenated or broke, then compare words.
	text := strings.Join(strings.Fields(string(out)), " ")

	want := []string{
		"quictun - a VPN over QUIC datagrams",
		"GLOBAL OPTIONS", "--log-level value", "[env: QUICTUN_LOG_LEVEL]", "--version, -v",
		"EXIT STATUS", "NOTIFY_SOCKET", "quictun-client@.service",
		// An example line, a backslash continuation, a table of the
		// cert issue help and a placeholder, as typed.
		"quictun listen --cert pki/server.crt --key pki/server.key --ca pki/ca.crt \\ --ip 10.77.0.1/24",
		"--ip 10.77.0.11/24 a tunnel address of the client",
		"--ip ADDR/LEN", "<dir>/ca.crt",
	}
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			path := strings.TrimSpace(prefix + " " + c.Name)
			if c.Hidden {
				if strings.Contains(text, "quictun "+path+" ") {
					t.Errorf("hidden command %s is on the page", path)
				}
				continue
			}
			want = append(want, "quictun "+path, c.Usage)
			for _, f := range c.VisibleFlags() {
				want = append(want, "--"+f.Names()[0])
			}
			walk(path, c.Subcommands)
		}
	}
	walk("", app.Commands)
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("the rendered page lacks %q", w)
		}
	}
	if m := regexp.MustCompile(`\\[a-z(\[]`).FindString(text); m != "" {
		t.Errorf("a roff escape shows through: %q", m)
	}
}
