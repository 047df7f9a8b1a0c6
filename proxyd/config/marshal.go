package config

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Marshal writes the configuration as a KubeProxyConfiguration YAML document
// with apiVersion and kind, every field present, two-space indented: what
// `proxyd --write-config-to` writes. Parse reads it back to the same
// configuration, with one exception kube-proxy shares: a zero
// iptables/nftables minSyncPeriod, ipvs/iptables/nftables syncPeriod or empty
// bindAddress reads back as the default, since a file's zero means "unset".
//
// An empty apiVersion or kind is written as APIVersion and Kind.
func (c *Config) Marshal() ([]byte, error) {
	out := *c
	if out.APIVersion == "" {
		out.APIVersion = APIVersion
	}
	if out.Kind == "" {
		out.Kind = Kind
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&out); err != nil {
		return nil, fmt.Errorf("config: marshal: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("config: marshal: %w", err)
	}
	return buf.Bytes(), nil
}
