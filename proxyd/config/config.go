package config

import "time"

// The apiVersion and kind every config file must carry: kube-proxy's.
const (
	APIVersion = "kubeproxy.config.k8s.io/v1alpha1"
	Kind       = "KubeProxyConfiguration"
)

// Proxy modes: the datapath proxyd programs.
const (
	ModeUserspace = "userspace"
	ModeIPTables  = "iptables"
	ModeNFTables  = "nftables"
	ModeIPVS      = "ipvs"
	ModeEBPF      = "ebpf"
)

// Modes lists every valid mode, in a stable order.
func Modes() []string {
	return []string{ModeUserspace, ModeIPTables, ModeNFTables, ModeIPVS, ModeEBPF}
}

// NodePortAddressesPrimary is the special nodePortAddresses value meaning
// "the node's primary IPs", as in kube-proxy.
const NodePortAddressesPrimary = "primary"

// Log formats of lbkit.logFormat.
const (
	LogFormatJSON    = "json"
	LogFormatConsole = "console"
)

// Config is proxyd's effective configuration. Its YAML form is kube-proxy's
// KubeProxyConfiguration v1alpha1 (the fields lbkit implements) plus the
// "lbkit" section.
type Config struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`

	// Mode is the datapath: userspace, iptables, nftables, ipvs or ebpf.
	// Empty means iptables, as in kube-proxy on Linux (see EffectiveMode).
	Mode string `yaml:"mode"`
	// ClusterCIDR is the pods' CIDR, or a comma-separated dual-stack pair;
	// traffic from it counts as local. Empty: unknown.
	ClusterCIDR string `yaml:"clusterCIDR"`
	// HostnameOverride is the node name; empty means the hostname.
	HostnameOverride string `yaml:"hostnameOverride"`
	// BindAddress is the node's primary IP; the name is kube-proxy's
	// historical one, no socket binds to it.
	BindAddress string `yaml:"bindAddress"`
	// MetricsBindAddress is IP:port of the metrics server; empty disables it.
	MetricsBindAddress string `yaml:"metricsBindAddress"`
	// HealthzBindAddress is IP:port of the health check server; empty
	// disables it.
	HealthzBindAddress string `yaml:"healthzBindAddress"`
	// NodePortAddresses limits NodePort frontends to node IPs in these CIDRs,
	// or to the node's primary IPs with the single value "primary". Empty
	// means every local address.
	NodePortAddresses []string `yaml:"nodePortAddresses"`

	// EnableProfiling serves Go's profiler at /debug/pprof/ on the
	// metrics server.
	EnableProfiling bool `yaml:"enableProfiling"`
	// ClientConnection is how the Kubernetes source talks to the API
	// server.
	ClientConnection ClientConnectionConfig `yaml:"clientConnection"`
	// ConfigSyncPeriod is the resync period of the Kubernetes source's
	// informers; zero disables resyncs.
	ConfigSyncPeriod Duration `yaml:"configSyncPeriod"`

	IPVS      IPVSConfig      `yaml:"ipvs"`
	IPTables  IPTablesConfig  `yaml:"iptables"`
	NFTables  NFTablesConfig  `yaml:"nftables"`
	Conntrack ConntrackConfig `yaml:"conntrack"`

	// Lbkit holds what kube-proxy has no field for.
	Lbkit LbkitConfig `yaml:"lbkit"`

	// origin says where each value came from, for error messages.
	origin *origin
}

// ClientConnectionConfig is kube-proxy's "clientConnection" section.
type ClientConnectionConfig struct {
	// Kubeconfig is the path of a kubeconfig; empty means the in-cluster
	// config (the pod's service account). Flag --kubeconfig.
	Kubeconfig string `yaml:"kubeconfig"`
	// AcceptContentTypes is the Accept header of requests; empty means
	// the client's default.
	AcceptContentTypes string `yaml:"acceptContentTypes"`
	// ContentType is the wire format: application/vnd.kubernetes.protobuf
	// (the default, as in kube-proxy) or application/json.
	ContentType string `yaml:"contentType"`
	// QPS and Burst bound the request rate to the API server.
	QPS   float32 `yaml:"qps"`
	Burst int32   `yaml:"burst"`
}

// Content types of clientConnection.contentType.
const (
	ContentTypeProtobuf = "application/vnd.kubernetes.protobuf"
	ContentTypeJSON     = "application/json"
)

// IPVSConfig is kube-proxy's "ipvs" section.
type IPVSConfig struct {
	SyncPeriod    Duration `yaml:"syncPeriod"`
	MinSyncPeriod Duration `yaml:"minSyncPeriod"`
	// Scheduler is the kernel IPVS scheduler of every virtual server.
	Scheduler string `yaml:"scheduler"`
	// ExcludeCIDRs are CIDRs whose IPVS virtual servers proxyd never removes.
	ExcludeCIDRs []string `yaml:"excludeCIDRs"`
	// StrictARP sets arp_ignore=1 and arp_announce=2.
	StrictARP bool `yaml:"strictARP"`
	// Timeouts of IPVS connections; zero leaves the kernel's value.
	TCPTimeout    Duration `yaml:"tcpTimeout"`
	TCPFinTimeout Duration `yaml:"tcpFinTimeout"`
	UDPTimeout    Duration `yaml:"udpTimeout"`
}

// IPTablesConfig is kube-proxy's "iptables" section.
type IPTablesConfig struct {
	// MasqueradeAll SNATs all traffic to cluster IPs.
	MasqueradeAll bool `yaml:"masqueradeAll"`
	// MasqueradeBit is the fwmark bit (0-31) marking packets to SNAT.
	MasqueradeBit int32    `yaml:"masqueradeBit"`
	SyncPeriod    Duration `yaml:"syncPeriod"`
	MinSyncPeriod Duration `yaml:"minSyncPeriod"`
	// LocalhostNodePorts lets NodePorts answer on 127.0.0.1 (IPv4 only).
	LocalhostNodePorts bool `yaml:"localhostNodePorts"`
}

// NFTablesConfig is kube-proxy's "nftables" section.
type NFTablesConfig struct {
	MasqueradeAll bool     `yaml:"masqueradeAll"`
	MasqueradeBit int32    `yaml:"masqueradeBit"`
	SyncPeriod    Duration `yaml:"syncPeriod"`
	MinSyncPeriod Duration `yaml:"minSyncPeriod"`
}

// ConntrackConfig is kube-proxy's "conntrack" section: the netfilter
// conntrack sysctls proxyd sets at start. Zero leaves a value as it is.
type ConntrackConfig struct {
	// MaxPerCore times the CPU count, but at least Min, is nf_conntrack_max.
	// Zero leaves nf_conntrack_max as it is, whatever Min says.
	MaxPerCore int32 `yaml:"maxPerCore"`
	Min        int32 `yaml:"min"`
	// TCPEstablishedTimeout is nf_conntrack_tcp_timeout_established.
	TCPEstablishedTimeout Duration `yaml:"tcpEstablishedTimeout"`
	// TCPCloseWaitTimeout is nf_conntrack_tcp_timeout_close_wait.
	TCPCloseWaitTimeout Duration `yaml:"tcpCloseWaitTimeout"`
}

// SyncConfig is the sync timing of a datapath, read by lb.Engine.
type SyncConfig struct {
	// SyncPeriod is the interval of full resyncs; must be positive.
	SyncPeriod Duration `yaml:"syncPeriod"`
	// MinSyncPeriod is the least time between two syncs, so bursts of
	// changes coalesce; zero syncs every change at once.
	MinSyncPeriod Duration `yaml:"minSyncPeriod"`
}

// LbkitConfig is the "lbkit" section: proxyd settings kube-proxy has no
// field for.
type LbkitConfig struct {
	// Services is the path of a services file (sources/file); flag --services.
	Services string `yaml:"services"`
	// ServiceProxyName, when set, makes the Kubernetes source serve only
	// the services labelled service.kubernetes.io/service-proxy-name with
	// it (which kube-proxy ignores), so proxyd runs beside kube-proxy;
	// flag --service-proxy-name.
	ServiceProxyName string `yaml:"serviceProxyName"`
	// Netns is a network namespace (a path such as /var/run/netns/NAME) the
	// datapath programs instead of proxyd's own; flag --netns.
	Netns string `yaml:"netns"`
	// LogFormat is "json" or "console"; flag --log-format.
	LogFormat string `yaml:"logFormat"`
	// Verbosity is the log level: 0 info, higher is more debug; flag -v.
	Verbosity int `yaml:"verbosity"`

	Userspace UserspaceConfig `yaml:"userspace"`
	EBPF      EBPFConfig      `yaml:"ebpf"`
	// IPTablesFlavour is "legacy", "nft" or "" (the flavour the system's
	// iptables command is); flag --iptables-flavour.
	IPTablesFlavour string `yaml:"iptablesFlavour"`
}

// UserspaceConfig holds the options of the userspace datapath.
type UserspaceConfig struct {
	SyncConfig `yaml:",inline"`
	// UDPIdleTimeout is how long a UDP flow without packets keeps its backend.
	UDPIdleTimeout Duration `yaml:"udpIdleTimeout"`
}

// EBPFConfig holds the options of the eBPF datapath.
type EBPFConfig struct {
	SyncConfig `yaml:",inline"`
	// Attach is "tc" (default), "xdp" or "socket"; flag --ebpf-attach.
	Attach string `yaml:"attach"`
	// SocketLB also attaches the cgroup socket-LB programs in tc and xdp
	// mode, so that clients on the node itself reach frontends.
	SocketLB bool `yaml:"socketLB"`
	// Interfaces to attach to; empty means every non-loopback interface.
	Interfaces []string `yaml:"interfaces"`
	// XDPMode is "native" (default) or "generic".
	XDPMode string `yaml:"xdpMode"`
	// PinPath is the bpffs directory where maps and links are pinned so
	// traffic keeps flowing across restarts; empty pins nothing; flag
	// --ebpf-pin-path. proxyd exits at start when it is not on a bpffs.
	PinPath string `yaml:"pinPath"`
	// CgroupPath is the cgroup v2 directory the socket-LB programs attach
	// to; flag --ebpf-cgroup-path. Socket-LB balances every process in it,
	// whatever --netns says, so it has no default: socket-LB is refused
	// until it is set (to the cgroup v2 root to mean every process).
	CgroupPath string `yaml:"cgroupPath"`
}

// eBPF attach modes and XDP modes of lbkit.ebpf.
const (
	EBPFAttachTC      = "tc"
	EBPFAttachXDP     = "xdp"
	EBPFAttachSocket  = "socket"
	EBPFXDPNative     = "native"
	EBPFXDPGeneric    = "generic"
	DefaultEBPFPinDir = "/sys/fs/bpf/lbkit"
)

// Default ports and addresses, as in kube-proxy.
const (
	DefaultBindAddress = "0.0.0.0"
	DefaultHealthzPort = "10256"
	DefaultMetricsPort = "10249"
)

// Default returns the configuration with every default filled in: kube-proxy's
// defaults for its fields, lbkit's for the lbkit section.
func Default() *Config {
	return &Config{
		APIVersion:         APIVersion,
		Kind:               Kind,
		BindAddress:        DefaultBindAddress,
		MetricsBindAddress: "127.0.0.1:" + DefaultMetricsPort,
		HealthzBindAddress: "0.0.0.0:" + DefaultHealthzPort,
		ClientConnection: ClientConnectionConfig{
			ContentType: ContentTypeProtobuf,
			QPS:         5,
			Burst:       10,
		},
		ConfigSyncPeriod: D(15 * time.Minute),
		IPVS: IPVSConfig{
			SyncPeriod: D(30 * time.Second),
			Scheduler:  "rr",
		},
		IPTables: IPTablesConfig{
			MasqueradeBit:      14,
			SyncPeriod:         D(30 * time.Second),
			MinSyncPeriod:      D(time.Second),
			LocalhostNodePorts: true,
		},
		NFTables: NFTablesConfig{
			MasqueradeBit: 14,
			SyncPeriod:    D(30 * time.Second),
			MinSyncPeriod: D(time.Second),
		},
		Conntrack: ConntrackConfig{
			MaxPerCore:            32 * 1024,
			Min:                   128 * 1024,
			TCPEstablishedTimeout: D(24 * time.Hour),
			TCPCloseWaitTimeout:   D(time.Hour),
		},
		Lbkit: LbkitConfig{
			LogFormat: LogFormatJSON,
			Userspace: UserspaceConfig{
				SyncConfig:     SyncConfig{SyncPeriod: D(30 * time.Second), MinSyncPeriod: D(time.Second)},
				UDPIdleTimeout: D(30 * time.Second),
			},
			EBPF: EBPFConfig{
				SyncConfig: SyncConfig{SyncPeriod: D(30 * time.Second), MinSyncPeriod: D(time.Second)},
				Attach:     EBPFAttachTC,
				XDPMode:    EBPFXDPNative,
				PinPath:    DefaultEBPFPinDir,
			},
		},
	}
}

// EffectiveMode returns Mode, or "iptables" when Mode is empty.
func (c *Config) EffectiveMode() string {
	if c.Mode == "" {
		return ModeIPTables
	}
	return c.Mode
}

// SyncPeriods returns the full-resync period and the minimum period between
// syncs of the active mode's section. An unknown mode (which Validate
// rejects) gets iptables' values.
func (c *Config) SyncPeriods() (syncPeriod, minSyncPeriod time.Duration) {
	s := c.syncSection(c.EffectiveMode())
	return s.sync.Duration, s.min.Duration
}

// syncFields points at the sync fields of one mode's section.
type syncFields struct {
	path      string // field path of the section, e.g. "iptables"
	sync, min *Duration
}

// syncSection returns the sync fields of mode's section.
func (c *Config) syncSection(mode string) syncFields {
	switch mode {
	case ModeNFTables:
		return syncFields{"nftables", &c.NFTables.SyncPeriod, &c.NFTables.MinSyncPeriod}
	case ModeIPVS:
		return syncFields{"ipvs", &c.IPVS.SyncPeriod, &c.IPVS.MinSyncPeriod}
	case ModeUserspace:
		return syncFields{"lbkit.userspace", &c.Lbkit.Userspace.SyncPeriod, &c.Lbkit.Userspace.MinSyncPeriod}
	case ModeEBPF:
		return syncFields{"lbkit.ebpf", &c.Lbkit.EBPF.SyncPeriod, &c.Lbkit.EBPF.MinSyncPeriod}
	}
	return syncFields{"iptables", &c.IPTables.SyncPeriod, &c.IPTables.MinSyncPeriod}
}
