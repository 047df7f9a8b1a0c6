package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// Flags are proxyd's command-line flags: the ones that say what to do
// (--config, --write-config-to, --cleanup) and the ones that override a
// Config field. Override flags carry kube-proxy's names where kube-proxy has
// the flag.
type Flags struct {
	// ConfigFile is --config: the KubeProxyConfiguration file to load.
	ConfigFile string
	// WriteConfigTo is --write-config-to: where the daemon writes the
	// effective configuration (Marshal) before exiting. Resolve only
	// records it.
	WriteConfigTo string
	// Cleanup is --cleanup: remove everything the datapath installed, exit.
	Cleanup bool

	overrides []override
}

// override is one flag (with aliases) that sets Config fields.
type override struct {
	names []string
	// late overrides are applied after the others, because what they set
	// depends on the final mode.
	late bool
	// apply sets the flag's value in c and returns the field paths it set.
	apply func(c *Config) []string
}

// NewFlags registers proxyd's flags on fs and returns them; parse fs, then
// call Resolve. Defaults shown in the help are Default()'s. NewFlags panics
// if fs already defines one of the names (as flag.FlagSet does).
func NewFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{}
	d := Default()
	fs.StringVar(&f.ConfigFile, "config", "", "path of the configuration file: a kube-proxy KubeProxyConfiguration (YAML or JSON) with an optional lbkit section; flags given on the command line override it")
	fs.StringVar(&f.WriteConfigTo, "write-config-to", "", "write the effective configuration (defaults, file and flags) to this file and exit")
	fs.BoolVar(&f.Cleanup, "cleanup", false, "find and remove every lbkit state in the namespace (with --mode, only that mode's), print what was removed, and exit; non-zero if anything remains")

	r := registrar{fs: fs, f: f}
	mode := r.str([]string{"mode", "proxy-mode"}, d.Mode, "datapath: "+strings.Join(Modes(), ", ")+" (empty means iptables)")
	f.add(false, func(c *Config) []string { c.Mode = *mode.p; return []string{"mode"} }, mode.names...)

	r.strField("services", "path of a services file (YAML or JSON) to load balance", func(c *Config) *string { return &c.Lbkit.Services }, "lbkit.services")
	r.strField("kubeconfig", "path of a kubeconfig for the Kubernetes source (without it and without --services: the in-cluster config)", func(c *Config) *string { return &c.ClientConnection.Kubeconfig }, "clientConnection.kubeconfig")
	r.strField("service-proxy-name", "serve only the Kubernetes services labelled service.kubernetes.io/service-proxy-name=NAME (to run beside kube-proxy)", func(c *Config) *string { return &c.Lbkit.ServiceProxyName }, "lbkit.serviceProxyName")
	r.strField("netns", "network namespace to program instead of proxyd's own, e.g. /var/run/netns/NAME", func(c *Config) *string { return &c.Lbkit.Netns }, "lbkit.netns")
	r.strField("log-format", "log format: json or console", func(c *Config) *string { return &c.Lbkit.LogFormat }, "lbkit.logFormat")
	verbosity := new(int)
	fs.IntVar(verbosity, "v", d.Lbkit.Verbosity, "log verbosity: 0 is info, higher logs more")
	f.add(false, func(c *Config) []string { c.Lbkit.Verbosity = *verbosity; return []string{"lbkit.verbosity"} }, "v")

	hostname := r.str([]string{"hostname-override"}, "", "node name to use instead of the hostname (trimmed and lower-cased, as kube-proxy does)")
	f.add(false, func(c *Config) []string {
		c.HostnameOverride = strings.ToLower(strings.TrimSpace(*hostname.p))
		return []string{"hostnameOverride"}
	}, hostname.names...)
	r.strField("cluster-cidr", "CIDR of the pods (or a comma-separated IPv4,IPv6 pair); traffic from it is local", func(c *Config) *string { return &c.ClusterCIDR }, "clusterCIDR")
	r.strField("bind-address", "the node's primary IP (no socket binds to it; the name is kube-proxy's)", func(c *Config) *string { return &c.BindAddress }, "bindAddress")
	r.addrField("metrics-bind-address", d.MetricsBindAddress, DefaultMetricsPort, "IP:port of the metrics server; empty disables it", func(c *Config) *string { return &c.MetricsBindAddress }, "metricsBindAddress")
	r.addrField("healthz-bind-address", d.HealthzBindAddress, DefaultHealthzPort, "IP:port of the health check server; empty disables it", func(c *Config) *string { return &c.HealthzBindAddress }, "healthzBindAddress")
	r.listField("nodeport-addresses", "comma-separated CIDRs whose node IPs serve NodePorts, or 'primary'; empty means all", func(c *Config) *[]string { return &c.NodePortAddresses }, "nodePortAddresses")

	r.boolField("masquerade-all", d.IPTables.MasqueradeAll, "SNAT all traffic to cluster IPs (sets iptables.masqueradeAll and nftables.masqueradeAll)",
		func(c *Config) []*bool { return []*bool{&c.IPTables.MasqueradeAll, &c.NFTables.MasqueradeAll} }, "iptables.masqueradeAll", "nftables.masqueradeAll")
	r.int32Field("iptables-masquerade-bit", d.IPTables.MasqueradeBit, "fwmark bit (0-31) of packets to SNAT (sets iptables.masqueradeBit and nftables.masqueradeBit)",
		func(c *Config) []*int32 { return []*int32{&c.IPTables.MasqueradeBit, &c.NFTables.MasqueradeBit} }, "iptables.masqueradeBit", "nftables.masqueradeBit")
	r.boolField("iptables-localhost-nodeports", d.IPTables.LocalhostNodePorts, "serve NodePorts on 127.0.0.1 in iptables mode",
		func(c *Config) []*bool { return []*bool{&c.IPTables.LocalhostNodePorts} }, "iptables.localhostNodePorts")
	r.durField("iptables-sync-period", d.IPTables.SyncPeriod, "full resync period in iptables and nftables mode (sets both sections, as kube-proxy's flag does)",
		func(c *Config) []*Duration { return []*Duration{&c.IPTables.SyncPeriod, &c.NFTables.SyncPeriod} }, "iptables.syncPeriod", "nftables.syncPeriod")
	r.durField("iptables-min-sync-period", d.IPTables.MinSyncPeriod, "least time between syncs in iptables and nftables mode; 0 syncs every change at once",
		func(c *Config) []*Duration { return []*Duration{&c.IPTables.MinSyncPeriod, &c.NFTables.MinSyncPeriod} }, "iptables.minSyncPeriod", "nftables.minSyncPeriod")

	r.durField("ipvs-sync-period", d.IPVS.SyncPeriod, "full resync period in ipvs mode",
		func(c *Config) []*Duration { return []*Duration{&c.IPVS.SyncPeriod} }, "ipvs.syncPeriod")
	r.durField("ipvs-min-sync-period", d.IPVS.MinSyncPeriod, "least time between syncs in ipvs mode; 0 syncs every change at once",
		func(c *Config) []*Duration { return []*Duration{&c.IPVS.MinSyncPeriod} }, "ipvs.minSyncPeriod")
	r.strField("ipvs-scheduler", "IPVS scheduler: "+strings.Join(IPVSSchedulers(), ", "), func(c *Config) *string { return &c.IPVS.Scheduler }, "ipvs.scheduler")
	r.listField("ipvs-exclude-cidrs", "comma-separated CIDRs whose IPVS virtual servers proxyd never removes", func(c *Config) *[]string { return &c.IPVS.ExcludeCIDRs }, "ipvs.excludeCIDRs")
	r.boolField("ipvs-strict-arp", d.IPVS.StrictARP, "set arp_ignore=1 and arp_announce=2",
		func(c *Config) []*bool { return []*bool{&c.IPVS.StrictARP} }, "ipvs.strictARP")
	r.durField("ipvs-tcp-timeout", d.IPVS.TCPTimeout, "IPVS idle TCP timeout, 0 leaves the kernel's",
		func(c *Config) []*Duration { return []*Duration{&c.IPVS.TCPTimeout} }, "ipvs.tcpTimeout")
	r.durField("ipvs-tcpfin-timeout", d.IPVS.TCPFinTimeout, "IPVS TCP timeout after a FIN, 0 leaves the kernel's",
		func(c *Config) []*Duration { return []*Duration{&c.IPVS.TCPFinTimeout} }, "ipvs.tcpFinTimeout")
	r.durField("ipvs-udp-timeout", d.IPVS.UDPTimeout, "IPVS UDP timeout, 0 leaves the kernel's",
		func(c *Config) []*Duration { return []*Duration{&c.IPVS.UDPTimeout} }, "ipvs.udpTimeout")

	r.int32Field("conntrack-max-per-core", d.Conntrack.MaxPerCore, "conntrack entries per CPU (0 leaves nf_conntrack_max as it is)",
		func(c *Config) []*int32 { return []*int32{&c.Conntrack.MaxPerCore} }, "conntrack.maxPerCore")
	r.int32Field("conntrack-min", d.Conntrack.Min, "least nf_conntrack_max, whatever the CPU count (unused when conntrack-max-per-core is 0)",
		func(c *Config) []*int32 { return []*int32{&c.Conntrack.Min} }, "conntrack.min")
	r.durField("conntrack-tcp-timeout-established", d.Conntrack.TCPEstablishedTimeout, "conntrack idle timeout of established TCP connections (0 leaves it as it is)",
		func(c *Config) []*Duration { return []*Duration{&c.Conntrack.TCPEstablishedTimeout} }, "conntrack.tcpEstablishedTimeout")
	r.durField("conntrack-tcp-timeout-close-wait", d.Conntrack.TCPCloseWaitTimeout, "conntrack timeout of TCP connections in CLOSE_WAIT (0 leaves it as it is)",
		func(c *Config) []*Duration { return []*Duration{&c.Conntrack.TCPCloseWaitTimeout} }, "conntrack.tcpCloseWaitTimeout")

	r.strField("iptables-flavour", "iptables implementation in iptables mode: legacy or nft (default: what the system's iptables is)", func(c *Config) *string { return &c.Lbkit.IPTablesFlavour }, "lbkit.iptablesFlavour")
	r.strField("ebpf-attach", "eBPF attach mode: tc, xdp or socket", func(c *Config) *string { return &c.Lbkit.EBPF.Attach }, "lbkit.ebpf.attach")
	r.boolField("ebpf-socket-lb", d.Lbkit.EBPF.SocketLB, "also attach the socket-LB programs in tc and xdp mode",
		func(c *Config) []*bool { return []*bool{&c.Lbkit.EBPF.SocketLB} }, "lbkit.ebpf.socketLB")
	r.strField("ebpf-pin-path", "bpffs directory where eBPF maps and links are pinned, so traffic survives restarts; empty pins nothing (needs a mounted bpffs: mount -t bpf bpffs /sys/fs/bpf)",
		func(c *Config) *string { return &c.Lbkit.EBPF.PinPath }, "lbkit.ebpf.pinPath")
	r.strField("ebpf-cgroup-path", "cgroup v2 directory whose processes socket-LB balances, whatever --netns says; required with socket-LB (give the cgroup v2 root, e.g. /sys/fs/cgroup, to mean every process of the machine)",
		func(c *Config) *string { return &c.Lbkit.EBPF.CgroupPath }, "lbkit.ebpf.cgroupPath")

	// lbkit's own: the sync timing of whichever mode is active.
	for _, s := range []struct {
		name, usage string
		min         bool
	}{
		{"sync-period", "full resync period of the active mode's section", false},
		{"min-sync-period", "least time between syncs of the active mode's section", true},
	} {
		p := new(time.Duration)
		fs.DurationVar(p, s.name, 0, s.usage+" (default: the section's)")
		f.add(true, func(c *Config) []string {
			sec := c.syncSection(c.EffectiveMode())
			if s.min {
				*sec.min = D(*p)
				return []string{sec.path + ".minSyncPeriod"}
			}
			*sec.sync = D(*p)
			return []string{sec.path + ".syncPeriod"}
		}, s.name)
	}
	return f
}

// add registers an override under its flag names.
func (f *Flags) add(late bool, apply func(*Config) []string, names ...string) {
	f.overrides = append(f.overrides, override{names: names, late: late, apply: apply})
}

// Resolve builds the effective configuration: the --config file over
// Default() (or Default() alone), then every override flag that was given on
// the command line (found with fs.Visit, so a flag left out never replaces
// the file's value, while one given with the default value does), then
// Validate. fs must be the parsed flag set NewFlags registered on. It returns
// the file's warnings; errors name the file line or flag of every bad value.
func (f *Flags) Resolve(fs *flag.FlagSet) (*Config, []string, error) {
	if !fs.Parsed() {
		return nil, nil, errors.New("config: Resolve called before the flag set was parsed")
	}
	c := Default()
	var warnings []string
	if f.ConfigFile != "" {
		data, err := os.ReadFile(f.ConfigFile)
		if err != nil {
			return nil, nil, fmt.Errorf("config: --config: %w", err)
		}
		c, warnings, err = Parse(data, f.ConfigFile)
		if err != nil {
			return nil, warnings, err
		}
	}
	if c.origin == nil {
		c.origin = &origin{}
	}
	given := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	for _, late := range []bool{false, true} {
		for _, o := range f.overrides {
			name := o.givenName(given)
			if o.late != late || name == "" {
				continue
			}
			for _, path := range o.apply(c) {
				c.origin.setFlag(path, "--"+name)
			}
		}
	}
	if given["bind-address"] {
		c.rederiveServerAddresses()
	}
	if err := c.Validate(); err != nil {
		return nil, warnings, err
	}
	return c, warnings, nil
}

// givenName returns the name under which the override was given, "" if it
// was not.
func (o override) givenName(given map[string]bool) string {
	for _, n := range o.names {
		if given[n] {
			return n
		}
	}
	return ""
}
