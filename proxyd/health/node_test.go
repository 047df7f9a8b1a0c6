package health

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lbkit/lbkit/lb"
)

// A node being deleted or drained fails /healthz (load balancers drain
// it) but not /livez (it must not be restarted), and the body says so in
// kube-proxy's nodeEligible field.
func TestIneligibleNodeFailsHealthzNotLivez(t *testing.T) {
	status, now := fixed(lb.Status{LastSync: t0, LastFullSync: t0}, t0.Add(time.Second))
	c := New(status, 30*time.Second, "node-a", now)
	if _, body := probe(t, c, "/healthz"); body["nodeEligible"] != nil {
		t.Errorf("nodeEligible = %v without a watched Node, want it absent", body["nodeEligible"])
	}
	c.SetNodeEligible(true, "")
	if code, body := probe(t, c, "/healthz"); code != http.StatusOK || body["nodeEligible"] != true {
		t.Fatalf("eligible node: %d %v", code, body)
	}
	c.SetNodeEligible(false, "the node has the ToBeDeletedByClusterAutoscaler taint")
	code, body := probe(t, c, "/healthz")
	if code != http.StatusServiceUnavailable || body["nodeEligible"] != false {
		t.Fatalf("ineligible node: %d %v", code, body)
	}
	if r, _ := body["reason"].(string); !strings.Contains(r, "ToBeDeletedByClusterAutoscaler") {
		t.Errorf("reason %q does not name the taint", r)
	}
	if code, _ := probe(t, c, "/livez"); code != http.StatusOK {
		t.Errorf("/livez %d, want 200 whatever the node", code)
	}
	if !c.ProxyHealthy() {
		t.Error("ProxyHealthy false: the proxy itself is healthy, only the node is not eligible")
	}
}
