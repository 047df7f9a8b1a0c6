// Command proxyd is lbkit's daemon: it does for a node what kube-proxy does,
// programming one datapath (userspace, iptables, nftables, ipvs or ebpf) from
// a services file or, later, from Kubernetes.
//
//	proxyd --mode=userspace --services examples/services.yaml
//	proxyd --config kube-proxy.yaml          # an operator's KubeProxyConfiguration
//	proxyd --cleanup [--mode=MODE]           # remove everything lbkit installed
//	proxyd --write-config-to FILE            # the effective configuration, then exit
//	proxyd explain VIP:PORT[/PROTO] [-o json]
//	proxyd version                           # or --version
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches the subcommands and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version", "--version", "-version":
			fmt.Fprintln(stdout, versionString())
			return 0
		case "explain":
			return explainCommand(args[1:], stdout, stderr)
		}
	}
	return daemonCommand(args, stdout, stderr)
}
