package config

import (
	"net"
	"net/netip"
)

// applyKubeProxyDefaults gives the zero values of a parsed file kube-proxy's
// meaning: "not set, use the default". kubeadm and `kube-proxy
// --write-config-to` write files full of them (syncPeriod: 0s,
// healthzBindAddress: "", ...), and those files must behave here as they do
// under kube-proxy. Zero pointers in kube-proxy (null) are handled by the
// decoder, which leaves the default in place.
func (c *Config) applyKubeProxyDefaults() {
	d := Default()
	if c.BindAddress == "" {
		c.BindAddress = d.BindAddress
	}
	c.completeServerAddress(&c.HealthzBindAddress, "healthzBindAddress", DefaultHealthzPort)
	c.completeServerAddress(&c.MetricsBindAddress, "metricsBindAddress", DefaultMetricsPort)
	zeroToDefault(&c.IPTables.SyncPeriod, d.IPTables.SyncPeriod)
	zeroToDefault(&c.IPTables.MinSyncPeriod, d.IPTables.MinSyncPeriod)
	zeroToDefault(&c.NFTables.SyncPeriod, d.NFTables.SyncPeriod)
	zeroToDefault(&c.NFTables.MinSyncPeriod, d.NFTables.MinSyncPeriod)
	zeroToDefault(&c.IPVS.SyncPeriod, d.IPVS.SyncPeriod)
	if c.IPVS.Scheduler == "" {
		c.IPVS.Scheduler = d.IPVS.Scheduler
	}
}

// zeroToDefault sets *v to def when it is zero.
func zeroToDefault(v *Duration, def Duration) {
	if v.Duration == 0 {
		*v = def
	}
}

// completeServerAddress defaults an empty server address from bindAddress's
// family (and forgets it came from the file, so that a --bind-address flag
// can still change it), and gives a bare IP the default port, as kube-proxy
// does.
func (c *Config) completeServerAddress(addr *string, path, port string) {
	if *addr == "" {
		if c.origin != nil {
			delete(c.origin.lines, path)
		}
		*addr = defaultServerAddress(c.BindAddress, path)
		return
	}
	*addr = withDefaultPort(*addr, port)
}

// rederiveServerAddresses recomputes the health and metrics addresses that
// neither the file nor a flag set, after bindAddress changed.
func (c *Config) rederiveServerAddresses() {
	for _, f := range []struct {
		addr *string
		path string
	}{{&c.HealthzBindAddress, "healthzBindAddress"}, {&c.MetricsBindAddress, "metricsBindAddress"}} {
		if !c.origin.fromFile(f.path) && !c.origin.fromFlag(f.path) {
			*f.addr = defaultServerAddress(c.BindAddress, f.path)
		}
	}
}

// defaultServerAddress is kube-proxy's default for the health or metrics
// address given the bind address: IPv6 listens on [::] / [::1], anything else
// on 0.0.0.0 / 127.0.0.1.
func defaultServerAddress(bindAddress, path string) string {
	ip, err := netip.ParseAddr(bindAddress)
	v6 := err == nil && ip.Is6() && !ip.Is4In6()
	switch {
	case path == "healthzBindAddress" && v6:
		return "[::]:" + DefaultHealthzPort
	case path == "healthzBindAddress":
		return "0.0.0.0:" + DefaultHealthzPort
	case v6:
		return "[::1]:" + DefaultMetricsPort
	}
	return "127.0.0.1:" + DefaultMetricsPort
}

// withDefaultPort appends port to a bare IP address; anything else is
// returned unchanged (Validate judges it).
func withDefaultPort(addr, port string) string {
	if _, err := netip.ParseAddr(addr); err == nil {
		return net.JoinHostPort(addr, port)
	}
	return addr
}
