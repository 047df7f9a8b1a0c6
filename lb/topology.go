package lb

import (
	"slices"
	"strings"
)

// Hints are an endpoint's topology hints, as an EndpointSlice carries them
// (hints.forZones, hints.forNodes): the zones and nodes whose clients
// should prefer it. The zero value has none. Hints is comparable, so that
// an Endpoint stays comparable; build it with NewHints.
type Hints struct {
	// zones and nodes are sorted, de-duplicated names joined by ",".
	zones, nodes string
}

// NewHints returns the hints for zones and nodes (any order; empty names
// are dropped).
func NewHints(zones, nodes []string) Hints {
	return Hints{zones: joinSet(zones), nodes: joinSet(nodes)}
}

func joinSet(names []string) string {
	set := slices.DeleteFunc(slices.Clone(names), func(s string) bool { return s == "" })
	slices.Sort(set)
	return strings.Join(slices.Compact(set), ",")
}

// Zones returns the zones hinted, sorted.
func (h Hints) Zones() []string { return splitSet(h.zones) }

// Nodes returns the nodes hinted, sorted.
func (h Hints) Nodes() []string { return splitSet(h.nodes) }

func splitSet(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// ForZone reports whether zone is among the zones hinted.
func (h Hints) ForZone(zone string) bool { return zone != "" && inSet(h.zones, zone) }

// ForNode reports whether node is among the nodes hinted.
func (h Hints) ForNode(node string) bool { return node != "" && inSet(h.nodes, node) }

func inSet(set, name string) bool {
	for set != "" {
		var head string
		head, set, _ = strings.Cut(set, ",")
		if head == name {
			return true
		}
	}
	return false
}

// Node is where the engine runs, for Local traffic policies and topology.
type Node struct {
	Name string
	// Zone is the node's topology.kubernetes.io/zone label; empty when
	// it has none (zone hints are then ignored).
	Zone string
}

// topology says which hints a service's cluster-wide endpoints of one IP
// family follow, as kube-proxy decides it: hints count only when every
// ready endpoint has them; node hints win when one is for this node; else
// zone hints when one is for this node's zone; else none.
type topology uint8

const (
	topologyNone topology = iota
	topologySameNode
	topologySameZone
)

func topologyOf(eps []Endpoint, v6 bool, node Node) topology {
	allNode, allZone := true, true
	forNode, forZone := false, false
	ready := 0
	for _, ep := range eps {
		if !ep.Ready || ep.Addr.Addr().Is6() != v6 {
			continue
		}
		ready++
		if ep.Hints.nodes == "" {
			allNode = false
		} else if ep.Hints.ForNode(node.Name) {
			forNode = true
		}
		if ep.Hints.zones == "" {
			allZone = false
		} else if ep.Hints.ForZone(node.Zone) {
			forZone = true
		}
	}
	switch {
	case ready == 0:
		return topologyNone
	case allNode && forNode:
		return topologySameNode
	case allZone && forZone:
		return topologySameZone
	}
	return topologyNone
}

// usableFor reports whether ep may serve this node under t.
func (t topology) usableFor(ep Endpoint, node Node) bool {
	switch t {
	case topologySameNode:
		return ep.Hints.ForNode(node.Name)
	case topologySameZone:
		return ep.Hints.ForZone(node.Zone)
	}
	return true
}
