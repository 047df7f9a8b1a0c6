package kubernetes_test

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
)

// proxyConfig is the ConfigMap's KubeProxyConfiguration as a YAML tree.
type proxyConfig map[string]any

func (c proxyConfig) get(t *testing.T, field string) any {
	t.Helper()
	var v any = map[string]any(c)
	for _, k := range strings.Split(field, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("config.yaml: %s: %v is not a mapping", field, v)
		}
		if v, ok = m[k]; !ok {
			t.Fatalf("config.yaml has no %s", field)
		}
	}
	return v
}

func (c proxyConfig) duration(t *testing.T, field string) time.Duration {
	t.Helper()
	s, _ := c.get(t, field).(string)
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("config.yaml: %s: %v", field, err)
	}
	return d
}

// readConfig parses the ConfigMap's config.yaml.
func readConfig(t *testing.T, cm *corev1.ConfigMap) proxyConfig {
	t.Helper()
	for k := range cm.Data {
		if k != "config.yaml" && k != "apiServerHost" && k != "apiServerPort" {
			t.Errorf("ConfigMap key %q is used by nothing", k)
		}
	}
	text, ok := cm.Data["config.yaml"]
	if !ok {
		t.Fatal("the ConfigMap has no config.yaml")
	}
	// Into a plain map: yaml gives nested mappings the type of the outer one.
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		t.Fatalf("config.yaml: %v", err)
	}
	return cfg
}

// healthzPort is the port of the config's healthzBindAddress.
func healthzPort(t *testing.T, cfg proxyConfig) int32 {
	t.Helper()
	_, port, err := net.SplitHostPort(fmt.Sprint(cfg.get(t, "healthzBindAddress")))
	if err != nil {
		t.Fatalf("healthzBindAddress: %v", err)
	}
	p, err := strconv.ParseInt(port, 10, 32)
	if err != nil {
		t.Fatalf("healthzBindAddress: %v", err)
	}
	return int32(p)
}

func TestConfigMap(t *testing.T) {
	cfg := readConfig(t, readBase(t).cm)
	for field, want := range map[string]any{
		"apiVersion":                      "kubeproxy.config.k8s.io/v1alpha1",
		"kind":                            "KubeProxyConfiguration",
		"mode":                            "ipvs",
		"ipvs.scheduler":                  "rr",
		"ipvs.strictARP":                  true,
		"clientConnection.kubeconfig":     "",
		"clientConnection.contentType":    "application/vnd.kubernetes.protobuf",
		"healthzBindAddress":              "0.0.0.0:10256",
		"metricsBindAddress":              "127.0.0.1:10249",
		"conntrack.maxPerCore":            32768,
		"conntrack.min":                   131072,
		"conntrack.tcpEstablishedTimeout": "24h0m0s",
		"conntrack.tcpCloseWaitTimeout":   "1h0m0s",
	} {
		if got := cfg.get(t, field); got != want {
			t.Errorf("config.yaml: %s is %v (%T), want %v (%T)", field, got, got, want, want)
		}
	}
	qps, _ := cfg.get(t, "clientConnection.qps").(int)
	burst, _ := cfg.get(t, "clientConnection.burst").(int)
	if qps <= 0 || burst < qps {
		t.Errorf("config.yaml: clientConnection qps %d, burst %d: want qps > 0 and burst >= qps", qps, burst)
	}
	if d := cfg.duration(t, "configSyncPeriod"); d <= 0 {
		t.Errorf("config.yaml: configSyncPeriod %v", d)
	}
	for _, section := range []string{"ipvs", "iptables", "nftables"} {
		sync, min := cfg.duration(t, section+".syncPeriod"), cfg.duration(t, section+".minSyncPeriod")
		if sync <= 0 || min < 0 || min > sync {
			t.Errorf("config.yaml: %s.syncPeriod %v, minSyncPeriod %v: want 0 <= min <= sync, sync > 0", section, sync, min)
		}
	}
}
