package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"

	"github.com/lbkit/lbkit/internal/nsutil"
	"github.com/lbkit/lbkit/lb"
	"github.com/lbkit/lbkit/proxyd/config"
	"github.com/lbkit/lbkit/proxyd/health"
	"github.com/lbkit/lbkit/sources/kube"
)

// nodeWaitTimeout bounds how long proxyd waits at start for its Node to
// exist (kube-proxy waits too: a kubelet may register the node just after
// proxyd starts). Without it, "primary" nodePortAddresses fall back to the
// interfaces' addresses and the zone is learnt when the Node appears.
const nodeWaitTimeout = 30 * time.Second

// useKubernetes reports whether services come from Kubernetes: whenever
// no services file is given.
func useKubernetes(cfg *config.Config) bool { return cfg.Lbkit.Services == "" }

// kubeClient connects to the API server the configuration names (or the
// in-cluster one) and sends client-go's own logs through log.
func kubeClient(cfg *config.Config, log *zap.Logger) (kubernetes.Interface, error) {
	klog.SetLogger(logr.FromSlogHandler(slogOf(log.Named("client-go")).Handler()))
	cc := cfg.ClientConnection
	return kube.NewClient(kube.ClientOptions{
		Kubeconfig: cc.Kubeconfig, QPS: cc.QPS, Burst: int(cc.Burst),
		ContentType: cc.ContentType, AcceptContentTypes: cc.AcceptContentTypes,
		UserAgent: "lbkit-proxyd/" + version,
	})
}

// waitForNode reads this node's Node, waiting up to nodeWaitTimeout for
// it to exist. A Node that cannot be read is logged and an empty state
// returned: proxyd still serves, with what it can tell without it.
func waitForNode(ctx context.Context, client kubernetes.Interface, name string, log *zap.Logger) kube.NodeState {
	ctx, cancel := context.WithTimeout(ctx, nodeWaitTimeout)
	defer cancel()
	said := false
	for {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			return kube.NodeStateOf(n)
		}
		if !said {
			log.Info("waiting for this node's Node object", zap.String("node", name), zap.Error(err))
			said = true
		}
		select {
		case <-ctx.Done():
			msg := "this node's Node object cannot be read; going on without its addresses and zone (they are learnt if it appears)"
			if apierrors.IsForbidden(err) {
				msg = "not allowed to read this node's Node object (RBAC: get nodes); going on without its addresses and zone"
			}
			log.Warn(msg, zap.String("node", name), zap.Error(err))
			return kube.NodeState{}
		case <-time.After(time.Second):
		}
	}
}

// kubeSource runs the Kubernetes source with what proxyd adds around it:
// Events, health check node ports and the node's eligibility.
type kubeSource struct {
	src         *kube.Source
	broadcaster events.EventBroadcaster
	services    *health.ServiceServers
	// restart receives an error when the node changed in a way proxyd
	// cannot follow live (its primary IPs, when nodePortAddresses uses
	// them): Run returns it, and the DaemonSet restarts proxyd.
	restart chan error
}

// newKubeSource builds the Kubernetes source feeding eng. startNode is the
// Node as read at start; nodeIPsInUse says its IPs were given to the
// datapath.
func newKubeSource(cfg *config.Config, client kubernetes.Interface, eng *lb.Engine, hc *health.Checker,
	startNode kube.NodeState, nodeIPsInUse bool, node string, log *zap.Logger, synced func()) (*kubeSource, error) {
	ks := &kubeSource{restart: make(chan error, 1)}
	ks.broadcaster = events.NewBroadcaster(&events.EventSinkImpl{Interface: client.EventsV1()})
	netns := cfg.Lbkit.Netns
	ks.services = health.NewServiceServers(func(port uint16) (net.Listener, error) {
		var ln net.Listener
		err := nsutil.Do(netns, func() error {
			var err error
			ln, err = net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(int(port))))
			return err
		})
		return ln, err
	}, hc.ProxyHealthy, slogOf(log.Named("healthcheck-nodeport")))

	startIPs := startNode.Primary()
	onNode := func(st kube.NodeState) {
		if !st.Exists {
			hc.SetNodeEligible(false, "the Node object was deleted")
			log.Warn("this node's Node object was deleted; /healthz fails until it is back", zap.String("node", node))
			return
		}
		hc.SetNodeEligible(st.Eligible, st.Reason)
		if ips := st.Primary(); nodeIPsInUse && !slices.Equal(ips, startIPs) {
			err := fmt.Errorf("the node's primary IPs changed from %v to %v; exiting so that proxyd restarts with them (as kube-proxy does)", startIPs, ips)
			select {
			case ks.restart <- err:
			default:
			}
		}
	}
	src, err := kube.New(client, eng, kube.Options{
		NodeName:         node,
		ServiceProxyName: cfg.Lbkit.ServiceProxyName,
		ResyncPeriod:     cfg.ConfigSyncPeriod.Duration,
		Logger:           slogOf(log.Named("kubernetes")),
		Synced:           synced,
		Node:             onNode,
		Health:           ks.services,
		Events:           ks.broadcaster.NewRecorder(scheme.Scheme, "lbkit-proxyd"),
	})
	if err != nil {
		return nil, err
	}
	ks.src = src
	return ks, nil
}

// StatusChanged passes the engine's status changes on as Events.
func (ks *kubeSource) StatusChanged(st lb.ServiceStatus) { ks.src.StatusChanged(st) }

// Load does nothing: the informers list everything when Run starts.
func (ks *kubeSource) Load() error { return nil }

// Run runs the source until ctx is done or the node changed in a way
// that needs a restart.
func (ks *kubeSource) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := ks.broadcaster.StartRecordingToSinkWithContext(ctx); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	defer ks.broadcaster.Shutdown()
	defer ks.services.Close()
	done := make(chan error, 1)
	go func() { done <- ks.src.Run(ctx) }()
	select {
	case err := <-done:
		return err
	case err := <-ks.restart:
		cancel()
		<-done
		return err
	}
}

// nodeIPsUsed reports whether the datapath takes the Node's IPs: only
// "primary" nodePortAddresses do.
func nodeIPsUsed(cfg *config.Config, ips []netip.Addr) bool {
	return len(ips) > 0 && usesPrimaryIPs(cfg)
}
