package file

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lbkit/lbkit/lb"
)

// svcYAML is a valid one-service file that error cases below edit.
const svcYAML = `services:
  - name: web
    frontends:
      - {ip: 198.18.0.1, port: 80}
    endpoints:
      - {ip: 198.18.1.1, port: 8080}
`

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		// want are substrings of the error; the first one is usually
		// "t.yaml:LINE: FIELD".
		want []string
	}{
		{"syntax", "services: [\n  - name: a\n", []string{"t.yaml:", "invalid YAML"}},
		{"syntax line", "services:\n  - name: a\n  frontends\n    - x: 1\n", []string{"t.yaml:3: invalid YAML: could not find expected ':'"}},
		{"empty", "", []string{"t.yaml: the file is empty"}},
		{"only comments", "# nothing\n", []string{"the file is empty"}},
		{"two documents", "services: []\n---\nservices: []\n", []string{"t.yaml:2: a second YAML document"}},
		{"only null", "---\n~\n", []string{"t.yaml: the file is empty"}},
		{"root list", "- name: a\n", []string{"t.yaml:1: want a mapping (fields: services), got a list"}},
		{"root scalar", "hello\n", []string{`t.yaml:1: want a mapping (fields: services), got the string "hello"`}},
		{"no services", "{}\n", []string{"t.yaml:1: services: missing"}},
		{"unknown top field", "services: []\nservice: []\n", []string{"t.yaml:2: service: unknown field (known: services)"}},
		{"services not a list", "services: 3\n", []string{"t.yaml:1: services: want a list, got 3"}},
		{"service not a mapping", "services:\n  - web\n", []string{`t.yaml:2: services[0]: want a mapping`, `got the string "web"`}},
		{"missing name", "services:\n  - frontends: [{ip: 198.18.0.1, port: 80}]\n", []string{"t.yaml:2: services[0].name: missing"}},
		{"empty name", "services:\n  - name: \"\"\n    frontends: [{ip: 198.18.0.1, port: 80}]\n", []string{"t.yaml:2: services[0].name: must not be empty"}},
		{"name not a string", "services:\n  - name: [a]\n", []string{"t.yaml:2: services[0].name: want a string, got a list"}},
		{"name with space", "services:\n  - name: my web\n    frontends: [{ip: 198.18.0.1, port: 80}]\n", []string{"t.yaml:2: services[0].name:", "spaces"}},
		{"duplicate name", svcYAML + "  - name: web\n    frontends: [{ip: 198.18.0.2, port: 80}]\n",
			[]string{`t.yaml:7: services[1].name: "web" is already the name of services[0] (line 2)`}},
		{"duplicate field", "services:\n  - name: a\n    name: b\n", []string{"t.yaml:3: services[0].name: duplicate field (first at line 2)"}},
		{"unknown field hint", strings.Replace(svcYAML, "    frontends:", "    Scheduler: rr\n    frontends:", 1),
			[]string{"t.yaml:3: services[0].Scheduler: unknown field (did you mean scheduler?)"}},
		{"extra top field", "base: &b {port: 80}\nservices: []\n", []string{"t.yaml:1: base: unknown field"}},
		{"merge key", "services:\n  - <<: {name: a}\n    frontends: [{ip: 198.18.0.1, port: 80}]\n", []string{"t.yaml:2: services[0].<<: YAML merge keys (<<) are not supported"}},
		{"numeric key", "services:\n  - 5: a\n", []string{"t.yaml:2: services[0]: want a field name, got 5"}},
		{"unknown scheduler", strings.Replace(svcYAML, "    frontends:", "    scheduler: fastest\n    frontends:", 1),
			[]string{`t.yaml:3: services[0].scheduler: unknown scheduler "fastest" (want random, rr,`, "maglev)"}},
		{"bad affinity", strings.Replace(svcYAML, "    frontends:", "    sessionAffinity: Cookie\n    frontends:", 1),
			[]string{`t.yaml:3: services[0].sessionAffinity: unknown session affinity "Cookie" (want None or ClientIP)`}},
		{"timeout not a duration", strings.Replace(svcYAML, "    frontends:", "    sessionAffinity: ClientIP\n    sessionAffinityTimeout: 3 hours\n    frontends:", 1),
			[]string{`t.yaml:4: services[0].sessionAffinityTimeout: "3 hours" is not a positive duration`}},
		{"timeout integer", strings.Replace(svcYAML, "    frontends:", "    sessionAffinity: ClientIP\n    sessionAffinityTimeout: 600\n    frontends:", 1),
			[]string{`t.yaml:4: services[0].sessionAffinityTimeout: want a duration such as 3h or 10800s, got 600`}},
		{"timeout too long", strings.Replace(svcYAML, "    frontends:", "    sessionAffinity: ClientIP\n    sessionAffinityTimeout: 25h\n    frontends:", 1),
			[]string{`t.yaml:4: services[0].sessionAffinityTimeout: 25h0m0s: must be between 1s and 24h0m0s`}},
		{"timeout without affinity", strings.Replace(svcYAML, "    frontends:", "    sessionAffinityTimeout: 1h\n    frontends:", 1),
			[]string{`t.yaml:3: services[0].sessionAffinityTimeout: set, but sessionAffinity is not ClientIP`}},
		{"bad external policy", strings.Replace(svcYAML, "    frontends:", "    externalTrafficPolicy: Nearest\n    frontends:", 1),
			[]string{`t.yaml:3: services[0].externalTrafficPolicy: unknown traffic policy "Nearest" (want Cluster or Local)`}},
		{"bad internal policy", strings.Replace(svcYAML, "    frontends:", "    internalTrafficPolicy: true\n    frontends:", 1),
			[]string{`t.yaml:3: services[0].internalTrafficPolicy: want a string, got true`}},
		{"frontends not a list", "services:\n  - name: a\n    frontends: {ip: 198.18.0.1}\n", []string{"t.yaml:3: services[0].frontends: want a list, got a mapping"}},
		{"no frontends", "services:\n  - name: a\n    frontends: []\n", []string{"t.yaml:3: services[0].frontends: []: a service needs at least one frontend"}},
		{"no frontends field", "services:\n  - name: a\n", []string{"t.yaml:2: services[0].frontends: []: a service needs at least one frontend"}},
		{"frontend missing ip", "services:\n  - name: a\n    frontends:\n      - port: 80\n", []string{"t.yaml:4: services[0].frontends[0].ip: missing"}},
		{"frontend missing port", "services:\n  - name: a\n    frontends:\n      - ip: 198.18.0.1\n", []string{"t.yaml:4: services[0].frontends[0].port: missing"}},
		{"frontend bad ip", strings.Replace(svcYAML, "198.18.0.1", "198.18.0", 1), []string{`t.yaml:4: services[0].frontends[0].ip: "198.18.0" is not an IP address`}},
		{"frontend port range", strings.Replace(svcYAML, "port: 80}", "port: 70000}", 1), []string{"t.yaml:4: services[0].frontends[0].port: 70000 is out of range 1-65535"}},
		{"frontend port zero", strings.Replace(svcYAML, "port: 80}", "port: 0}", 1), []string{"t.yaml:4: services[0].frontends[0].port: 0 is out of range 1-65535"}},
		{"frontend port huge", strings.Replace(svcYAML, "port: 80}", "port: 123456789012345678901234567890}", 1), []string{"t.yaml:4: services[0].frontends[0].port: 123456789012345678901234567890 is out of range"}},
		{"frontend port string", strings.Replace(svcYAML, "port: 80}", `port: "80"}`, 1), []string{`t.yaml:4: services[0].frontends[0].port: want an integer, got the string "80"`}},
		{"frontend port float", strings.Replace(svcYAML, "port: 80}", `port: 80.5}`, 1), []string{`t.yaml:4: services[0].frontends[0].port: want an integer, got 80.5`}},
		{"frontend protocol", strings.Replace(svcYAML, "port: 80}", "port: 80, protocol: icmp}", 1), []string{`t.yaml:4: services[0].frontends[0].protocol: unknown protocol "icmp"`}},
		{"frontend kind", strings.Replace(svcYAML, "port: 80}", "port: 80, kind: Ingress}", 1), []string{`t.yaml:4: services[0].frontends[0].kind: unknown frontend kind "Ingress"`}},
		{"frontend unknown field", strings.Replace(svcYAML, "port: 80}", "port: 80, proto: udp}", 1), []string{`t.yaml:4: services[0].frontends[0].proto: unknown field (known: ip, port, protocol, kind)`}},
		{"frontend unspecified ip", strings.Replace(svcYAML, "198.18.0.1", "0.0.0.0", 1), []string{`t.yaml:4: services[0].frontends[0].ip: 0.0.0.0: unspecified address`}},
		{"frontend duplicate", "services:\n  - name: a\n    frontends:\n      - {ip: 198.18.0.1, port: 80}\n      - {ip: 198.18.0.1, port: 80, kind: NodePort}\n",
			[]string{"t.yaml:5: services[0].frontends[1]: 198.18.0.1:80/tcp: duplicates frontends[0]"}},
		{"frontend shared", svcYAML + "  - name: other\n    frontends:\n      - {ip: 198.18.0.2, port: 80}\n      - {ip: 198.18.0.1, port: 80}\n",
			[]string{`t.yaml:10: services[1].frontends[1]: 198.18.0.1:80/tcp is already a frontend of services[0], service "web" (line 4)`}},
		{"endpoints not a list", strings.Replace(svcYAML, "    endpoints:\n      - {ip: 198.18.1.1, port: 8080}\n", "    endpoints: 198.18.1.1\n", 1),
			[]string{`t.yaml:5: services[0].endpoints: want a list, got the string "198.18.1.1"`}},
		{"endpoint missing ip", strings.Replace(svcYAML, "{ip: 198.18.1.1, port: 8080}", "{port: 8080}", 1), []string{"t.yaml:6: services[0].endpoints[0].ip: missing"}},
		{"endpoint missing port", strings.Replace(svcYAML, "{ip: 198.18.1.1, port: 8080}", "{ip: 198.18.1.1}", 1), []string{"t.yaml:6: services[0].endpoints[0].port: missing"}},
		{"endpoint bad ip", strings.Replace(svcYAML, "198.18.1.1", "localhost", 1), []string{`t.yaml:6: services[0].endpoints[0].ip: "localhost" is not an IP address`}},
		{"endpoint port", strings.Replace(svcYAML, "port: 8080", "port: -1", 1), []string{"t.yaml:6: services[0].endpoints[0].port: -1 is out of range 1-65535"}},
		{"endpoint weight zero", strings.Replace(svcYAML, "port: 8080", "port: 8080, weight: 0", 1), []string{"t.yaml:6: services[0].endpoints[0].weight: 0 is out of range 1-65535"}},
		{"endpoint weight big", strings.Replace(svcYAML, "port: 8080", "port: 8080, weight: 65536", 1), []string{"t.yaml:6: services[0].endpoints[0].weight: 65536 is out of range 1-65535"}},
		{"endpoint ready", strings.Replace(svcYAML, "port: 8080", "port: 8080, ready: yes", 1), []string{`t.yaml:6: services[0].endpoints[0].ready: want true or false, got the string "yes"`}},
		{"endpoint serving", strings.Replace(svcYAML, "port: 8080", "port: 8080, serving: 1", 1), []string{`t.yaml:6: services[0].endpoints[0].serving: want true or false, got 1`}},
		{"endpoint terminating", strings.Replace(svcYAML, "port: 8080", "port: 8080, terminating: null", 1), []string{`t.yaml:6: services[0].endpoints[0].terminating: want true or false, got null`}},
		{"endpoint node", strings.Replace(svcYAML, "port: 8080", "port: 8080, node: {a: b}", 1), []string{`t.yaml:6: services[0].endpoints[0].node: want a string, got a mapping`}},
		{"endpoint zone", strings.Replace(svcYAML, "port: 8080", "port: 8080, zone: [a]", 1), []string{`t.yaml:6: services[0].endpoints[0].zone: want a string, got a list`}},
		{"endpoint forZones", strings.Replace(svcYAML, "port: 8080", "port: 8080, forZones: z1", 1), []string{`t.yaml:6: services[0].endpoints[0].forZones: want a list`}},
		{"endpoint forNodes item", strings.Replace(svcYAML, "port: 8080", `port: 8080, forNodes: [""]`, 1), []string{`t.yaml:6: services[0].endpoints[0].forNodes[0]: want a non-empty string`}},
		{"endpoint unknown field", strings.Replace(svcYAML, "port: 8080", "port: 8080, healthy: true", 1), []string{`t.yaml:6: services[0].endpoints[0].healthy: unknown field`}},
		{"endpoint multicast", strings.Replace(svcYAML, "198.18.1.1", "224.0.0.1", 1), []string{`t.yaml:6: services[0].endpoints[0].ip: 224.0.0.1: multicast address`}},
		{"endpoint family", strings.Replace(svcYAML, "198.18.1.1", "2001:2::1", 1), []string{`t.yaml:6: services[0].endpoints[0].ip: 2001:2::1: mixed families`}},
		{"endpoint duplicate", svcYAML + "      - {ip: 198.18.1.1, port: 8080, weight: 3}\n", []string{`t.yaml:7: services[0].endpoints[1]: 198.18.1.1:8080: duplicates endpoints[0]`}},
		{"second service", svcYAML + "  - name: db\n    frontends:\n      - ip: 198.18.0.9\n        port: 5432\n      - ip: 198.18.0.9\n        port: 70000\n",
			[]string{"t.yaml:12: services[1].frontends[1].port: 70000 is out of range 1-65535"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, err := Parse([]byte(tt.in), "t.yaml")
			if err == nil {
				t.Fatalf("Parse succeeded with %d entries; want an error containing %q", len(entries), tt.want)
			}
			if entries != nil {
				t.Errorf("Parse returned %d entries with an error", len(entries))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
			var e *Error
			if !errors.As(err, &e) || e.File != "t.yaml" {
				t.Errorf("error %v holds no *Error for t.yaml", err)
			}
		})
	}
}

// TestParseErrorMessage checks the exact format the documentation promises.
func TestParseErrorMessage(t *testing.T) {
	in := svcYAML + `  - name: db
    # the second service
    frontends:
      - ip: 198.18.0.9

        port: 70000
`
	_, err := Parse([]byte(in), "services.yaml")
	want := "services.yaml:12: services[1].frontends[0].port: 70000 is out of range 1-65535"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want exactly %q", err, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.Line != 12 || e.Field != "services[1].frontends[0].port" {
		t.Fatalf("*Error = %+v, want line 12, field services[1].frontends[0].port", e)
	}
}

func TestParseValidationErrorUnwraps(t *testing.T) {
	_, err := Parse([]byte(strings.Replace(svcYAML, "198.18.1.1", "2001:2::1", 1)), "t.yaml")
	var verr *lb.ValidationError
	if !errors.As(err, &verr) || verr.Field != "endpoints[0].ip" {
		t.Fatalf("error %v does not wrap the *lb.ValidationError of endpoints[0].ip", err)
	}
}

func TestParseReportsEveryProblemInLineOrder(t *testing.T) {
	in := `services:
  - name: a
    frontends: [{ip: 198.18.0.1, port: 0}]
  - name: b
    scheduler: nope
    frontends: [{ip: 198.18.0.2, port: 80, protocol: icmp}]
`
	_, err := Parse([]byte(in), "t.yaml")
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error %v is not an ErrorList", err)
	}
	var lines []int
	for _, e := range list {
		lines = append(lines, e.Line)
	}
	if !reflect.DeepEqual(lines, []int{3, 5, 6}) {
		t.Fatalf("problems on lines %v, want [3 5 6]:\n%v", lines, err)
	}
}

func TestParseCapsTheNumberOfProblems(t *testing.T) {
	var b strings.Builder
	b.WriteString("services:\n  - name: a\n    frontends:\n")
	for range 30 {
		b.WriteString("      - {ip: 198.18.0.1, port: 0}\n")
	}
	_, err := Parse([]byte(b.String()), "t.yaml")
	var list ErrorList
	if !errors.As(err, &list) || len(list) != maxErrors+1 {
		t.Fatalf("got %d problems, want %d and a count of the rest:\n%v", len(list), maxErrors+1, err)
	}
	if !strings.Contains(err.Error(), "10 more problem(s) not shown") {
		t.Fatalf("error does not count the dropped problems:\n%v", err)
	}
}

func TestParseDefaults(t *testing.T) {
	in := `services:
  - name: web
    frontends:
      - {ip: 198.18.0.1, port: 80}
    endpoints:
      - {ip: 198.18.1.1, port: 8080}
      - {ip: 198.18.1.2, port: 8080, ready: false}
  - name: sticky
    sessionAffinity: clientip
    frontends:
      - {ip: 198.18.0.2, port: 80}
  - name: empty
    frontends:
      - {ip: 198.18.0.3, port: 80}
    endpoints:
`
	got, err := Parse([]byte(in), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fe := func(ip string) []lb.Frontend {
		return []lb.Frontend{{Addr: netip.MustParseAddr(ip), Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP}}
	}
	want := []Entry{
		{
			Service: &lb.Service{Key: "web", Scheduler: lb.Random, Frontends: fe("198.18.0.1")},
			Endpoints: []lb.Endpoint{
				{Addr: netip.MustParseAddrPort("198.18.1.1:8080"), Ready: true, Serving: true, Weight: 1},
				// serving follows ready when not given
				{Addr: netip.MustParseAddrPort("198.18.1.2:8080"), Ready: false, Serving: false, Weight: 1},
			},
		},
		{Service: &lb.Service{Key: "sticky", Scheduler: lb.Random, Frontends: fe("198.18.0.2"),
			Affinity: lb.SessionAffinity{Type: lb.AffinityClientIP, Timeout: 10800 * time.Second}}},
		{Service: &lb.Service{Key: "empty", Scheduler: lb.Random, Frontends: fe("198.18.0.3")}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse =\n%s\nwant\n%s", dump(got), dump(want))
	}
}

func TestParseEveryField(t *testing.T) {
	in := `services:
  - name: ns/web/http
    scheduler: WRR
    sessionAffinity: ClientIP
    sessionAffinityTimeout: 90m
    externalTrafficPolicy: Local
    internalTrafficPolicy: local
    frontends:
      - {ip: 198.18.0.1, port: 80, protocol: tcp, kind: ClusterIP}
      - {ip: "2001:2::1", port: 80, protocol: UDP, kind: loadbalancer}
      - {ip: 0.0.0.0, port: 30080, protocol: sctp, kind: NodePort}
      - {ip: 198.18.0.5, port: 80, kind: ExternalIP}
    endpoints:
      - {ip: 198.18.1.1, port: 8080, weight: 65535, node: node-a, zone: "1", ready: false, serving: true, terminating: true}
      - {ip: "2001:2::10", port: 8080, forZones: [z2, z1], forNodes: [node-b]}
  - name: none
    sessionAffinity: None
    internalTrafficPolicy: Cluster
    externalTrafficPolicy: Cluster
    frontends: [{ip: 198.18.0.2, port: 443}]
`
	got, err := Parse([]byte(in), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{
			Service: &lb.Service{
				Key:       "ns/web/http",
				Scheduler: lb.WRR,
				Affinity:  lb.SessionAffinity{Type: lb.AffinityClientIP, Timeout: 90 * time.Minute},
				Frontends: []lb.Frontend{
					{Addr: netip.MustParseAddr("198.18.0.1"), Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP},
					{Addr: netip.MustParseAddr("2001:2::1"), Port: 80, Protocol: lb.UDP, Kind: lb.LoadBalancer},
					{Addr: netip.MustParseAddr("0.0.0.0"), Port: 30080, Protocol: lb.SCTP, Kind: lb.NodePort},
					{Addr: netip.MustParseAddr("198.18.0.5"), Port: 80, Protocol: lb.TCP, Kind: lb.ExternalIP},
				},
				ExternalPolicy: lb.PolicyLocal,
				InternalPolicy: lb.PolicyLocal,
			},
			Endpoints: []lb.Endpoint{
				{Addr: netip.MustParseAddrPort("198.18.1.1:8080"), Weight: 65535, NodeName: "node-a", Zone: "1", Serving: true, Terminating: true},
				{Addr: netip.MustParseAddrPort("[2001:2::10]:8080"), Weight: 1, Ready: true, Serving: true,
					Hints: lb.NewHints([]string{"z1", "z2"}, []string{"node-b"})},
			},
		},
		{Service: &lb.Service{Key: "none", Scheduler: lb.Random,
			Frontends: []lb.Frontend{{Addr: netip.MustParseAddr("198.18.0.2"), Port: 443, Protocol: lb.TCP, Kind: lb.ClusterIP}}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse =\n%s\nwant\n%s", dump(got), dump(want))
	}
}

func TestParseJSON(t *testing.T) {
	yamlIn := `services:
  - name: web
    scheduler: rr
    frontends: [{ip: 198.18.0.1, port: 80, protocol: udp}]
    endpoints: [{ip: 198.18.1.1, port: 8080, weight: 2, ready: false, serving: true}]
`
	jsonIn := "{\n\t\"services\": [\n\t\t{\n\t\t\t\"name\": \"web\",\n\t\t\t\"scheduler\": \"rr\",\n" +
		"\t\t\t\"frontends\": [{\"ip\": \"198.18.0.1\", \"port\": 80, \"protocol\": \"udp\"}],\n" +
		"\t\t\t\"endpoints\": [{\"ip\": \"198.18.1.1\", \"port\": 8080, \"weight\": 2, \"ready\": false, \"serving\": true}]\n" +
		"\t\t}\n\t]\n}\n"
	fromYAML, err := Parse([]byte(yamlIn), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := Parse([]byte(jsonIn), "t.json")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromJSON, fromYAML) {
		t.Fatalf("JSON parsed to\n%s\nYAML to\n%s", dump(fromJSON), dump(fromYAML))
	}

	bad := strings.Replace(jsonIn, `"port": 8080`, `"port": 808000`, 1)
	_, err = Parse([]byte(bad), "t.json")
	if want := "t.json:7: services[0].endpoints[0].port: 808000 is out of range 1-65535"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want %q", err, want)
	}
	_, err = Parse([]byte(`{"services": [], "services": []}`), "t.json")
	if want := "t.json:1: services: duplicate field"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want %q", err, want)
	}
}

func TestParseAnchors(t *testing.T) {
	in := `services:
  - name: a
    frontends: [{ip: 198.18.0.1, port: 80}]
    endpoints: &pool
      - {ip: 198.18.1.1, port: 8080}
      - {ip: 198.18.1.2, port: 8080}
  - name: b
    frontends: [{ip: 198.18.0.2, port: 80}]
    endpoints: *pool
`
	got, err := Parse([]byte(in), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !reflect.DeepEqual(got[0].Endpoints, got[1].Endpoints) || len(got[1].Endpoints) != 2 {
		t.Fatalf("aliased endpoints not shared:\n%s", dump(got))
	}
}

func TestParseNoServices(t *testing.T) {
	// A final "---" (an empty trailing document) is not a second document.
	for _, in := range []string{"services: []\n", "services:\n", `{"services": []}`, "services: []\n---\n"} {
		got, err := Parse([]byte(in), "t.yaml")
		if err != nil || len(got) != 0 {
			t.Errorf("Parse(%q) = %d entries, %v; want none and no error", in, len(got), err)
		}
	}
}
