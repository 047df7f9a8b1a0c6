package health

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// ServiceServers serves the health check node ports of Kubernetes
// services with externalTrafficPolicy=Local, as kube-proxy does: one HTTP
// server per port, answering 200 only when the service has at least one
// ready endpoint on this node and the proxy is healthy, and 503 otherwise,
// so that a cloud load balancer sends the service's traffic only to nodes
// that can serve it without a second hop. It implements
// sources/kube.ServiceHealth and is safe for concurrent use.
type ServiceServers struct {
	listen  func(port uint16) (net.Listener, error)
	healthy func() bool
	log     *slog.Logger

	mu      sync.Mutex
	servers map[uint16]*serviceServer
	byName  map[types.NamespacedName]uint16
}

type serviceServer struct {
	name  types.NamespacedName
	local int
	srv   *http.Server
}

// NewServiceServers returns servers that bind with listen (for example on
// every address of the node's network namespace) and ask healthy whether
// the proxy itself is healthy (the node-independent part of /healthz).
func NewServiceServers(listen func(port uint16) (net.Listener, error), healthy func() bool, log *slog.Logger) *ServiceServers {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ServiceServers{
		listen: listen, healthy: healthy, log: log,
		servers: make(map[uint16]*serviceServer),
		byName:  make(map[types.NamespacedName]uint16),
	}
}

// SetService serves service nn's health on port with localEndpoints ready
// endpoints on this node; port zero stops serving it. A port that cannot
// be bound is logged and tried again on the service's next change.
func (s *ServiceServers) SetService(nn types.NamespacedName, port uint16, localEndpoints int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.byName[nn]; ok && old != port {
		s.stopLocked(old)
		delete(s.byName, nn)
	}
	if port == 0 {
		return
	}
	if srv, ok := s.servers[port]; ok {
		if srv.name != nn {
			s.log.Error("health check node port already served for another service; not serving it twice",
				"port", port, "service", nn.String(), "servedFor", srv.name.String())
			return
		}
		srv.local = localEndpoints
		return
	}
	ln, err := s.listen(port)
	if err != nil {
		s.log.Error("cannot serve a health check node port", "port", port, "service", nn.String(), "error", err)
		return
	}
	srv := &serviceServer{name: nn, local: localEndpoints}
	srv.srv = &http.Server{Handler: s.handler(port), ReadHeaderTimeout: 10 * time.Second}
	s.servers[port] = srv
	s.byName[nn] = port
	go func() {
		if err := srv.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("health check node port server failed", "port", port, "error", err)
		}
	}()
	s.log.Info("serving a health check node port", "port", port, "service", nn.String())
}

func (s *ServiceServers) stopLocked(port uint16) {
	if srv, ok := s.servers[port]; ok {
		_ = srv.srv.Close()
		delete(s.servers, port)
	}
}

// Close stops every server.
func (s *ServiceServers) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for port := range s.servers {
		s.stopLocked(port)
	}
	clear(s.byName)
}

// ServiceReport is the JSON body of a health check node port, with
// kube-proxy's field names.
type ServiceReport struct {
	Service struct {
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"service"`
	LocalEndpoints      int  `json:"localEndpoints"`
	ServiceProxyHealthy bool `json:"serviceProxyHealthy"`
}

func (s *ServiceServers) handler(port uint16) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		srv, ok := s.servers[port]
		var r ServiceReport
		if ok {
			r.Service.Namespace, r.Service.Name, r.LocalEndpoints = srv.name.Namespace, srv.name.Name, srv.local
		}
		s.mu.Unlock()
		if !ok {
			http.Error(w, fmt.Sprintf("no service on health check port %d", port), http.StatusServiceUnavailable)
			return
		}
		r.ServiceProxyHealthy = s.healthy()
		code := http.StatusOK
		if r.LocalEndpoints == 0 || !r.ServiceProxyHealthy {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, r)
	})
}
