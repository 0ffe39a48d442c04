package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testSchema has one key of each kind, a path and a checked list.
var testSchema = Schema{
	"name":      {Kind: String},
	"cert":      {Kind: String, Path: true},
	"size":      {Kind: Int},
	"fast":      {Kind: Bool},
	"keepalive": {Kind: Duration},
	"ip": {Kind: Strings, Check: func(s string) error {
		if !strings.Contains(s, "/") {
			return fmt.Errorf("%q: want a prefix", s)
		}
		return nil
	}},
}

func TestParseGood(t *testing.T) {
	const dir = "/etc/quictun"
	want := []Value{
		{Key: "name", Line: 2, Text: []string{"qt0"}},
		{Key: "cert", Line: 3, Text: []string{"/etc/quictun/pki/server.crt"}},
		{Key: "size", Line: 4, Text: []string{"1452"}},
		{Key: "fast", Line: 5, Text: []string{"false"}},
		{Key: "keepalive", Line: 6, Text: []string{"1m30s"}},
		{Key: "ip", Line: 7, Text: []string{"10.77.0.1/24", "fd77::1/64"}},
	}
	tests := []struct {
		name, file, data string
	}{
		{"toml", "server.toml", `# a comment
name = "qt0"
cert = "pki/server.crt"
size = 1_452
fast = false
keepalive = "90s"
ip = [
  "10.77.0.1/24",
  "fd77::1/64",
]
`},
		{"yaml", "server.yaml", `# a comment
name: qt0
cert: pki/server.crt
size: 1452
fast: false
keepalive: 90s
ip:
  - 10.77.0.1/24
  - fd77::1/64
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(filepath.Join(dir, tt.file), []byte(tt.data), testSchema)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Values) != len(want) {
				t.Fatalf("values %+v, want %+v", f.Values, want)
			}
			for i, v := range f.Values {
				if v.Key != want[i].Key || v.Line != want[i].Line || !slices.Equal(v.Text, want[i].Text) {
					t.Errorf("value %d = %+v, want %+v", i, v, want[i])
				}
			}
		})
	}
}

func TestParseDetails(t *testing.T) {
	for _, tt := range []struct {
		name, file, data string
		key              string
		want             []string
	}{
		{"absolute path kept", "a.toml", `cert = "/srv/x.crt"`, "cert", []string{"/srv/x.crt"}},
		{"single string as a list", "a.toml", `ip = "10.0.0.1/24"`, "ip", []string{"10.0.0.1/24"}},
		{"empty list", "a.toml", `ip = []`, "ip", nil},
		{"yaml flow list", "a.yml", `ip: [10.0.0.1/24, "fd77::1/64"]`, "ip", []string{"10.0.0.1/24", "fd77::1/64"}},
		{"yaml anchor", "a.yaml", "x: &n 5\nsize: *n\n", "size", []string{"5"}},
		{"quoted toml key", "a.toml", `"name" = "x"`, "name", []string{"x"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			schema := testSchema
			if tt.name == "yaml anchor" {
				schema = Schema{"x": {Kind: Int}, "size": {Kind: Int}}
			}
			f, err := Parse(filepath.Join("/d", tt.file), []byte(tt.data), schema)
			if err != nil {
				t.Fatal(err)
			}
			v, ok := f.Lookup(tt.key)
			if !ok || !slices.Equal(v.Text, tt.want) {
				t.Errorf("%s = %q (set: %v), want %q", tt.key, v.Text, ok, tt.want)
			}
		})
	}
}

func TestParseEmpty(t *testing.T) {
	for _, name := range []string{"a.toml", "a.yaml"} {
		f, err := Parse(name, []byte("# nothing yet\n"), testSchema)
		if err != nil || len(f.Values) != 0 {
			t.Errorf("%s: %+v, %v; want no values", name, f, err)
		}
	}
}

// TestParseErrors: every kind of bad file gives an *Error naming the file,
// the line and (where there is one) the key, with a message that says
// what is wrong.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, file, data string
		line             int
		key              string
		want             string
	}{
		{"unknown key", "a.toml", "name = \"x\"\nbogus = 1\n", 2, "bogus", "unknown key"},
		{"misspelt key", "a.toml", "\n\nkeepalvie = \"10s\"\n", 3, "keepalvie", "unknown key (did you mean keepalive?)"},
		{"string for int", "a.toml", `size = "big"`, 1, "size", `want an integer, got the string "big"`},
		{"float for int", "a.toml", `size = 14.5`, 1, "size", "want an integer, got the number 14.5"},
		{"int for string", "a.toml", `name = 5`, 1, "name", "want a string, got the integer 5"},
		{"string for bool", "a.toml", `fast = "yes"`, 1, "fast", "want true or false"},
		{"duration without unit", "a.toml", `keepalive = 10`, 1, "keepalive", "a number without a unit"},
		{"bad duration", "a.toml", `keepalive = "soon"`, 1, "keepalive", `"soon" is not a duration`},
		{"list of ints", "a.toml", `ip = [1, 2]`, 1, "ip", "element 1: want a string, got the integer 1"},
		{"int for list", "a.toml", `ip = 5`, 1, "ip", "want a list of strings"},
		{"bad list element", "a.toml", "ip = [\n \"10.0.0.1/24\",\n \"10.0.0.2\",\n]", 1, "ip", `"10.0.0.2": want a prefix`},
		{"table", "a.toml", "name = \"x\"\n[size]\nx = 1\n", 2, "size", "got a table"},
		{"unknown table", "a.toml", "[listen]\nname = \"x\"\n", 1, "listen", "unknown key"},
		{"dotted key", "a.toml", "size.x = 1", 1, "size", "got a table"},
		{"date", "a.toml", "name = 2024-01-01", 1, "name", "got a date or time"},
		{"toml syntax", "a.toml", "name = \"x\"\nsize = = 3\n", 2, "", "TOML syntax"},
		{"toml unterminated string", "a.toml", "name = \"x\n", 1, "", "TOML syntax"},
		{"toml key twice", "a.toml", "name = \"x\"\nname = \"y\"\n", 2, "name", "TOML syntax: key name is already defined"},
		{"yaml unknown key", "a.yaml", "name: x\nbogus: 1\n", 2, "bogus", "unknown key"},
		{"yaml string for int", "a.yaml", "\nsize: big\n", 2, "size", `want an integer, got the string "big"`},
		{"yaml quoted int", "a.yml", `size: "1452"`, 1, "size", `got the string "1452"`},
		{"yaml null", "a.yaml", "name:\n", 1, "name", "got no value"},
		{"yaml mapping", "a.yaml", "name:\n  a: 1\n", 1, "name", "got a table"},
		{"yaml key twice", "a.yaml", "name: x\nsize: 1\nname: y\n", 3, "name", "set twice (first on line 1)"},
		{"yaml syntax", "a.yaml", "name: x\n  size: 1\n", 2, "", "YAML syntax"},
		{"yaml not a mapping", "a.yaml", "- a\n- b\n", 1, "", "want keys with values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join("/etc/quictun", tt.file)
			_, err := Parse(path, []byte(tt.data), testSchema)
			if err == nil {
				t.Fatal("no error")
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if e.File != path || e.Line != tt.line || e.Key != tt.key {
				t.Errorf("error at %s:%d key %q, want %s:%d key %q (%v)", e.File, e.Line, e.Key, path, tt.line, tt.key, err)
			}
			prefix := fmt.Sprintf("%s:%d: ", path, tt.line)
			if tt.key != "" {
				prefix += tt.key + ": "
			}
			if msg := err.Error(); !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q, want it to start with %q and contain %q", msg, prefix, tt.want)
			}
			if unknown := strings.Contains(tt.want, "unknown key"); errors.Is(err, ErrUnknownKey) != unknown {
				t.Errorf("errors.Is(%v, ErrUnknownKey) = %v", err, errors.Is(err, ErrUnknownKey))
			}
		})
	}
}

// TestParseAllErrors: a file with several problems reports each, so that
// one round of editing can fix them all.
func TestParseAllErrors(t *testing.T) {
	_, err := Parse("/x/a.toml", []byte("bogus = 1\nsize = \"x\"\nname = \"ok\"\nfast = 1\n"), testSchema)
	msg := fmt.Sprint(err)
	for _, want := range []string{"/x/a.toml:1: bogus:", "/x/a.toml:2: size:", "/x/a.toml:4: fast:"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.toml")
	if _, err := Load(missing, testSchema); err == nil || !strings.Contains(err.Error(), missing+": cannot read the configuration file: no such file or directory") {
		t.Errorf("missing file: %v", err)
	}
	// A directory cannot be read as a file, even by root.
	if _, err := Load(dir, testSchema); err == nil || !strings.HasPrefix(err.Error(), dir+": cannot read the configuration file: is a directory") {
		t.Errorf("directory: %v", err)
	}
	if os.Geteuid() != 0 { // root reads a file whatever its mode
		locked := filepath.Join(dir, "locked.toml")
		if err := os.WriteFile(locked, []byte("name = \"x\"\n"), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(locked, testSchema); err == nil || !strings.Contains(err.Error(), locked+": cannot read the configuration file: permission denied") {
			t.Errorf("unreadable file: %v", err)
		}
	}
}

func TestLoadRelativePaths(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "etc", "c.toml")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`cert = "../pki/c.crt"`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	f, err := Load("etc/c.toml", testSchema)
	if err != nil {
		t.Fatal(err)
	}
	if f.Path != path {
		t.Errorf("Path = %q, want %q", f.Path, path)
	}
	if v, _ := f.Lookup("cert"); len(v.Text) != 1 || v.Text[0] != filepath.Join(dir, "pki", "c.crt") {
		t.Errorf("cert = %q, want %q", v.Text, filepath.Join(dir, "pki", "c.crt"))
	}
}

func TestDiff(t *testing.T) {
	parse := func(s string) *File {
		t.Helper()
		f, err := Parse("/d/a.toml", []byte(s), testSchema)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	a := parse("name = \"x\"\nsize = 1\nkeepalive = \"90s\"\nip = [\"1.0.0.0/8\"]\n")
	b := parse("# moved lines and an equal duration change nothing\nkeepalive = \"1m30s\"\nname = \"x\"\nip = [\"1.0.0.0/8\", \"2.0.0.0/8\"]\nfast = true\n")
	if got, want := Diff(a, b), []string{"fast", "ip", "size"}; !slices.Equal(got, want) {
		t.Errorf("Diff = %q, want %q", got, want)
	}
	if got := Diff(a, a); len(got) != 0 {
		t.Errorf("Diff of a file with itself = %q", got)
	}
	if got, want := Diff(nil, a), []string{"ip", "keepalive", "name", "size"}; !slices.Equal(got, want) {
		t.Errorf("Diff(nil, a) = %q, want %q", got, want)
	}
}
