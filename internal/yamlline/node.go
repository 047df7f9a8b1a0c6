package yamlline

import (
	"fmt"

	yaml "go.yaml.in/yaml/v3"
)

// Resolve follows aliases (*anchor) to the node they name.
func Resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// IsNull reports whether n is a YAML null ("null", "~" or nothing).
func IsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// IsScalar reports whether n is a scalar with the given tag, such as
// "!!str" or "!!int".
func IsScalar(n *yaml.Node, tag string) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == tag
}

// Describe says what a node holds, for "expected X, got Y" messages:
// `string "abc"`, `integer 7`, `number 1.5`, `boolean true`, `null`,
// `a list`, `a mapping`.
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("string %q", n.Value)
		case "!!int":
			return "integer " + n.Value
		case "!!float":
			return "number " + n.Value
		case "!!bool":
			return "boolean " + n.Value
		case "!!null":
			return "null"
		}
		return fmt.Sprintf("%s %q", n.ShortTag(), n.Value)
	}
	return "an unexpected YAML node"
}

// Lookup returns the value of key in the mapping m, aliases resolved, or
// nil when m has no such key (or is not a mapping).
func Lookup(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := Resolve(m.Content[i]); k.Kind == yaml.ScalarNode && k.Value == key {
			return Resolve(m.Content[i+1])
		}
	}
	return nil
}
