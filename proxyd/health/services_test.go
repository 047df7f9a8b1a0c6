package health

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

// get asks a health check node port on loopback.
func get(t *testing.T, port uint16) (int, ServiceReport) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatalf("GET port %d: %v", port, err)
	}
	defer resp.Body.Close()
	var r ServiceReport
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("port %d: body: %v", port, err)
	}
	return resp.StatusCode, r
}

func TestServiceServers(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	// Ports are picked by the kernel: the test asks for port N and binds
	// a free one, remembering which.
	bound := map[uint16]uint16{}
	listen := func(port uint16) (net.Listener, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			bound[port] = uint16(ln.Addr().(*net.TCPAddr).Port)
		}
		return ln, err
	}
	s := NewServiceServers(listen, healthy.Load, nil)
	t.Cleanup(s.Close)
	web := types.NamespacedName{Namespace: "ns", Name: "web"}

	s.SetService(web, 31000, 0)
	if code, r := get(t, bound[31000]); code != http.StatusServiceUnavailable || r.LocalEndpoints != 0 || r.Service.Name != "web" {
		t.Fatalf("no local endpoints: %d %+v", code, r)
	}
	s.SetService(web, 31000, 2)
	if code, r := get(t, bound[31000]); code != http.StatusOK || r.LocalEndpoints != 2 || !r.ServiceProxyHealthy {
		t.Fatalf("two local endpoints: %d %+v", code, r)
	}
	healthy.Store(false)
	if code, r := get(t, bound[31000]); code != http.StatusServiceUnavailable || r.ServiceProxyHealthy {
		t.Fatalf("unhealthy proxy: %d %+v", code, r)
	}
	healthy.Store(true)

	// Another service cannot take the port; moving the service's port
	// stops the old server.
	s.SetService(types.NamespacedName{Namespace: "ns", Name: "other"}, 31000, 1)
	if _, r := get(t, bound[31000]); r.Service.Name != "web" {
		t.Fatalf("port taken over by %+v", r.Service)
	}
	old := bound[31000]
	s.SetService(web, 31001, 1)
	if code, _ := get(t, bound[31001]); code != http.StatusOK {
		t.Fatalf("moved port: %d", code)
	}
	if _, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", old)); err == nil {
		t.Error("the old port still answers after the service moved")
	}
	s.SetService(web, 0, 0)
	if _, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", bound[31001])); err == nil {
		t.Error("the port still answers after the service went away")
	}
}
