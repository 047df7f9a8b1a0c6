package config

// ignoredFields are the KubeProxyConfiguration v1alpha1 fields (current and
// removed ones an old file may still carry) that lbkit does not implement.
// They load with a warning, so an operator's kube-proxy file works as it is;
// the value is a hint for the warning, empty when there is none. The contents
// of an ignored field are not looked at.
func ignoredFields() map[string]string {
	return map[string]string{
		"featureGates":                "",
		"logging":                     "lbkit.logFormat, lbkit.verbosity and -v set logging",
		"bindAddressHardFail":         "",
		"showHiddenMetricsForVersion": "",
		"winkernel":                   "",
		"windowsRunAsService":         "",
		"detectLocalMode":             "",
		"detectLocal":                 "",
		"portRange":                   "",
		"oomScoreAdj":                 "",
		"udpIdleTimeout":              "lbkit.userspace.udpIdleTimeout sets the userspace UDP idle timeout",
		"resourceContainer":           "",
		"iptables.snatNodeInternalIP": "",
		"conntrack.max":               "",
		"conntrack.tcpBeLiberal":      "",
		"conntrack.udpTimeout":        "",
		"conntrack.udpStreamTimeout":  "",
	}
}
