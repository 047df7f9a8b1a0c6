package ebpf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/lbkit/lbkit/bpf"
	"github.com/lbkit/lbkit/lb"
)

var _ lb.Adopter = (*Datapath)(nil)

// Adopt takes over the maps and links a previous process pinned under
// Options.PinPath: the programs are replaced in place (no moment without
// them), and the frontends and backends found in the maps keep their ids,
// so that connection-table entries stay valid and established flows keep
// their backends. The engine's first (full) Sync then makes the maps equal
// to the desired state and removes frontends nobody claims. Without a
// PinPath, or with nothing pinned, it does nothing.
func (d *Datapath) Adopt(ctx context.Context) error {
	if d.opts.PinPath == "" {
		return nil
	}
	if _, err := os.Stat(filepath.Join(d.opts.PinPath, bpf.LBMapLbServices)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.objs != nil {
		return nil
	}
	if err := d.start(); err != nil {
		return err
	}
	if err := d.adoptMaps(); err != nil {
		return errors.Join(fmt.Errorf("ebpf: adopt pinned maps: %w", err), d.stop())
	}
	d.log.Info("adopted pinned state", "pinPath", d.opts.PinPath, "frontends", len(d.frontends))
	return nil
}

// adoptMaps rebuilds the shadow state from the maps. Adopted frontends
// belong to no service until a Sync claims them.
func (d *Datapath) adoptMaps() error {
	m := &d.objs.LBMaps
	backends := make(map[uint32]bpf.LBBackend)
	var bk uint32
	var bv bpf.LBBackend
	it := m.LbBackends.Iterate()
	for it.Next(&bk, &bv) {
		backends[bk] = bv
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read lb_backends: %w", err)
	}
	heads := make(map[bpf.LBSvcKey]bpf.LBSvcValue)
	slots := make(map[bpf.LBSvcKey][]uint32) // slot-0 key -> slot entries by index
	var sk bpf.LBSvcKey
	var sv bpf.LBSvcValue
	it = m.LbServices.Iterate()
	for it.Next(&sk, &sv) {
		if sk.Slot == 0 {
			heads[sk] = sv
			continue
		}
		k0 := sk
		k0.Slot = 0
		s := slots[k0]
		for len(s) < int(sk.Slot) {
			s = append(s, 0)
		}
		s[sk.Slot-1] = sv.BackendId
		slots[k0] = s
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read lb_services: %w", err)
	}

	var p plan
	owned := make(map[uint32]bool)
	maglevOwned := make(map[uint32]bool)
	for k0, head := range heads {
		id := frontendOf(k0)
		f := d.mem.newFE()
		*f = feState{id: head.FeId, key: k0, value: head,
			fe: lb.FrontendState{Frontend: lb.Frontend{Addr: id.Addr, Port: id.Port, Protocol: id.Protocol}}}
		if k0.Addr == [4]uint32{} {
			f.fe.Addr = netip.IPv4Unspecified()
			if k0.Family == familyV6 {
				f.fe.Addr = netip.IPv6Unspecified()
			}
			f.fe.Kind = lb.NodePort
		}
		if int(head.Count) <= inlineSlots {
			f.slots = slices.Clone(head.InlineIds[:head.Count])
		} else {
			f.slots = slots[k0]
		}
		weight := make(map[uint32]uint32)
		for _, b := range f.slots {
			weight[b]++
		}
		for bid, w := range weight {
			be, ok := backends[bid]
			if !ok || be.FeId != head.FeId {
				continue
			}
			addr := netip.AddrPortFrom(wordsAddr(be.Addr, be.Family), hostPort(be.Port))
			f.bes = append(f.bes, beState{addr: addr, id: bid, weight: w})
			owned[bid] = true
			d.ids.be.reserve(bid)
		}
		slices.SortFunc(f.bes, func(a, b beState) int { return a.addr.Compare(b.addr) })
		if head.Flags&svcMaglev != 0 {
			var t bpf.LBMaglevTable
			fe := head.FeId
			if err := m.LbMaglev.Lookup(&fe, &t); err == nil {
				f.maglev = slices.Clone(t.BackendIds[:])
				maglevOwned[fe] = true
			}
		}
		d.ids.fe.reserve(head.FeId)
		d.frontends[frontendOf(k0)] = f
	}
	// Backends no frontend points at are leftovers of an interrupted sync.
	for bid := range backends {
		if !owned[bid] {
			p.delBEs = append(p.delBEs, bid)
		}
	}
	for k0, s := range slots {
		if h, ok := heads[k0]; !ok || int(h.Count) <= inlineSlots {
			for i := range s {
				k := k0
				k.Slot = uint16(i + 1)
				p.delSlots = append(p.delSlots, k)
			}
		}
	}
	// So are Maglev tables of frontends that have none (or are gone).
	var mk uint32
	var mv bpf.LBMaglevTable
	it = m.LbMaglev.Iterate()
	for it.Next(&mk, &mv) {
		if !maglevOwned[mk] {
			p.delMaglev = append(p.delMaglev, mk)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read lb_maglev: %w", err)
	}
	// Node addresses are recomputed by the first Sync from this shadow.
	var nk nodeAddr
	var one uint32
	it = m.LbNodeaddrs.Iterate()
	for it.Next(&nk, &one) {
		d.nodeAddrs[nk] = true
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read lb_nodeaddrs: %w", err)
	}
	return d.apply(&p)
}
