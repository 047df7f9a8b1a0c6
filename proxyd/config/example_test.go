package config_test

import (
	"flag"
	"fmt"

	"github.com/lbkit/lbkit/proxyd/config"
)

// proxyd's start: flags registered on a FlagSet, the kube-proxy file kubeadm
// wrote loaded, the flags given on the command line applied over it.
func ExampleFlags_Resolve() {
	fs := flag.NewFlagSet("proxyd", flag.ContinueOnError)
	flags := config.NewFlags(fs)
	args := []string{"--config", "testdata/kubeadm.yaml", "--mode", "nftables", "--iptables-min-sync-period", "250ms"}
	if err := fs.Parse(args); err != nil {
		fmt.Println(err)
		return
	}
	cfg, warnings, err := flags.Resolve(fs)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(warnings[0])
	syncPeriod, minSyncPeriod := cfg.SyncPeriods()
	fmt.Println(cfg.EffectiveMode(), syncPeriod, minSyncPeriod, cfg.ClusterCIDR, cfg.MetricsBindAddress)
	// Output:
	// testdata/kubeadm.yaml:6: field "bindAddressHardFail" accepted but ignored by lbkit
	// nftables 30s 250ms 10.244.0.0/16 0.0.0.0:10249
}

// Every problem names the file, the line and the field.
func ExampleParse() {
	data := []byte(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
iptables:
  masqueradeBits: 14
  syncPeriod: 30
`)
	_, _, err := config.Parse(data, "kube-proxy.yaml")
	fmt.Println(err)
	// Output:
	// kube-proxy.yaml:4: unknown field "iptables.masqueradeBits"
	// kube-proxy.yaml:5: iptables.syncPeriod: invalid duration "30": time: missing unit in duration
}
