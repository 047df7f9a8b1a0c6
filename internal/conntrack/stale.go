package conntrack

import "github.com/lbkit/lbkit/lb"

// StaleFilter returns the filter that deletes the stale UDP entries s
// derived (lb.StaleUDP, the rule every datapath shares): for each listed
// frontend, the entries not DNATed to one of its current backends.
func StaleFilter(s *lb.StaleUDP) Filter {
	fes := s.Frontends()
	f := Filter{Serving: make([]Serving, len(fes))}
	for i, fe := range fes {
		f.Serving[i] = Serving{Frontend: fe.Frontend, Backends: fe.Backends}
	}
	return f
}

// ClearStaleUDP deletes, in the namespace at netns ("" = the process's
// own), the UDP entries s found stale, with one dump of the table per
// address family, and returns how many entries it deleted and how many
// frontends it checked. Nothing noted costs nothing.
func ClearStaleUDP(netns string, s *lb.StaleUDP) (entries, frontends int, err error) {
	f := StaleFilter(s)
	if len(f.Serving) == 0 {
		return 0, 0, nil
	}
	n, err := ClearUDP(netns, f)
	return n, len(f.Serving), err
}
