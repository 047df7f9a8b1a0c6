package file

import (
	"net/netip"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/lbkit/lbkit/internal/yamlline"
	"github.com/lbkit/lbkit/lb"
)

// Entry is one service of a services file together with its endpoints.
type Entry struct {
	Service   *lb.Service
	Endpoints []lb.Endpoint
}

// located is an entry with the lines of its fields, so that errors found
// after decoding (by lb validation or by a Sink) can point into the file.
type located struct {
	Entry
	path  string         // "services[i]"
	line  int            // line of the service
	lines yamlline.Lines // field path relative to the service -> line
}

// lineOf returns the line of a field path relative to the service, or of
// its nearest enclosing field, or of the service.
func (l *located) lineOf(field string) int {
	if line, ok := l.lines.Find(field); ok {
		return line
	}
	return l.line
}

// The fields each mapping of the file may hold, in documentation order.
func topFields() []string { return []string{"services"} }
func serviceFields() []string {
	return []string{"name", "scheduler", "sessionAffinity", "sessionAffinityTimeout",
		"externalTrafficPolicy", "internalTrafficPolicy", "frontends", "endpoints"}
}
func frontendFields() []string { return []string{"ip", "port", "protocol", "kind"} }
func endpointFields() []string {
	return []string{"ip", "port", "weight", "node", "zone", "forZones", "forNodes", "ready", "serving", "terminating"}
}

// Parse decodes a services file (YAML, or JSON, which is read as YAML) and
// validates every service and its endpoints with lb's rules. filename only
// labels errors. On any problem it returns no entries and an ErrorList whose
// every *Error names file, line and field, for example
//
//	services.yaml:14: services[1].frontends[0].port: 70000 is out of range 1-65535
func Parse(data []byte, filename string) ([]Entry, error) {
	ls, err := parse(data, filename)
	if err != nil {
		return nil, err
	}
	entries := make([]Entry, len(ls))
	for i, l := range ls {
		entries[i] = l.Entry
	}
	return entries, nil
}

func parse(data []byte, filename string) ([]*located, error) {
	d := newDecoder(filename)
	root, ok := d.document(data)
	if !ok {
		return nil, d.result()
	}
	var items []*yaml.Node
	found := false
	if d.mapping(root, "", topFields(), func(f yamlline.Field) {
		found = true
		items, _ = d.sequence(f.Value, f.Path)
	}) && !found {
		d.errorf(root, "services", "missing (write \"services: []\" for a file without services)")
	}
	var out []*located
	for i, item := range items {
		if l := d.service(item, yamlline.Index("services", i)); l != nil {
			out = append(out, l)
		}
	}
	d.crossCheck(out)
	for _, l := range out {
		d.validate(l)
	}
	if err := d.result(); err != nil {
		return nil, err
	}
	return out, nil
}

// service decodes one item of the services list; nil when it has errors.
func (d *decoder) service(n *yaml.Node, path string) *located {
	before := d.errs.Count()
	l := &located{path: path, line: n.Line, lines: make(yamlline.Lines)}
	svc := &lb.Service{Scheduler: lb.Random}
	var eps []lb.Endpoint
	var named bool
	var timeoutKey *yaml.Node
	d.mapping(n, path, serviceFields(), func(fd yamlline.Field) {
		key, k, v, f := fd.Name, fd.Key, fd.Value, fd.Path
		l.lines.Set(key, k.Line)
		switch key {
		case "name":
			named = true
			if s, ok := d.str(v, f); ok {
				if s == "" {
					d.errorf(v, f, "must not be empty")
				}
				svc.Key = lb.ServiceKey(s)
			}
		case "scheduler":
			if s, ok := d.str(v, f); ok {
				svc.Scheduler = lb.Scheduler(strings.ToLower(s))
				if !slices.Contains(lb.Schedulers(), svc.Scheduler) {
					d.errorf(v, f, "unknown scheduler %q (want %s)", s, orList(schedulerNames()))
				}
			}
		case "sessionAffinity":
			i, _ := d.choice(v, f, "session affinity", []string{"None", "ClientIP"})
			svc.Affinity.Type = lb.AffinityType(i)
		case "sessionAffinityTimeout":
			timeoutKey = k
			svc.Affinity.Timeout, _ = d.duration(v, f)
		case "externalTrafficPolicy":
			i, _ := d.choice(v, f, "traffic policy", []string{"Cluster", "Local"})
			svc.ExternalPolicy = lb.TrafficPolicy(i)
		case "internalTrafficPolicy":
			i, _ := d.choice(v, f, "traffic policy", []string{"Cluster", "Local"})
			svc.InternalPolicy = lb.TrafficPolicy(i)
		case "frontends":
			items, _ := d.sequence(v, f)
			for i, item := range items {
				svc.Frontends = append(svc.Frontends, d.frontend(item, yamlline.Index(f, i), yamlline.Index(key, i), l.lines))
			}
		case "endpoints":
			items, _ := d.sequence(v, f)
			for i, item := range items {
				eps = append(eps, d.endpoint(item, yamlline.Index(f, i), yamlline.Index(key, i), l.lines))
			}
		}
	})
	if n.Kind == yaml.MappingNode && !named {
		d.errorf(n, yamlline.Join(path, "name"), "missing (every service needs a name, its key)")
	}
	if svc.Affinity.Type == lb.AffinityClientIP && svc.Affinity.Timeout == 0 {
		svc.Affinity.Timeout = lb.DefaultAffinityTimeout
	}
	if timeoutKey != nil && svc.Affinity.Type != lb.AffinityClientIP {
		d.errorf(timeoutKey, yamlline.Join(path, "sessionAffinityTimeout"), "set, but sessionAffinity is not ClientIP")
	}
	if d.errs.Count() > before {
		return nil
	}
	l.Entry = Entry{Service: svc, Endpoints: eps}
	return l
}

// frontend decodes one item of a frontends list. path is its absolute
// field path, rel its path relative to the service (a key of lines).
func (d *decoder) frontend(n *yaml.Node, path, rel string, lines yamlline.Lines) lb.Frontend {
	lines.Set(rel, n.Line)
	fe := lb.Frontend{Protocol: lb.TCP, Kind: lb.ClusterIP}
	var hasIP, hasPort bool
	d.mapping(n, path, frontendFields(), func(fd yamlline.Field) {
		key, v, f := fd.Name, fd.Value, fd.Path
		lines.Set(yamlline.Join(rel, key), fd.Key.Line)
		switch key {
		case "ip":
			hasIP = true
			fe.Addr, _ = d.ip(v, f)
		case "port":
			hasPort = true
			p, _ := d.integer(v, f, 1, 65535)
			fe.Port = uint16(p)
		case "protocol":
			if s, ok := d.str(v, f); ok {
				p, err := lb.ParseProtocol(s)
				if err != nil {
					d.errorf(v, f, "%v", err)
				}
				fe.Protocol = p
			}
		case "kind":
			if s, ok := d.str(v, f); ok {
				kind, err := lb.ParseFrontendKind(s)
				if err != nil {
					d.errorf(v, f, "%v", err)
				}
				fe.Kind = kind
			}
		}
	})
	if n.Kind == yaml.MappingNode {
		d.required(n, path, hasIP, hasPort)
	}
	return fe
}

// endpoint decodes one item of an endpoints list, like frontend.
func (d *decoder) endpoint(n *yaml.Node, path, rel string, lines yamlline.Lines) lb.Endpoint {
	lines.Set(rel, n.Line)
	ep := lb.Endpoint{Weight: lb.DefaultWeight, Ready: true}
	var ip netip.Addr
	var port int64
	var hasIP, hasPort, hasServing bool
	var forZones, forNodes []string
	d.mapping(n, path, endpointFields(), func(fd yamlline.Field) {
		key, v, f := fd.Name, fd.Value, fd.Path
		lines.Set(yamlline.Join(rel, key), fd.Key.Line)
		switch key {
		case "ip":
			hasIP = true
			ip, _ = d.ip(v, f)
		case "port":
			hasPort = true
			port, _ = d.integer(v, f, 1, 65535)
		case "weight":
			w, _ := d.integer(v, f, 1, lb.MaxWeight)
			ep.Weight = uint32(w)
		case "node":
			ep.NodeName, _ = d.str(v, f)
		case "zone":
			ep.Zone, _ = d.str(v, f)
		case "forZones":
			forZones = d.strings(v, f)
		case "forNodes":
			forNodes = d.strings(v, f)
		case "ready":
			ep.Ready, _ = d.boolean(v, f)
		case "serving":
			hasServing = true
			ep.Serving, _ = d.boolean(v, f)
		case "terminating":
			ep.Terminating, _ = d.boolean(v, f)
		}
	})
	if !hasServing {
		ep.Serving = ep.Ready
	}
	ep.Hints = lb.NewHints(forZones, forNodes)
	ep.Addr = netip.AddrPortFrom(ip, uint16(port))
	if n.Kind == yaml.MappingNode {
		d.required(n, path, hasIP, hasPort)
	}
	return ep
}

// required reports a missing ip or port of a frontend or endpoint.
func (d *decoder) required(n *yaml.Node, path string, hasIP, hasPort bool) {
	if !hasIP {
		d.errorf(n, yamlline.Join(path, "ip"), "missing")
	}
	if !hasPort {
		d.errorf(n, yamlline.Join(path, "port"), "missing")
	}
}

// ip decodes an IP address.
func (d *decoder) ip(n *yaml.Node, path string) (netip.Addr, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		d.errorf(n, path, "%q is not an IP address", s)
		return netip.Addr{}, false
	}
	return a, true
}

func schedulerNames() []string {
	names := make([]string, len(lb.Schedulers()))
	for i, s := range lb.Schedulers() {
		names[i] = string(s)
	}
	return names
}
