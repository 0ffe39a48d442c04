package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// parseTOML returns the top-level keys of a TOML document with their lines
// and values, in the order the document first sets them.
//
// go-toml decodes the values (all of TOML: escapes, dotted keys, number
// forms) and reports syntax errors with their position; its parser, run a
// second time over the same bytes, gives the line of each key, which
// decoding into a map loses. A table (`[name]`, or a dotted key such as
// `a.b = 1`) becomes one entry whose value is a table, which no Kind
// takes: quictun's files are flat.
func parseTOML(path string, data []byte) ([]entry, error) {
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			line, _ := de.Position()
			msg := strings.TrimPrefix(de.Error(), "toml: ")
			return nil, &Error{File: path, Line: line, Key: strings.Join(de.Key(), "."),
				Err: fmt.Errorf("TOML syntax: %s", msg)}
		}
		return nil, &Error{File: path, Err: fmt.Errorf("TOML: %w", err)}
	}
	var entries []entry
	seen := map[string]bool{}
	inTable := false // after a [table] header, key/value lines belong to it
	var p unstable.Parser
	p.Reset(data)
	for p.NextExpression() {
		e := p.Expression()
		var keys unstable.Iterator
		switch e.Kind {
		case unstable.KeyValue, unstable.Table, unstable.ArrayTable:
			keys = e.Key()
		default:
			continue
		}
		if !keys.Next() {
			continue
		}
		first := keys.Node()
		key := string(first.Data)
		if e.Kind != unstable.KeyValue {
			inTable = true
		} else if inTable {
			continue // reported at the table's header
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		entries = append(entries, entry{key: key, line: p.Shape(first.Raw).Start.Line, val: doc[key]})
	}
	if err := p.Error(); err != nil {
		// Unmarshal accepted the same bytes; this would be a bug in go-toml.
		return nil, &Error{File: path, Err: fmt.Errorf("TOML: %w", err)}
	}
	return entries, nil
}
