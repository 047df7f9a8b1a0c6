package ebpf

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/lbkit/lbkit/bpf"
)

// objects are the loaded programs and maps.
type objects struct {
	bpf.LBObjects
}

// load creates the maps with the sizes of o and loads every program. A
// verifier rejection is reported with the verifier's log.
func load(o Options) (*objects, error) {
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("ebpf: remove memlock limit: %w", err)
	}
	spec, err := bpf.LoadLB()
	if err != nil {
		return nil, fmt.Errorf("ebpf: read the BPF object: %w", err)
	}
	for name, size := range map[string]int{
		bpf.LBMapLbServices: o.MaxServiceEntries,
		bpf.LBMapLbBackends: o.MaxBackends,
		bpf.LBMapLbMaglev:   o.MaxMaglev,
		bpf.LBMapLbCt:       o.ConntrackSize,
		bpf.LBMapLbAffinity: o.AffinitySize,
	} {
		ms, ok := spec.Maps[name]
		if !ok {
			return nil, fmt.Errorf("ebpf: the BPF object has no map %s", name)
		}
		ms.MaxEntries = uint32(size)
	}
	var opts *ebpf.CollectionOptions
	if o.PinPath != "" {
		if err := checkBPFFS(o.PinPath); err != nil {
			return nil, err
		}
		for name, ms := range spec.Maps {
			if strings.HasPrefix(name, "lb_") {
				ms.Pinning = ebpf.PinByName
			}
		}
		opts = &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: o.PinPath}}
	}
	objs := &objects{}
	if err := spec.LoadAndAssign(&objs.LBObjects, opts); err != nil {
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return nil, fmt.Errorf("ebpf: the maps pinned under %s are from an incompatible lbkit version; run proxyd --cleanup: %w", o.PinPath, err)
		}
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("ebpf: the kernel's verifier rejected a program: %+v", ve)
		}
		return nil, fmt.Errorf("ebpf: load programs and maps: %w", err)
	}
	return objs, nil
}

// loadSpecNames returns the names of the maps Options.PinPath pins.
func loadSpecNames() ([]string, error) {
	spec, err := bpf.LoadLB()
	if err != nil {
		return nil, fmt.Errorf("ebpf: read the BPF object: %w", err)
	}
	var names []string
	for name := range spec.Maps {
		if strings.HasPrefix(name, "lb_") {
			names = append(names, name)
		}
	}
	return names, nil
}

func (o *objects) close() error {
	if o == nil {
		return nil
	}
	return o.Close()
}
