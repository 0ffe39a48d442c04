package crypto

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// recipeDoc is the document whose shell recipes TestCertificatesRecipes runs.
const recipeDoc = "../docs/CERTIFICATES.md"

// recipe returns the shell code of the ```sh blocks that follow the line
// "<!-- test: name -->" in recipeDoc.
func recipe(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(recipeDoc)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var code strings.Builder
	marked, in := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "<!-- test: "+name+" -->":
			marked = true
		case marked && !in && line == "```sh":
			in = true
		case in && line == "```":
			in, marked = false, false
		case in:
			code.WriteString(line + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if code.Len() == 0 {
		t.Fatalf("%s has no ```sh block after <!-- test: %s -->", recipeDoc, name)
	}
	return code.String()
}

// runRecipe runs a recipe with sh -eu in a fresh directory and returns it.
func runRecipe(t *testing.T, code string, env ...string) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("sh", "-eu", "-c", code)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("recipe failed: %v\n%s\n--- recipe:\n%s", err, out, code)
	}
	return dir
}

// TestCertificatesRecipes runs the OpenSSL and easy-rsa recipes of
// docs/CERTIFICATES.md as written and checks that quictun loads what they
// make, reads the tunnel addresses and routes, and completes a handshake.
func TestCertificatesRecipes(t *testing.T) {
	tests := []struct {
		name string
		// ca, cert and key name the files of the recipe's output.
		ca        string
		cert, key func(name string) string
		setup     func(t *testing.T) []string // skips when the tool is missing; returns extra env
	}{
		{
			name: "openssl",
			ca:   "pki/ca.crt",
			cert: func(n string) string { return "pki/" + n + ".crt" },
			key:  func(n string) string { return "pki/" + n + ".key" },
			setup: func(t *testing.T) []string {
				requireOpenSSL(t)
				return nil
			},
		},
		{
			name: "easy-rsa",
			ca:   "pki/ca.crt",
			cert: func(n string) string { return "pki/issued/" + n + ".crt" },
			key:  func(n string) string { return "pki/private/" + n + ".key" },
			setup: func(t *testing.T) []string {
				requireOpenSSL(t)
				path := os.Getenv("PATH") + string(os.PathListSeparator) + "/usr/share/easy-rsa"
				for _, d := range filepath.SplitList(path) {
					if fi, err := os.Stat(filepath.Join(d, "easyrsa")); err == nil && !fi.IsDir() {
						return []string{"PATH=" + path}
					}
				}
				t.Skip("easy-rsa is not installed (apt-get install easy-rsa): skipping its recipe")
				return nil
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := tt.setup(t)
			dir := runRecipe(t, recipe(t, tt.name), env...)
			path := func(p string) string { return filepath.Join(dir, p) }
			ca, err := LoadCAPool(path(tt.ca))
			if err != nil {
				t.Fatal(err)
			}
			server, err := LoadKeyPair(path(tt.cert("server")), path(tt.key("server")), nil)
			if err != nil {
				t.Fatal(err)
			}
			clients := []struct {
				name                  string
				addrs, routes, groups []string
			}{
				{"laptop1", []string{"10.77.0.11", "fd77::11"}, []string{"192.168.50.0/24"}, []string{"eng"}},
				{"phone", nil, nil, nil},
			}
			for _, c := range clients {
				pair, err := LoadKeyPair(path(tt.cert(c.name)), path(tt.key(c.name)), nil)
				if err != nil {
					t.Fatal(err)
				}
				id, err := IdentityOf(pair.Leaf)
				if err != nil {
					t.Fatal(err)
				}
				if id.Name != c.name || !slices.Equal(stringsOf(id.Addrs), c.addrs) || !slices.Equal(stringsOf(id.Routes), c.routes) ||
					!slices.Equal(id.Groups, c.groups) {
					t.Errorf("identity of %s: %+v, want addresses %q routes %q groups %q", c.name, id, c.addrs, c.routes, c.groups)
				}
				for _, host := range []string{"vpn.example.com", "203.0.113.7"} {
					res := handshake(t, ServerTLSConfig(server, ca), ClientTLSConfig(pair, ca, host))
					if res.serverErr != nil || res.clientErr != nil {
						t.Errorf("%s dialling %s: server error %v, client error %v", c.name, host, res.serverErr, res.clientErr)
					}
				}
			}
		})
	}
}
