package ipvs

import (
	"fmt"

	"github.com/lbkit/lbkit/lb"
)

// IPVS service flags (include/uapi/linux/ip_vs.h).
const (
	flagPersistent = 0x0001 // IP_VS_SVC_F_PERSISTENT: ClientIP affinity
	flagHashed     = 0x0002 // IP_VS_SVC_F_HASHED: set by the kernel
	flagSched1     = 0x0008 // IP_VS_SVC_F_SCHED1: sh-fallback, mh-fallback
	flagSched2     = 0x0010 // IP_VS_SVC_F_SCHED2: sh-port, mh-port
	// kernelFlags are flags the kernel sets itself; they never differ
	// between what we want and what we read back.
	kernelFlags = flagHashed
)

// schedulers maps lbkit schedulers to IPVS ones with their flags:
//
//   - maglev is IPVS's mh with mh-port: Maglev hashing of the flow (source
//     address and port), like lbkit's other Maglev datapaths;
//   - sh and mh get their fallback flag, so that a client hashed to a
//     draining (weight 0) real server is sent to another instead of being
//     dropped;
//   - random has no IPVS counterpart: Options.Scheduler decides.
var schedulers = map[lb.Scheduler]ipvsSched{
	lb.RR:     {name: "rr"},
	lb.WRR:    {name: "wrr"},
	lb.LC:     {name: "lc"},
	lb.WLC:    {name: "wlc"},
	lb.SH:     {name: "sh", flags: flagSched1},
	lb.DH:     {name: "dh"},
	lb.SED:    {name: "sed"},
	lb.NQ:     {name: "nq"},
	lb.Maglev: {name: "mh", flags: flagSched1 | flagSched2},
}

// ipvsSched is an IPVS scheduler name with the scheduler flags it needs.
type ipvsSched struct {
	name  string
	flags uint32
}

// schedulerFor returns the IPVS scheduler of an lbkit scheduler; random
// maps to def (Options.Scheduler) when set.
func schedulerFor(s lb.Scheduler, def string) (ipvsSched, error) {
	if s == lb.Random {
		if def == "" {
			return ipvsSched{}, fmt.Errorf("IPVS has no random scheduler and Options.Scheduler is not set")
		}
		for ls, is := range schedulers {
			if is.name == def {
				return schedulers[ls], nil
			}
		}
		return ipvsSched{name: def}, nil
	}
	is, ok := schedulers[s]
	if !ok {
		return ipvsSched{}, fmt.Errorf("scheduler %q has no IPVS counterpart", s)
	}
	return is, nil
}

// lbScheduler returns the lbkit scheduler an IPVS scheduler name realizes,
// or the IPVS name itself when lbkit has none (lblc, fo, ...).
func lbScheduler(name string) lb.Scheduler {
	for ls, is := range schedulers {
		if is.name == name {
			return ls
		}
	}
	return lb.Scheduler(name)
}

// declaredSchedulers lists the schedulers Capabilities declares.
func declaredSchedulers(def string) []lb.Scheduler {
	out := []lb.Scheduler{lb.RR, lb.WRR, lb.LC, lb.WLC, lb.SH, lb.DH, lb.SED, lb.NQ, lb.Maglev}
	if def != "" {
		out = append([]lb.Scheduler{lb.Random}, out...)
	}
	return out
}
