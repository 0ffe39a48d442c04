package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// fuzzSchema is shaped like the command line's (cmd/quictun/configfile.go):
// strings, paths, a checked list of prefixes, integers, booleans and
// durations, with a checked mode.
var fuzzSchema = Schema{
	"server":      {Kind: String},
	"cert":        {Kind: String, Path: true},
	"key":         {Kind: String, Path: true},
	"ca":          {Kind: Strings, Path: true},
	"packet-size": {Kind: Int},
	"insecure":    {Kind: Bool},
	"keepalive":   {Kind: Duration},
	"ip": {Kind: Strings, Check: func(s string) error {
		_, err := netip.ParsePrefix(s)
		return err
	}},
	"mode": {Kind: String, Check: func(s string) error {
		if s != "" && s != "tun" && s != "tap" {
			return fmt.Errorf("%q: want tun or tap", s)
		}
		return nil
	}},
}

// FuzzParse parses arbitrary TOML (or, when yaml is set, YAML) against a
// schema like the command line's. It must never panic nor run away; every
// error is an *Error naming the file and a line of it (or none); a file it
// accepts sets each key at most once, on a line of the file, with text of
// the key's kind that passes its check (paths resolved); and those values,
// written back as TOML, parse as the same values.
func FuzzParse(f *testing.F) {
	for _, doc := range []string{
		"server = \"vpn.example.com:4433\"\ncert = \"client.crt\"\nca = [\"ca.crt\", \"/etc/other-ca.crt\"]\n" +
			"packet-size = 1452\ninsecure = false\nkeepalive = \"1m30s\"\nip = [\"10.77.0.2/24\", \"fd77::2/64\"]\nmode = \"tap\"\n",
		"# comment\nip = \"10.0.0.1/8\"\n[table]\nx = 1\n",
		"packet-size = \"1452\"\nkeepalive = 10\nmode = \"tunnel\"\nnope = 1\n",
		"a.b = 1\nip = [1, \"x\"]\nserver = 1979-05-27T07:32:00Z\n",
		"server = \"\"\"\nmulti\nline\"\"\"\n",
		"= broken",
	} {
		f.Add(doc, false)
	}
	for _, doc := range []string{
		"server: vpn.example.com:4433\ncert: client.crt\nca: [ca.crt]\npacket-size: 1452\ninsecure: true\nkeepalive: 10s\nip:\n  - 10.77.0.2/24\nmode: tun\n",
		"ip: &a [10.0.0.0/8]\nca: *a\n",
		"a: &a [*a]\nip: *a\n",
		"x: &x [1, 2]\ny: &y [*x, *x, *x]\nip: [*y, *y, *y]\n",
		"server: 2001-12-14\npacket-size: 0x10\nkeepalive: 1.5\nip: {a: 1}\n",
		"- just\n- a list\n",
		"server: a\nserver: b\n",
		"key: [unclosed\n",
	} {
		f.Add(doc, true)
	}
	f.Fuzz(func(t *testing.T, doc string, yaml bool) {
		path := "/etc/quictun/client.toml"
		if yaml {
			path = "/etc/quictun/client.yaml"
		}
		// At most: YAML also breaks lines at a CR alone, NEL, LS and PS.
		lines := 1
		for _, br := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
			lines += strings.Count(doc, br)
		}
		file, err := Parse(path, []byte(doc), fuzzSchema)
		if err != nil {
			if file != nil {
				t.Fatal("an error and a file")
			}
			checkErrors(t, err, path, lines)
			return
		}
		seen := map[string]bool{}
		for _, v := range file.Values {
			k, ok := fuzzSchema[v.Key]
			if !ok || seen[v.Key] || v.Line < 1 || v.Line > lines {
				t.Fatalf("value %+v: in the schema %v, seen %v, of %d lines", v, ok, seen[v.Key], lines)
			}
			seen[v.Key] = true
			if k.Kind != Strings && len(v.Text) != 1 {
				t.Fatalf("%s: %d texts for a scalar", v.Key, len(v.Text))
			}
			for _, s := range v.Text {
				checkText(t, v.Key, k, s)
			}
		}

		// Written back as TOML, the values parse as the same values.
		toml, ok := fuzzTOML(file)
		if !ok {
			return
		}
		again, err := Parse("/etc/quictun/again.toml", toml, fuzzSchema)
		if err != nil {
			t.Fatalf("values written back do not parse: %v\n%s", err, toml)
		}
		if len(again.Values) != len(file.Values) {
			t.Fatalf("%d values written back, %d read", len(file.Values), len(again.Values))
		}
		for i, v := range again.Values {
			if w := file.Values[i]; v.Key != w.Key || !v.equal(w) || v.Line != i+1 {
				t.Fatalf("value %d written back as %+v, read as %+v\n%s", i, w, v, toml)
			}
		}
	})
}

// checkErrors checks that err is one *Error or several joined, each naming
// path and a line of the file (or none), with Error() saying so first.
func checkErrors(t *testing.T, err error, path string, lines int) {
	t.Helper()
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var ce *Error
		if !errors.As(e, &ce) || e != error(ce) {
			t.Fatalf("error %T %v is not an *Error", e, e)
		}
		if ce.File != path || ce.Line < 0 || ce.Line > lines+1 || ce.Err == nil {
			t.Fatalf("error %+v for a file of %d lines", ce, lines)
		}
		prefix := path + ":"
		if ce.Line > 0 {
			prefix = fmt.Sprintf("%s:%d:", path, ce.Line)
		}
		if !strings.HasPrefix(ce.Error(), prefix) {
			t.Fatalf("error %q does not start with %q", ce.Error(), prefix)
		}
	}
}

// checkText checks one text of key, of the kind and passing the check k
// gives it.
func checkText(t *testing.T, key string, k Key, s string) {
	t.Helper()
	switch k.Kind {
	case Int:
		if _, err := strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("%s: integer %q", key, s)
		}
	case Bool:
		if s != "true" && s != "false" {
			t.Fatalf("%s: boolean %q", key, s)
		}
	case Duration:
		if d, err := time.ParseDuration(s); err != nil || d.String() != s {
			t.Fatalf("%s: duration %q", key, s)
		}
	}
	if k.Path && s != "" && !filepath.IsAbs(s) {
		t.Fatalf("%s: path %q not resolved", key, s)
	}
	if k.Check != nil {
		if err := k.Check(s); err != nil {
			t.Fatalf("%s: %q passed as %v", key, s, err)
		}
	}
}

// fuzzTOML writes the values of file as a TOML document, one key a line,
// or ok false when a text cannot be written as a TOML string as it is (not
// UTF-8).
func fuzzTOML(file *File) (doc []byte, ok bool) {
	var b bytes.Buffer
	quote := func(s string) (string, bool) {
		if !utf8.ValidString(s) {
			return "", false
		}
		j, _ := json.Marshal(s) // JSON's escapes are TOML's, but for DEL, which TOML wants escaped
		return strings.ReplaceAll(string(j), "\x7f", `\u007f`), true
	}
	for _, v := range file.Values {
		fmt.Fprintf(&b, "%q = ", v.Key)
		switch fuzzSchema[v.Key].Kind {
		case Int, Bool:
			b.WriteString(v.Text[0])
		case Strings:
			var q []string
			for _, s := range v.Text {
				s, ok := quote(s)
				if !ok {
					return nil, false
				}
				q = append(q, s)
			}
			fmt.Fprintf(&b, "[%s]", strings.Join(q, ", "))
		default:
			s, ok := quote(v.Text[0])
			if !ok {
				return nil, false
			}
			b.WriteString(s)
		}
		b.WriteByte('\n')
	}
	return b.Bytes(), true
}
