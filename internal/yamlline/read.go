package yamlline

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// ErrExtraDocument is the Err of the *Error Read returns when the data holds
// more than one document.
var ErrExtraDocument = errors.New("more than one YAML document")

// Read parses data, YAML or JSON, as one document and returns its top node,
// aliases resolved. It returns nil and no error when data holds no document,
// or only null ("", comments, "null", "~", a lone "---"): what that means is
// the caller's choice.
//
// Problems are an *Error naming file: a syntax error ("invalid YAML: ...",
// with its line when the parser gives one, wrapping the parser's error), or
// a second document that is not empty, located at the line where it starts
// and wrapping ErrExtraDocument. An empty trailing document (a final "---")
// is accepted.
func Read(data []byte, file string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(file, err)
	}
	for {
		var extra yaml.Node
		err := dec.Decode(&extra)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, syntaxError(file, err)
		}
		if content(&extra) != nil {
			return nil, &Error{File: file, Line: extra.Line, Msg: "a second YAML document starts here", Err: ErrExtraDocument}
		}
	}
	return content(&doc), nil
}

// content returns a document's top node, nil when it has none or it is
// null.
func content(doc *yaml.Node) *yaml.Node {
	if len(doc.Content) == 0 {
		return nil
	}
	n := Resolve(doc.Content[0])
	if IsNull(n) {
		return nil
	}
	return n
}

var syntaxLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// syntaxError turns a YAML parser error into an *Error with its line.
func syntaxError(file string, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := syntaxLine.FindStringSubmatch(msg); m != nil {
		if line, convErr := strconv.Atoi(m[1]); convErr == nil {
			return &Error{File: file, Line: line, Msg: "invalid YAML: " + m[2], Err: err}
		}
	}
	return &Error{File: file, Msg: "invalid YAML: " + msg, Err: err}
}
