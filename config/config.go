// Package config reads quictun's configuration files: one flat table of
// settings in TOML or YAML, checked against a Schema before anything uses
// it.
//
// The package knows file formats, value types, line numbers and paths, not
// what the settings mean: the command line hands it a Schema built from its
// own flag definitions (the keys are the flag names), and applies the
// values it gets back under its own rules of precedence. Every problem is
// an *Error that names the file, the line and the key, so that a person can
// fix the file without guessing; Load reports all of them at once.
//
// Diff compares two loads of a file, which is what a reload needs: the keys
// whose values changed.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Kind is the type of value a key takes.
type Kind int

// The kinds of value. A file gives them as their format's own types: a
// TOML/YAML string, integer or boolean; a Duration as a string with a unit
// ("10s"); a list of strings as an array (a single string is taken as a
// list of one).
const (
	String Kind = iota + 1
	Int
	Bool
	Duration
	Strings
)

// String returns what a value of kind k looks like, for error messages.
func (k Kind) String() string {
	switch k {
	case String:
		return "a string"
	case Int:
		return "an integer"
	case Bool:
		return "true or false"
	case Duration:
		return `a duration with a unit, as a string such as "10s" or "1m30s"`
	case Strings:
		return "a list of strings"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Key describes one key a file may set.
type Key struct {
	// Kind is the type of its value; required.
	Kind Kind
	// Path marks a file name (String or Strings): a relative path is
	// resolved against the directory of the file that sets it, so a file
	// and the certificates beside it can move together. False: the value
	// is used as written.
	Path bool
	// Check, if not nil, validates the value (each element of a Strings
	// value; a Duration as written). Its error becomes a bad-value Error
	// with the file, line and key. Nil: any value of the right kind.
	Check func(string) error
}

// Schema maps each key a file may set to its description. A key that is
// not in it is an error.
type Schema map[string]Key

// Value is one key as a file sets it.
type Value struct {
	// Key is the key's name.
	Key string
	// Line is the line of the file where the key is set, from 1.
	Line int
	// Text is the value as text, in the form a command-line flag takes:
	// one element for a String, Int, Bool or Duration (integers in
	// decimal, "true"/"false", durations as time.Duration.String writes
	// them, so "90s" and "1m30s" compare equal), one per element for
	// Strings (possibly none). Paths are resolved.
	Text []string
}

// equal reports whether v and w hold the same value.
func (v Value) equal(w Value) bool { return slices.Equal(v.Text, w.Text) }

// File is a configuration file as loaded.
type File struct {
	// Path is the file's absolute path.
	Path string
	// Values holds the keys the file sets, in the order it sets them.
	Values []Value
}

// Lookup returns the value of key and whether the file sets it.
func (f *File) Lookup(key string) (Value, bool) {
	if f != nil {
		for _, v := range f.Values {
			if v.Key == key {
				return v, true
			}
		}
	}
	return Value{}, false
}

// Diff returns, sorted, the keys whose values differ between a and b: set
// in one and not in the other, or set to different values. A nil File sets
// nothing.
func Diff(a, b *File) []string {
	var keys []string
	seen := map[string]bool{}
	for _, f := range []*File{a, b} {
		if f == nil {
			continue
		}
		for _, v := range f.Values {
			if seen[v.Key] {
				continue
			}
			seen[v.Key] = true
			va, inA := a.Lookup(v.Key)
			vb, inB := b.Lookup(v.Key)
			if inA != inB || !va.equal(vb) {
				keys = append(keys, v.Key)
			}
		}
	}
	slices.Sort(keys)
	return keys
}

// ErrUnknownKey is wrapped by the Error for a key the Schema does not have.
var ErrUnknownKey = errors.New("unknown key")

// Error is a problem with a configuration file: it cannot be read, does
// not parse, or sets a key that is unknown, of the wrong type or a bad
// value. Load returns one, or several joined with errors.Join.
type Error struct {
	// File is the file's path.
	File string
	// Line is the line of the problem, from 1; 0 when it has none (the
	// file cannot be read).
	Line int
	// Key is the key concerned; "" when there is none (a syntax error
	// outside a key, an unreadable file).
	Key string
	// Err says what is wrong.
	Err error
}

// Error returns "FILE:LINE: KEY: what is wrong", leaving out what is
// unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ": %s", e.Key)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

// Unwrap returns what is wrong.
func (e *Error) Unwrap() error { return e.Err }

// entry is one top-level key as a format's parser found it, before the
// Schema is applied. val is a string, int64, float64, bool, nil, []any of
// those, or something else (a table, a date) that no Kind takes.
type entry struct {
	key  string
	line int
	val  any
}

// Load reads the configuration file at path (TOML, or YAML when its name
// ends in .yaml or .yml) and checks every key against schema. It returns
// the file, or every problem found, each an *Error.
func Load(path string, schema Schema) (*File, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &Error{File: path, Err: err}
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = fmt.Errorf("cannot read the configuration file: %w", pe.Err)
		}
		return nil, &Error{File: abs, Err: err}
	}
	return Parse(abs, data, schema)
}

// Parse is Load for a file already read: path names it in errors and is
// the base of relative paths.
func Parse(path string, data []byte, schema Schema) (*File, error) {
	var entries []entry
	var err error
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		entries, err = parseYAML(path, data)
	default:
		entries, err = parseTOML(path, data)
	}
	if err != nil {
		return nil, err
	}
	f := &File{Path: path}
	var errs []error
	for _, e := range entries {
		v, err := schema.value(filepath.Dir(path), e)
		if err != nil {
			errs = append(errs, &Error{File: path, Line: e.line, Key: e.key, Err: err})
			continue
		}
		f.Values = append(f.Values, v)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f, nil
}

// value checks e against the schema and turns it into a Value; dir is the
// base of relative paths.
func (s Schema) value(dir string, e entry) (Value, error) {
	k, ok := s[e.key]
	if !ok {
		if near := s.nearest(e.key); near != "" {
			return Value{}, fmt.Errorf("%w (did you mean %s?)", ErrUnknownKey, near)
		}
		return Value{}, ErrUnknownKey
	}
	v := Value{Key: e.key, Line: e.line}
	if k.Kind == Strings {
		list, ok := e.val.([]any)
		if s, one := e.val.(string); one {
			list, ok = []any{s}, true
		}
		if !ok {
			return Value{}, wrongType(k.Kind, e.val)
		}
		for i, el := range list {
			s, ok := el.(string)
			if !ok {
				return Value{}, fmt.Errorf("element %d: %w", i+1, wrongType(String, el))
			}
			t, err := k.text(dir, String, s)
			if err != nil {
				return Value{}, err
			}
			v.Text = append(v.Text, t)
		}
		return v, nil
	}
	t, err := k.text(dir, k.Kind, e.val)
	if err != nil {
		return Value{}, err
	}
	v.Text = []string{t}
	return v, nil
}

// text checks one scalar of kind want and returns it as text.
func (k Key) text(dir string, want Kind, val any) (string, error) {
	var t string
	switch x := val.(type) {
	case string:
		if want != String && want != Duration {
			return "", wrongType(want, val)
		}
		t = x
		if want == Duration {
			d, err := time.ParseDuration(x)
			if err != nil {
				return "", fmt.Errorf("%q is not %s", x, want)
			}
			t = d.String()
		}
	case int64:
		if want != Int {
			return "", wrongType(want, val)
		}
		t = fmt.Sprint(x)
	case bool:
		if want != Bool {
			return "", wrongType(want, val)
		}
		t = fmt.Sprint(x)
	default:
		return "", wrongType(want, val)
	}
	if k.Check != nil {
		if err := k.Check(t); err != nil {
			return "", err
		}
	}
	if k.Path && t != "" && !filepath.IsAbs(t) {
		t = filepath.Join(dir, t)
	}
	return t, nil
}

// wrongType says that val is not of kind want.
func wrongType(want Kind, val any) error {
	var got string
	switch x := val.(type) {
	case string:
		got = fmt.Sprintf("the string %q", x)
	case int64:
		got = fmt.Sprintf("the integer %d", x)
	case float64:
		got = fmt.Sprintf("the number %v", x)
	case bool:
		got = fmt.Sprintf("the boolean %v", x)
	case nil:
		got = "no value"
	case []any:
		got = "a list"
	case map[string]any:
		got = "a table"
	default: // the dates and times of TOML and YAML
		got = "a date or time"
	}
	if want == Duration {
		if _, isInt := val.(int64); isInt {
			return fmt.Errorf("want %s, got %s (a number without a unit)", want, got)
		}
	}
	return fmt.Errorf("want %s, got %s", want, got)
}

// nearest returns the key of s that key is most likely a misspelling of
// (at most two edits away), or "".
func (s Schema) nearest(key string) string {
	best, bestD := "", 3
	for k := range s {
		if d := editDistance(key, k); d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
