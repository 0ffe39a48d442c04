package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// yamlSyntax matches the position yaml puts into its syntax errors.
var yamlSyntax = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlTimestamp stands for a YAML timestamp, which no Kind takes.
type yamlTimestamp string

// parseYAML returns the top-level keys of a YAML document with their lines
// and values, in order. The document's node tree carries the line of every
// key; plain scalars are typed by YAML's core schema (1452 an integer,
// true a boolean, 10s a string).
func parseYAML(path string, data []byte) ([]entry, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if m := yamlSyntax.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		return nil, &Error{File: path, Line: line, Err: fmt.Errorf("YAML syntax: %s", msg)}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil // empty, or only comments
	}
	root := resolveAlias(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: path, Line: root.Line,
			Err: fmt.Errorf("want keys with values (key: value), one per line; got %s", yamlKind(root))}
	}
	var entries []entry
	first := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, &Error{File: path, Line: k.Line, Err: fmt.Errorf("a key must be a plain name, got %s", yamlKind(k))}
		}
		if line, dup := first[k.Value]; dup {
			return nil, &Error{File: path, Line: k.Line, Key: k.Value, Err: fmt.Errorf("set twice (first on line %d)", line)}
		}
		first[k.Value] = k.Line
		val, err := yamlValue(v)
		if err != nil {
			return nil, &Error{File: path, Line: v.Line, Key: k.Value, Err: err}
		}
		entries = append(entries, entry{key: k.Value, line: k.Line, val: val})
	}
	return entries, nil
}

// yamlValue returns the value of n as config's entries hold it.
func yamlValue(n *yaml.Node) (any, error) {
	n = resolveAlias(n)
	switch n.Kind {
	case yaml.SequenceNode:
		list := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			if resolveAlias(c).Kind == yaml.SequenceNode {
				// A list in a list, which no Kind takes, is not read: an
				// alias to the list itself would recurse forever, and
				// aliases of aliased lists grow exponentially.
				list = append(list, []any{})
				continue
			}
			v, err := yamlValue(c)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		return list, nil
	case yaml.MappingNode:
		return map[string]any{}, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return n.Value, nil
		case "!!null":
			return nil, nil
		case "!!timestamp":
			return yamlTimestamp(n.Value), nil
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				return nil, fmt.Errorf("%s: not an integer quictun can take", n.Value)
			}
			return i, nil
		case "!!bool":
			var b bool
			err := n.Decode(&b)
			return b, err
		case "!!float":
			var f float64
			err := n.Decode(&f)
			return f, err
		}
		return n.Value, nil
	}
	return nil, fmt.Errorf("unexpected YAML node %s", yamlKind(n))
}

// resolveAlias follows *anchor references.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// yamlKind names the kind of n for error messages.
func yamlKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "something else"
}
