package kubetest

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"
)

// Manifest is one object of a YAML file, decoded to its client-go type.
type Manifest struct {
	// File is the file's path; Doc is the object's document in it,
	// counting from 1 (empty documents count too), and Line the line the
	// document starts on.
	File string
	Doc  int
	Line int
	// GVK is the object's apiVersion and kind.
	GVK schema.GroupVersionKind
	// Object is the typed object, e.g. *appsv1.DaemonSet.
	Object runtime.Object
}

// String names the manifest as file:line (document N) kind.
func (m Manifest) String() string {
	return fmt.Sprintf("%s:%d (document %d) %s", m.File, m.Line, m.Doc, m.GVK.Kind)
}

// strictDecoder returns client-go's universal deserializer with strict
// checks: unknown and duplicate fields are errors, where the lenient one
// would drop them without a word.
func strictDecoder() runtime.Decoder {
	return serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
}

// ReadManifests decodes every document of every .yaml and .yml file in dir
// (not its subdirectories), in file name order, to client-go's types. A
// document that is empty or only comments is skipped; one of a kind
// client-go does not know, or with a field its type does not have, is an
// error naming the file and document.
func ReadManifests(dir string) ([]Manifest, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("kubetest: manifests: %w", err)
	}
	var files []string
	for _, e := range entries {
		if n := e.Name(); !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
			files = append(files, filepath.Join(dir, n))
		}
	}
	sort.Strings(files)
	dec := strictDecoder()
	var out []Manifest
	for _, f := range files {
		ms, err := readManifestFile(dec, f)
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, nil
}

// readManifestFile decodes the documents of one file.
func readManifestFile(dec runtime.Decoder, path string) ([]Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	var out []Manifest
	for i, d := range splitDocuments(string(b)) {
		if isEmptyDoc(d.text) {
			continue
		}
		where := fmt.Sprintf("%s:%d (document %d)", path, d.line, i+1)
		obj, gvk, err := dec.Decode([]byte(d.text), nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		obj.GetObjectKind().SetGroupVersionKind(*gvk)
		out = append(out, Manifest{File: path, Doc: i + 1, Line: d.line, GVK: *gvk, Object: obj})
	}
	return out, nil
}

// document is one YAML document of a file and the line it starts on.
type document struct {
	text string
	line int
}

// splitDocuments splits a YAML stream at its "---" lines, as kubectl
// does; every separator starts a document, an empty one included.
func splitDocuments(s string) []document {
	var docs []document
	cur := document{line: 1}
	var b strings.Builder
	for i, line := range strings.SplitAfter(s, "\n") {
		if t := strings.TrimRight(line, " \t\r\n"); t == "---" || strings.HasPrefix(t, "--- ") || strings.HasPrefix(t, "---\t") {
			if i > 0 {
				cur.text = b.String()
				docs = append(docs, cur)
			}
			b.Reset()
			cur = document{line: i + 2}
			continue
		}
		b.WriteString(line)
	}
	cur.text = b.String()
	return append(docs, cur)
}

// isEmptyDoc reports whether a YAML document holds only blank lines and
// comments.
func isEmptyDoc(text string) bool {
	for _, line := range strings.Split(text, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}
