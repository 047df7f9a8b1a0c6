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
// An empty apiVersion or kind is written as APIVersion and Kind, an empty
// mode as the effective one (EffectiveMode). Fields of the file c was
// parsed from that lbkit ignores are not written; comments at the top name
// them, with Parse's warnings.
func (c *Config) Marshal() ([]byte, error) {
	out := *c
	if out.APIVersion == "" {
		out.APIVersion = APIVersion
	}
	if out.Kind == "" {
		out.Kind = Kind
	}
	out.Mode = c.EffectiveMode()
	var buf bytes.Buffer
	if c.origin != nil && len(c.origin.ignored) > 0 {
		fmt.Fprintf(&buf, "# lbkit ignores these fields of %s; they are left out below:\n", c.origin.file)
		for _, w := range c.origin.ignored {
			fmt.Fprintf(&buf, "#   %s\n", w)
		}
	}
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
