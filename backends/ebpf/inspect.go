package ebpf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"

	"github.com/lbkit/lbkit/bpf"
	"github.com/lbkit/lbkit/lb"
)

// Inspect reads from the kernel's maps how frontend id is realized: its
// service entry, the backend of every slot and, with maglev, how the
// Maglev table's slots are shared.
func (d *Datapath) Inspect(_ context.Context, id lb.FrontendID) (*lb.Inspection, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.frontends[id]
	if d.objs == nil || f == nil {
		return nil, fmt.Errorf("ebpf: frontend %s is not programmed", id)
	}
	m := &d.objs.LBMaps
	var head bpf.LBSvcValue
	if err := m.LbServices.Lookup(&f.key, &head); err != nil {
		return nil, fmt.Errorf("ebpf: frontend %s: read its service entry: %w", id, err)
	}
	in := &lb.Inspection{
		Datapath: name, Service: f.service, Frontend: f.fe.Frontend, Scheduler: f.sched,
		AffinityTimeout: time.Duration(head.AffinityTimeout) * time.Second,
	}
	if head.Flags&svcAffinity == 0 {
		in.AffinityTimeout = 0
	}
	in.Details = append(in.Details, fmt.Sprintf("lb_services %s slot 0: frontend id %d, %d slots, flags %#x",
		id, head.FeId, head.Count, head.Flags))
	if d.opts.Attach != AttachSocket {
		in.Details = append(in.Details, d.attachStatus().summary())
	}
	weights := make(map[uint32]uint32)
	var order []uint32
	for slot := uint16(1); slot <= head.Count; slot++ {
		bid := uint32(0)
		if int(head.Count) <= inlineSlots {
			bid = head.InlineIds[slot-1]
		} else {
			k := f.key
			k.Slot = slot
			var v bpf.LBSvcValue
			if err := m.LbServices.Lookup(&k, &v); err != nil {
				return nil, fmt.Errorf("ebpf: frontend %s: read slot %d: %w", id, slot, err)
			}
			bid = v.BackendId
		}
		if weights[bid] == 0 {
			order = append(order, bid)
		}
		weights[bid]++
	}
	for _, bid := range order {
		var be bpf.LBBackend
		if err := m.LbBackends.Lookup(&bid, &be); err != nil {
			return nil, fmt.Errorf("ebpf: frontend %s: read backend %d: %w", id, bid, err)
		}
		addr := netip.AddrPortFrom(wordsAddr(be.Addr, be.Family), hostPort(be.Port))
		in.Backends = append(in.Backends, lb.Backend{Addr: addr, Weight: weights[bid]})
		in.Details = append(in.Details, fmt.Sprintf("lb_backends %d: %s (owner frontend %d), %d slots", bid, addr, be.FeId, weights[bid]))
	}
	if head.Flags&svcMaglev != 0 {
		var t bpf.LBMaglevTable
		fe := head.FeId
		if err := m.LbMaglev.Lookup(&fe, &t); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil, fmt.Errorf("ebpf: frontend %s: read its maglev table: %w", id, err)
		}
		share := make(map[uint32]int)
		for _, b := range t.BackendIds {
			share[b]++
		}
		for _, bid := range order {
			in.Details = append(in.Details, fmt.Sprintf("lb_maglev %d: backend %d owns %d of %d slots", fe, bid, share[bid], maglevSize))
		}
	}
	return in, nil
}
