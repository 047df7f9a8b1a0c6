package metrics_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/lb"
	"github.com/lbkit/lbkit/proxyd/metrics"
)

// dashboardPath is the Grafana dashboard over proxyd's metrics.
var dashboardPath = filepath.Join("..", "..", "examples", "grafana", "lbkit-dashboard.json")

// dsInput is the dashboard's data source input: Grafana asks for it on
// import and puts its uid wherever "${DS_PROMETHEUS}" stands.
const dsInput = "DS_PROMETHEUS"

// The parts of Grafana's dashboard JSON model the test reads.
type dashboard struct {
	Title  string
	UID    string
	Inputs []struct {
		Name     string
		Type     string
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	Panels     []panel
	Templating struct{ List []variable }
}

type panel struct {
	ID         int
	Type       string
	Title      string
	Datasource *datasource
	Targets    []target
	Panels     []panel // a collapsed row's panels
}

type target struct {
	Expr       string
	RefID      string `json:"refId"`
	Datasource *datasource
}

type datasource struct {
	Type string
	UID  string
}

type variable struct {
	Name       string
	Type       string
	Datasource *datasource
	// Query is a string, or {"query": "..."} since Grafana 10.
	Query json.RawMessage
}

// families maps each metric family proxyd's registry describes to its type
// ("" when the family has no sample to learn the type from).
type families map[string]string

// proxydFamilies returns the families of a Metrics set up as proxyd sets it
// up: New with a datapath, then ObserveServices.
func proxydFamilies(t *testing.T) families {
	t.Helper()
	m := metrics.New("nftables")
	m.ObserveServices(func() map[lb.Phase]int { return nil })
	fams := families{}
	for _, name := range m.Names() {
		fams[name] = ""
	}
	gathered, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range gathered {
		if _, ok := fams[f.GetName()]; !ok {
			t.Errorf("family %s is gathered but Names does not name it", f.GetName())
		}
		fams[f.GetName()] = strings.ToLower(f.GetType().String())
	}
	return fams
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: not a dashboard: %v", dashboardPath, err)
	}
	return d
}

func TestNamesIncludesVectorsWithoutChildren(t *testing.T) {
	m := metrics.New("nftables")
	names := m.Names()
	// No reload has failed: the vector has no child and Gather omits it.
	for _, want := range []string{"lbkit_config_reload_errors_total", "kubeproxy_sync_proxy_rules_duration_seconds", "process_cpu_seconds_total"} {
		if !slices.Contains(names, want) {
			t.Errorf("Names lacks %s: %v", want, names)
		}
	}
	if slices.Contains(names, "lbkit_services") {
		t.Errorf("Names has lbkit_services before ObserveServices")
	}
	m.ObserveServices(func() map[lb.Phase]int { return nil })
	if !slices.Contains(m.Names(), "lbkit_services") {
		t.Errorf("Names lacks lbkit_services after ObserveServices")
	}
	if !slices.IsSorted(names) {
		t.Errorf("Names is not sorted: %v", names)
	}
}

func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	fams := proxydFamilies(t)
	for _, err := range checkDashboard(d, fams) {
		t.Error(err)
	}
}

// TestDashboardCheckFails proves checkDashboard catches a wrong query: the
// dashboard with one metric name broken in each of several ways.
func TestDashboardCheckFails(t *testing.T) {
	fams := proxydFamilies(t)
	for _, tc := range []struct{ from, to, want string }{
		{"lbkit_services_programmed{", "lbkit_services_programed{", "lbkit_services_programed: not exported"},
		{"kubeproxy_network_programming_duration_seconds_bucket", "kubeproxy_network_programming_duration_seconds", "is a histogram"},
		{"lbkit_backends_programmed{", "lbkit_backends_programmed_bucket{", "lbkit_backends_programmed_bucket: not exported"},
		{"sum by (reason)", "summ by (reason)", "summ: not exported"},
		{"(rate(lbkit_sync_errors_total", "(rat(lbkit_sync_errors_total", `unknown function or keyword "rat"`},
		{`instance=~"$instance"}`, `instance=~"$node"}`, "variable $node is not defined"},
	} {
		t.Run(tc.to, func(t *testing.T) {
			d := loadDashboard(t)
			changed := false
			mutateExprs(d.Panels, func(expr string) string {
				if !changed && strings.Contains(expr, tc.from) {
					changed = true
					return strings.Replace(expr, tc.from, tc.to, 1)
				}
				return expr
			})
			if !changed {
				t.Fatalf("no query has %q to break", tc.from)
			}
			errs := checkDashboard(d, fams)
			if !slices.ContainsFunc(errs, func(err error) bool { return strings.Contains(err.Error(), tc.want) }) {
				t.Errorf("with %q for %q: errors %v, want one saying %q", tc.to, tc.from, errs, tc.want)
			}
		})
	}
}

func mutateExprs(panels []panel, f func(string) string) {
	for i := range panels {
		for j := range panels[i].Targets {
			panels[i].Targets[j].Expr = f(panels[i].Targets[j].Expr)
		}
		mutateExprs(panels[i].Panels, f)
	}
}

// checkDashboard returns what is wrong with d: missing title, uid or data
// source input; panels without the input as data source or without
// queries; queries of metrics proxyd does not export, of undefined
// variables; proxyd metrics no panel shows.
func checkDashboard(d dashboard, fams families) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if strings.TrimSpace(d.Title) == "" {
		fail("dashboard has no title")
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{1,40}$`).MatchString(d.UID) {
		fail("dashboard uid %q: want 1-40 letters, digits, '-' or '_'", d.UID)
	}
	if !slices.ContainsFunc(d.Inputs, func(in struct {
		Name     string
		Type     string
		PluginID string `json:"pluginId"`
	}) bool {
		return in.Name == dsInput && in.Type == "datasource" && in.PluginID == "prometheus"
	}) {
		fail("dashboard has no __inputs entry %s for a prometheus data source", dsInput)
	}

	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	used := map[string]bool{}
	checkQuery := func(where, expr string, names []string) {
		for _, ref := range varRefs(expr) {
			if !vars[ref] && !strings.HasPrefix(ref, "__") {
				fail("%s: variable $%s is not defined", where, ref)
			}
		}
		for _, name := range names {
			base, err := fams.resolve(name)
			if err != nil {
				fail("%s: %v", where, err)
				continue
			}
			used[base] = true
		}
	}

	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		where := fmt.Sprintf("variable $%s", v.Name)
		if !isInput(v.Datasource) {
			fail("%s: data source %+v, want the ${%s} input", where, v.Datasource, dsInput)
		}
		q, err := variableQuery(v.Query)
		if err == nil {
			var names []string
			if names, err = variableMetrics(q); err == nil {
				checkQuery(where, q, names)
			}
		}
		if err != nil {
			fail("%s: %v", where, err)
		}
	}

	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(panels []panel) {
		for _, p := range panels {
			where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
			if p.ID == 0 || ids[p.ID] {
				fail("%s: id missing or repeated", where)
			}
			ids[p.ID] = true
			if p.Type == "row" {
				if len(p.Targets) > 0 {
					fail("%s: a row with queries", where)
				}
				walk(p.Panels)
				continue
			}
			if !isInput(p.Datasource) {
				fail("%s: data source %+v, want the ${%s} input", where, p.Datasource, dsInput)
			}
			if len(p.Targets) == 0 {
				fail("%s: no queries", where)
			}
			refs := map[string]bool{}
			for _, tg := range p.Targets {
				twhere := fmt.Sprintf("%s query %s", where, tg.RefID)
				if tg.RefID == "" || refs[tg.RefID] {
					fail("%s: refId missing or repeated", twhere)
				}
				refs[tg.RefID] = true
				if tg.Datasource != nil && !isInput(tg.Datasource) {
					fail("%s: data source %+v, want the ${%s} input", twhere, tg.Datasource, dsInput)
				}
				if strings.TrimSpace(tg.Expr) == "" {
					fail("%s: empty expr", twhere)
					continue
				}
				names, err := metricNames(tg.Expr)
				if err != nil {
					fail("%s: %v", twhere, err)
					continue
				}
				if len(names) == 0 {
					fail("%s: selects no metric: %s", twhere, tg.Expr)
				}
				checkQuery(twhere, tg.Expr, names)
			}
		}
	}
	walk(d.Panels)

	// Every metric only proxyd exports has a panel; the Go runtime's and
	// the process's are shown only in part.
	for name := range fams {
		if (strings.HasPrefix(name, "lbkit_") || strings.HasPrefix(name, "kubeproxy_")) && !used[name] {
			fail("no panel shows %s", name)
		}
	}
	return errs
}

func isInput(ds *datasource) bool {
	return ds != nil && ds.Type == "prometheus" && ds.UID == "${"+dsInput+"}"
}

// resolve returns the family a series name in a query belongs to, or why
// proxyd exports no such series: a histogram's series are NAME_bucket,
// NAME_sum and NAME_count, a summary's NAME, NAME_sum and NAME_count.
func (f families) resolve(name string) (string, error) {
	if typ, ok := f[name]; ok {
		if typ == "histogram" {
			return "", fmt.Errorf("%s is a histogram: query %s_bucket, _sum or _count", name, name)
		}
		return name, nil
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		switch f[base] {
		case "histogram":
			return base, nil
		case "summary":
			if suffix != "_bucket" {
				return base, nil
			}
		}
	}
	return "", fmt.Errorf("%s: not exported by proxyd's metrics registry", name)
}

// varRefs returns the Grafana variables expr refers to: $name, ${name} or
// ${name:format}, and [[name]].
func varRefs(expr string) []string {
	var refs []string
	for _, m := range varRE.FindAllStringSubmatch(expr, -1) {
		refs = append(refs, m[1]+m[2]+m[3])
	}
	return refs
}

var varRE = regexp.MustCompile(`\$([A-Za-z_]\w*)|\$\{([A-Za-z_]\w*)(?::[^}]*)?\}|\[\[([A-Za-z_]\w*)\]\]`)

// variableQuery returns the query of a query variable, given as a string or
// as {"query": "..."}.
func variableQuery(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var obj struct{ Query string }
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Query == "" {
		return "", fmt.Errorf("query %s: want a string or {\"query\": ...}", raw)
	}
	return obj.Query, nil
}

// variableMetrics returns the metric names a Prometheus query variable
// selects: label_values(SELECTOR, LABEL), label_values(LABEL) (none) or
// query_result(EXPR).
func variableMetrics(q string) ([]string, error) {
	q = strings.TrimSpace(q)
	if inner, ok := call(q, "query_result"); ok {
		return metricNames(inner)
	}
	if inner, ok := call(q, "label_values"); ok {
		comma := lastTopLevelComma(inner)
		if comma < 0 {
			return nil, nil
		}
		return metricNames(inner[:comma])
	}
	return nil, fmt.Errorf("query %q: want label_values(...) or query_result(...)", q)
}

// call returns the argument text of q when q is fn(...).
func call(q, fn string) (string, bool) {
	rest, ok := strings.CutPrefix(q, fn)
	if !ok {
		return "", false
	}
	rest = strings.TrimSpace(rest)
	if !strings.HasPrefix(rest, "(") || !strings.HasSuffix(rest, ")") {
		return "", false
	}
	return rest[1 : len(rest)-1], true
}

// lastTopLevelComma returns the index of the last comma of s outside
// braces, brackets, parentheses and strings, or -1.
func lastTopLevelComma(s string) int {
	depth, last := 0, -1
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\'', '`':
			end, err := skipString(s, i)
			if err != nil {
				return -1
			}
			i = end - 1
		case '(', '{', '[':
			depth++
		case ')', '}', ']':
			depth--
		case ',':
			if depth == 0 {
				last = i
			}
		}
	}
	return last
}

// metricNames returns the metric names a PromQL expression selects, in
// order: the identifiers that are neither functions, aggregations nor
// keywords, outside label matchers ({...}), ranges ([...]), grouping
// labels (by/without/on/ignoring/group_left/group_right (...)), strings,
// numbers, durations and Grafana variables ($var, ${var}). An identifier
// called like a function that PromQL does not know is an error.
func metricNames(expr string) ([]string, error) {
	var names []string
	s := expr
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#': // a comment, to the end of the line
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			end, err := skipString(s, i)
			if err != nil {
				return nil, err
			}
			i = end
		case c == '{':
			end, err := skipGroup(s, i, '{', '}')
			if err != nil {
				return nil, err
			}
			i = end
		case c == '[':
			end, err := skipGroup(s, i, '[', ']')
			if err != nil {
				return nil, err
			}
			i = end
		case c == '$':
			i++
			if i < len(s) && s[i] == '{' {
				end, err := skipGroup(s, i, '{', '}')
				if err != nil {
					return nil, err
				}
				i = end
			} else {
				for i < len(s) && isIdentChar(s[i]) {
					i++
				}
			}
		case isDigit(c) || (c == '.' && i+1 < len(s) && isDigit(s[i+1])):
			// A number (0.99, 1e-3, 0x1f, Inf) or duration (5m, 1h30m).
			for i < len(s) && (isIdentChar(s[i]) || s[i] == '.' ||
				((s[i] == '+' || s[i] == '-') && (s[i-1] == 'e' || s[i-1] == 'E'))) {
				i++
			}
		case isIdentStart(c):
			start := i
			for i < len(s) && (isIdentChar(s[i]) || s[i] == ':') {
				i++
			}
			id := s[start:i]
			lower := strings.ToLower(id)
			next := i
			for next < len(s) && (s[next] == ' ' || s[next] == '\t' || s[next] == '\n' || s[next] == '\r') {
				next++
			}
			called := next < len(s) && s[next] == '('
			switch {
			case groupingKeywords[lower]:
				if called {
					end, err := skipGroup(s, next, '(', ')')
					if err != nil {
						return nil, err
					}
					i = end
				}
			case keywords[lower] || aggregations[lower]:
			case called && functions[id]:
			case called:
				return nil, fmt.Errorf("unknown function or keyword %q in %s", id, expr)
			default:
				names = append(names, id)
			}
		default: // operators, parentheses, commas
			i++
		}
	}
	return names, nil
}

// skipString returns the index just past the string literal starting at
// s[i] (", ' or `; the first two with backslash escapes).
func skipString(s string, i int) (int, error) {
	quote := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && quote != '`':
			j++
		case s[j] == quote:
			return j + 1, nil
		}
	}
	return 0, errors.New("unterminated string in " + s)
}

// skipGroup returns the index just past the close that balances the open
// at s[i], skipping strings inside.
func skipGroup(s string, i int, open, close byte) (int, error) {
	depth := 0
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '"', '\'', '`':
			end, err := skipString(s, j)
			if err != nil {
				return 0, err
			}
			j = end - 1
		case open:
			depth++
		case close:
			depth--
			if depth == 0 {
				return j + 1, nil
			}
		}
	}
	return 0, fmt.Errorf("unbalanced %c in %s", open, s)
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
func isIdentChar(c byte) bool  { return isIdentStart(c) || isDigit(c) }

// groupingKeywords take a parenthesised list of label names.
var groupingKeywords = set("by", "without", "on", "ignoring", "group_left", "group_right")

// keywords are PromQL's other reserved words (case-insensitive).
var keywords = set("and", "or", "unless", "bool", "offset", "atan2", "inf", "nan")

// aggregations are PromQL's aggregation operators (case-insensitive).
var aggregations = set("sum", "avg", "min", "max", "count", "group", "stddev", "stdvar",
	"topk", "bottomk", "quantile", "count_values", "limitk", "limit_ratio")

// functions are PromQL's functions.
var functions = set(
	"abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
	"avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
	"count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
	"delta", "deriv", "double_exponential_smoothing", "end", "exp", "floor",
	"histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile",
	"histogram_stddev", "histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta",
	"increase", "info", "irate", "label_join", "label_replace", "last_over_time", "ln", "log10",
	"log2", "mad_over_time", "max_over_time", "min_over_time", "minute", "month", "pi",
	"predict_linear", "present_over_time", "quantile_over_time", "rad", "rate", "resets",
	"round", "scalar", "sgn", "sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc",
	"sort_desc", "sqrt", "start", "stddev_over_time", "stdvar_over_time", "sum_over_time",
	"tan", "tanh", "time", "timestamp", "vector", "year")

func set(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`histogram_quantile(0.99, sum by (instance, le) (rate(a_bucket{job=~"$job", le!="+Inf"}[$__rate_interval])))`, []string{"a_bucket"}},
		{`sum(rate(a_total[5m])) by (kind) / ignoring (kind) group_left (node) b offset 1h`, []string{"a_total", "b"}},
		{`max(time() - c{instance=~"${instance:regex}"}) > bool 1e-3`, []string{"c"}},
		{`label_replace(d, "dst", "$1", "src", "(.*)") or on () vector(0)`, []string{"d"}},
		{`SUM BY (x) (e) # by (f) g`, []string{"e"}},
		{`rate(f[5m:30s]) * 2 unless g`, []string{"f", "g"}},
		{`sum without (job) (ns:h:rate5m)`, []string{"ns:h:rate5m"}},
	} {
		got, err := metricNames(tc.expr)
		if err != nil {
			t.Errorf("metricNames(%q): %v", tc.expr, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
	for _, bad := range []string{`rat(a[5m])`, `a{job="x"`, `sum(a) by (job`, `a{job="x}`} {
		if got, err := metricNames(bad); err == nil {
			t.Errorf("metricNames(%q) = %q, want an error", bad, got)
		}
	}
}

func TestVariableMetrics(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{`label_values(a_total, job)`, []string{"a_total"}},
		{`label_values(a_total{job=~"$job", x=","}, instance)`, []string{"a_total"}},
		{`label_values(job)`, nil},
		{`query_result(topk(5, b))`, []string{"b"}},
	} {
		got, err := variableMetrics(tc.query)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("variableMetrics(%q) = %q, %v; want %q", tc.query, got, err, tc.want)
		}
	}
	if _, err := variableMetrics(`metrics(lbkit_.*)`); err == nil {
		t.Errorf("variableMetrics accepted metrics(...)")
	}
}

func TestResolve(t *testing.T) {
	fams := families{"h": "histogram", "s": "summary", "c_total": "counter", "v": ""}
	for name, want := range map[string]string{
		"h_bucket": "h", "h_sum": "h", "h_count": "h",
		"s": "s", "s_sum": "s", "s_count": "s",
		"c_total": "c_total", "v": "v",
	} {
		if got, err := fams.resolve(name); err != nil || got != want {
			t.Errorf("resolve(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
	for _, name := range []string{"h", "s_bucket", "c_total_bucket", "c_total_count", "v_sum", "nope"} {
		if got, err := fams.resolve(name); err == nil {
			t.Errorf("resolve(%s) = %q, want an error", name, got)
		}
	}
}
