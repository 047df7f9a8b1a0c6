package yamlline

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

func mustRead(t *testing.T, in string) *yaml.Node {
	t.Helper()
	root, err := Read([]byte(in), "t.yaml")
	if err != nil {
		t.Fatalf("Read(%q): %v", in, err)
	}
	return root
}

func TestReadEmpty(t *testing.T) {
	for _, in := range []string{"", "# only a comment\n", "null\n", "~\n", "---\n", "---\n...\n"} {
		if root := mustRead(t, in); root != nil {
			t.Errorf("Read(%q) = %v node, want nil", in, root.Kind)
		}
	}
}

func TestReadErrors(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		extra    bool
	}{
		{in: "a: [1\n", want: "t.yaml:1: invalid YAML: did not find expected ',' or ']'"},
		{in: "a: 1\n  b: 2\n", want: "t.yaml:2: invalid YAML: mapping values are not allowed in this context"},
		{in: "a: *nope\n", want: "t.yaml: invalid YAML: unknown anchor 'nope' referenced"},
		// The second document is located at its "---", not at its content.
		{in: "a: 1\n---\n# comment\nb: 2\n", want: "t.yaml:2: a second YAML document starts here", extra: true},
		{in: "a: 1\n---\n---\nb: 2\n", want: "t.yaml:3: a second YAML document starts here", extra: true},
	} {
		_, err := Read([]byte(tc.in), "t.yaml")
		if err == nil || err.Error() != tc.want {
			t.Errorf("Read(%q) = %v, want %s", tc.in, err, tc.want)
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.File != "t.yaml" {
			t.Errorf("Read(%q): %v is not an *Error of t.yaml", tc.in, err)
		}
		if got := errors.Is(err, ErrExtraDocument); got != tc.extra {
			t.Errorf("Read(%q): errors.Is(ErrExtraDocument) = %v", tc.in, got)
		}
	}
}

func TestReadAcceptsATrailingEmptyDocument(t *testing.T) {
	root := mustRead(t, "a: 1\n---\n")
	if root == nil || root.Kind != yaml.MappingNode {
		t.Fatalf("Read returned %v, want the first document's mapping", root)
	}
}

// TestFieldsLines checks that every field comes with its key's line, in
// YAML and in JSON, aliases resolved.
func TestFieldsLines(t *testing.T) {
	for name, in := range map[string]string{
		"yaml": "# head\nport: 80\n\nhost: &h a.example\nalias: *h\n",
		"json": "{\n  \"port\": 80,\n\n  \"host\": \"a.example\",\n  \"alias\": \"a.example\"\n}\n",
	} {
		root := mustRead(t, in)
		fields, bad := Fields(root, "top")
		if len(bad) != 0 {
			t.Fatalf("%s: key errors %v", name, bad)
		}
		type got struct {
			Path  string
			Line  int
			Value string
		}
		var gots []got
		for _, f := range fields {
			gots = append(gots, got{f.Path, f.Key.Line, f.Value.Value})
		}
		want := []got{{"top.port", 2, "80"}, {"top.host", 4, "a.example"}, {"top.alias", 5, "a.example"}}
		if !reflect.DeepEqual(gots, want) {
			t.Errorf("%s: fields %+v, want %+v", name, gots, want)
		}
	}
}

func TestFieldsKeyErrors(t *testing.T) {
	root := mustRead(t, "a: 1\n5: x\nb: 2\na: 3\n<<: {c: 1}\n? [x]\n: y\n")
	fields, bad := Fields(root, "m")
	if len(fields) != 2 || fields[0].Name != "a" || fields[0].Value.Value != "1" || fields[1].Name != "b" {
		t.Errorf("fields %+v, want a (the first) and b", fields)
	}
	want := []string{
		"2 m NotAString field names must be strings, got integer 5",
		`4 m.a Duplicate duplicate field "m.a" (first at line 1)`,
		"5 m.<< MergeKey YAML merge keys (<<) are not supported",
		"6 m NotAString field names must be strings, got a list",
	}
	names := map[KeyProblem]string{NotAString: "NotAString", Duplicate: "Duplicate", MergeKey: "MergeKey"}
	var got []string
	for _, e := range bad {
		got = append(got, strings.Join([]string{strconv.Itoa(e.Key.Line), e.Field(), names[e.Problem], e.Error()}, " "))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("key errors\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"syncPeriod", "minSyncPeriod"}
	if got, ok := Suggest(known, "SyncPeriod"); !ok || got != "syncPeriod" {
		t.Errorf("Suggest(SyncPeriod) = %q, %v", got, ok)
	}
	if got, ok := Suggest(known, "period"); ok {
		t.Errorf("Suggest(period) = %q, want none", got)
	}
}

func TestScalars(t *testing.T) {
	root := mustRead(t, `{s: abc, n: 7, f: 1.5, big: 123456789012345678901234567890, huge: 9223372036854775808, neg: -9223372036854775808, t: true, q: "true", z: null, l: [1]}`)
	v := map[string]*yaml.Node{}
	fields, _ := Fields(root, "")
	for _, f := range fields {
		v[f.Name] = f.Value
	}
	if s, ok := String(v["s"]); !ok || s != "abc" {
		t.Errorf("String(s) = %q, %v", s, ok)
	}
	if _, ok := String(v["n"]); ok {
		t.Error("String accepts an integer")
	}
	if s, ok := Text(v["n"]); !ok || s != "7" {
		t.Errorf("Text(n) = %q, %v", s, ok)
	}
	for _, k := range []string{"t", "z", "l"} {
		if _, ok := Text(v[k]); ok {
			t.Errorf("Text accepts %s", Describe(v[k]))
		}
	}
	if b, ok := Bool(v["t"]); !ok || !b {
		t.Errorf("Bool(t) = %v, %v", b, ok)
	}
	if _, ok := Bool(v["q"]); ok {
		t.Error(`Bool accepts the string "true"`)
	}
	for k, want := range map[string]error{"n": nil, "neg": nil, "f": ErrNotInteger, "s": ErrNotInteger, "z": ErrNotInteger,
		"big": ErrOutOfRange, "huge": ErrOutOfRange} {
		if _, err := Int(v[k]); err != want {
			t.Errorf("Int(%s) error %v, want %v", k, err, want)
		}
	}
	if i, _ := Int(v["n"]); i != 7 {
		t.Errorf("Int(n) = %d", i)
	}
	for k, want := range map[string]string{"s": `string "abc"`, "n": "integer 7", "f": "number 1.5", "t": "boolean true",
		"z": "null", "l": "a list"} {
		if got := Describe(v[k]); got != want {
			t.Errorf("Describe(%s) = %q, want %q", k, got, want)
		}
	}
	if Describe(root) != "a mapping" {
		t.Errorf("Describe(root) = %q", Describe(root))
	}
}

func TestLookup(t *testing.T) {
	root := mustRead(t, "kind: &k Thing\ncopy: *k\n")
	if n := Lookup(root, "copy"); n == nil || n.Value != "Thing" {
		t.Errorf("Lookup(copy) = %v, want the aliased Thing", n)
	}
	if n := Lookup(root, "missing"); n != nil {
		t.Errorf("Lookup(missing) = %v", n)
	}
}

func TestPaths(t *testing.T) {
	if got := Index(Join(Join("", "services"), "x"), 2); got != "services.x[2]" {
		t.Errorf("path %q", got)
	}
	var chain []string
	for p := "a[1].b.c"; p != ""; p = Parent(p) {
		chain = append(chain, p)
	}
	if want := []string{"a[1].b.c", "a[1].b", "a[1]", "a"}; !reflect.DeepEqual(chain, want) {
		t.Errorf("parents %v, want %v", chain, want)
	}
	lines := Lines{}
	lines.Set("a[1]", 4)
	lines.Set("a[1].b", 5)
	for path, want := range map[string]int{"a[1].b.c": 5, "a[1].x": 4, "a[1]": 4} {
		if got, ok := lines.Find(path); !ok || got != want {
			t.Errorf("Find(%s) = %d, %v; want %d", path, got, ok, want)
		}
	}
	if _, ok := lines.Find("z.y"); ok {
		t.Error("Find(z.y) found a line")
	}
}

func TestErrors(t *testing.T) {
	root := mustRead(t, "a: 1\nb: x\nc: 3\n")
	c := Errors{File: "t.yaml", Max: 2}
	c.At(Lookup(root, "c"), "c", "third %s", "problem")
	c.Add(0, "", nil, "no line")
	cause := errors.New("cause")
	c.Add(2, "b", cause, "second")
	c.Add(1, "a", nil, "dropped")
	if c.Count() != 4 {
		t.Errorf("Count = %d, want 4", c.Count())
	}
	err := c.Err()
	want := "t.yaml: no line\nt.yaml:3: c: third problem\nt.yaml: 2 more problem(s) not shown"
	if err == nil || err.Error() != want {
		t.Fatalf("Err =\n%v\nwant\n%s", err, want)
	}
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 3 || list[1].Line != 3 || list[1].Field != "c" {
		t.Errorf("ErrorList %+v", list)
	}
	var all Errors
	all.File = "t.yaml"
	all.Add(2, "b", cause, "second")
	if err := all.Err(); !errors.Is(err, cause) {
		t.Errorf("%v does not wrap its cause", err)
	}
	if err := (&Errors{}).Err(); err != nil {
		t.Errorf("no problems: Err = %v", err)
	}
}
