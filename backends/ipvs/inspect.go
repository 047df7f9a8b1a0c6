package ipvs

import (
	"context"
	"fmt"
	"time"

	"github.com/lbkit/lbkit/lb"
)

// Inspect reads back from the kernel how a frontend is realized: the IPVS
// virtual server with its scheduler, flags and real servers (with their
// connection counts), whether its address is on the dummy device, and
// which real servers drain.
func (d *Datapath) Inspect(ctx context.Context, fe lb.FrontendID) (*lb.Inspection, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.open(); err != nil {
		return nil, err
	}
	s, err := d.ipvs.service(svcID(fe))
	if err != nil {
		if notFound(err) {
			return nil, fmt.Errorf("ipvs: no IPVS virtual server for %s", fe)
		}
		return nil, fmt.Errorf("ipvs: read virtual server %s: %w", fe, err)
	}
	v, ok := fromService(s)
	if !ok {
		return nil, fmt.Errorf("ipvs: virtual server %s is not one lbkit makes", fe)
	}
	ds, err := d.ipvs.dests(s)
	if err != nil {
		return nil, fmt.Errorf("ipvs: read real servers of %s: %w", fe, err)
	}
	in := &lb.Inspection{
		Datapath:  name,
		Frontend:  lb.Frontend{Addr: fe.Addr, Port: fe.Port, Protocol: fe.Protocol},
		Scheduler: lbScheduler(v.sched),
	}
	if v.flags&flagPersistent != 0 {
		in.AffinityTimeout = time.Duration(v.timeout) * time.Second
	}
	in.Details = append(in.Details, fmt.Sprintf("ipvs virtual server %s scheduler %s flags %s", fe, v.sched, flagNames(v.sched, v.flags)))
	if w := d.want[fe]; w != nil {
		in.Service, in.Frontend.Kind = w.service, w.kind
		if w.asked == lb.Random {
			in.Details = append(in.Details, fmt.Sprintf("the service asked for random; IPVS has none, so it uses Options.Scheduler (%s)", d.o.Scheduler))
		}
		if w.masq {
			in.Details = append(in.Details, "masqueraded (nftables set "+setMasq+")")
		} else if w.masqOutside {
			in.Details = append(in.Details, "masqueraded from outside the cluster CIDRs (nftables set "+setOutside+")")
		}
	} else {
		in.Details = append(in.Details, "not in the datapath's desired state (left by another process, or not synced yet)")
	}
	if d.bound[fe.Addr] {
		in.Details = append(in.Details, fmt.Sprintf("address %s is on %s", fe.Addr, d.o.Device))
	}
	for _, dst := range ds {
		a, err := destAddr(dst)
		if err != nil {
			return nil, err
		}
		line := fmt.Sprintf("real server %s masq weight %d active %d inactive %d", a, dst.Weight, dst.ActiveConnections, dst.InactiveConnections)
		if st, ok := d.draining[drainKey{fe, a}]; ok {
			line += fmt.Sprintf(" draining since %s", st.since.Format(time.RFC3339))
		}
		in.Details = append(in.Details, line)
		if dst.Weight > 0 {
			in.Backends = append(in.Backends, lb.Backend{Addr: a, Weight: uint32(dst.Weight)})
		}
	}
	return in, nil
}

// flagNames spells the service flags as ipvsadm would.
func flagNames(sched string, f uint32) string {
	var out []string
	if f&flagPersistent != 0 {
		out = append(out, "persistent")
	}
	if f&flagSched1 != 0 {
		out = append(out, sched+"-fallback")
	}
	if f&flagSched2 != 0 {
		out = append(out, sched+"-port")
	}
	if len(out) == 0 {
		return "none"
	}
	return fmt.Sprint(out)
}
