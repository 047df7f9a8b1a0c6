package ebpf

import (
	"errors"
	"fmt"
)

// Stats are the datapath's packet counters since its programs were loaded,
// summed over CPUs, and its count of attach failures.
type Stats struct {
	// XDPForward: packets the XDP program translated to a backend.
	XDPForward uint64
	// TCForward: packets TC ingress translated to a backend.
	TCForward uint64
	// TCReverse: replies TC egress translated back to their frontend.
	TCReverse uint64
	// MasqForward and MasqReverse: packets of masqueraded flows, both ways.
	MasqForward uint64
	MasqReverse uint64
	// Socket: connect and sendmsg calls socket-LB pointed at a backend.
	Socket uint64
	// NoBackend: packets dropped and calls refused because a frontend had
	// no backend.
	NoBackend uint64
	// AttachErrors: failures to attach to an interface after the first
	// Sync (see AttachStatus).
	AttachErrors uint64
}

// Stats reads the counters of lb_stats.
func (d *Datapath) Stats() (Stats, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.objs == nil {
		return Stats{}, errors.New("ebpf: stats: nothing loaded")
	}
	var out Stats
	for i, dst := range []*uint64{&out.XDPForward, &out.TCForward, &out.TCReverse, &out.MasqForward,
		&out.MasqReverse, &out.Socket, &out.NoBackend} {
		var perCPU []uint64
		if err := d.objs.LbStats.Lookup(uint32(i), &perCPU); err != nil {
			return Stats{}, fmt.Errorf("ebpf: read counter %d: %w", i, err)
		}
		for _, v := range perCPU {
			*dst += v
		}
	}
	out.AttachErrors = d.attachErrors
	return out, nil
}
