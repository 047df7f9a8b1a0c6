package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The KubeProxyConfiguration of examples/kubernetes/configmap.yaml loads
// in proxyd as it is: no error, and no field accepted but ignored.
func TestExampleConfigMapLoads(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "kubernetes", "configmap.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		t.Fatal(err)
	}
	body, ok := cm.Data["config.yaml"]
	if !ok {
		t.Fatal("the ConfigMap has no config.yaml")
	}
	c, warnings, err := Parse([]byte(body), "configmap.yaml:config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings:\n%s", strings.Join(warnings, "\n"))
	}
	if c.EffectiveMode() != ModeIPVS || c.ClientConnection.ContentType != ContentTypeProtobuf || !c.IPVS.StrictARP {
		t.Errorf("mode %q, content type %q, strictARP %v", c.Mode, c.ClientConnection.ContentType, c.IPVS.StrictARP)
	}
}
