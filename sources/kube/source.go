package kube

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/lbkit/lbkit/lb"
)

// Sink is what a Source feeds; *lb.Engine implements it.
type Sink interface {
	Upsert(*lb.Service) error
	Delete(lb.ServiceKey)
	SetEndpoints(lb.ServiceKey, []lb.Endpoint) error
}

// triggeredSink is implemented by sinks that measure network programming
// latency from a change's trigger time (*lb.Engine).
type triggeredSink interface {
	SetEndpointsTriggered(lb.ServiceKey, []lb.Endpoint, time.Time) error
}

// zoneSink is implemented by sinks that select endpoints by this node's
// zone (*lb.Engine).
type zoneSink interface {
	SetNodeZone(string)
}

// Options configures a Source.
type Options struct {
	// NodeName is this node's name: its Node is watched for its zone,
	// addresses and eligibility, and its endpoints are local.
	NodeName string
	// ServiceProxyName, when set, makes the source serve exactly the
	// services labelled service.kubernetes.io/service-proxy-name=NAME
	// (which the default proxy ignores), so that it runs beside
	// kube-proxy. Empty serves the services without that label.
	ServiceProxyName string
	// ResyncPeriod is the informers' resync period (kube-proxy's
	// configSyncPeriod); zero disables resyncs.
	ResyncPeriod time.Duration
	// Logger receives a line per problem; nil logs nothing.
	Logger *slog.Logger
	// Synced is called once, when the services and EndpointSlices listed
	// at start are in the sink (the engine's initial-sync gate).
	Synced func()
	// Node is called with this node's state whenever it changes, and
	// once with Exists false if it is deleted.
	Node func(NodeState)
	// Health, when set, gets the health check node ports of
	// externalTrafficPolicy=Local services and their local endpoints.
	Health ServiceHealth
	// Events, when set, records an Event on a Service whose status in
	// the engine turns bad (or good again); see Source.StatusChanged.
	Events EventRecorder
}

// Source keeps a Sink in step with the Services and EndpointSlices of a
// cluster. Create it with New, then Run it.
type Source struct {
	client  kubernetes.Interface
	sink    Sink
	opts    Options
	log     *slog.Logger
	sel     string    // the label selector of Services and EndpointSlices
	started time.Time // trigger times before this are not this process's latency
	factory informers.SharedInformerFactory
	nodes   informers.SharedInformerFactory

	mu    sync.Mutex
	state *state

	// Status changes wait here for Run to record them (see
	// StatusChanged).
	statusMu   sync.Mutex
	statusQ    []lb.ServiceStatus
	statusKick chan struct{}
}

// New returns a Source watching the cluster of client.
func New(client kubernetes.Interface, sink Sink, opts Options) (*Source, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	sel, err := labelSelector(opts.ServiceProxyName)
	if err != nil {
		return nil, err
	}
	s := &Source{
		client: client, sink: sink, opts: opts,
		log:        opts.Logger,
		sel:        sel,
		started:    time.Now(),
		state:      newState(opts.NodeName),
		statusKick: make(chan struct{}, 1),
	}
	s.factory = informers.NewSharedInformerFactoryWithOptions(client, opts.ResyncPeriod,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = sel }))
	if opts.NodeName != "" {
		s.nodes = informers.NewSharedInformerFactoryWithOptions(client, opts.ResyncPeriod,
			informers.WithTweakListOptions(func(o *metav1.ListOptions) {
				o.FieldSelector = fields.OneTermEqualSelector("metadata.name", opts.NodeName).String()
			}))
	}
	return s, nil
}

// labelSelector is kube-proxy's: no service-proxy-name label (or exactly
// ours) and no headless label.
func labelSelector(proxyName string) (string, error) {
	var proxy *labels.Requirement
	var err error
	if proxyName == "" {
		proxy, err = labels.NewRequirement(LabelServiceProxyName, selection.DoesNotExist, nil)
	} else {
		proxy, err = labels.NewRequirement(LabelServiceProxyName, selection.Equals, []string{proxyName})
	}
	if err != nil {
		return "", fmt.Errorf("service proxy name %q: %w", proxyName, err)
	}
	headless, err := labels.NewRequirement(LabelHeadless, selection.DoesNotExist, nil)
	if err != nil {
		return "", err
	}
	return labels.NewSelector().Add(*proxy, *headless).String(), nil
}

// Run starts the informers and feeds the sink until ctx is done. It calls
// Options.Synced once the first listing is in the sink.
func (s *Source) Run(ctx context.Context) error {
	svcInf := s.factory.InformerFor(&corev1.Service{}, s.newServiceInformer)
	sliceInf := s.factory.Discovery().V1().EndpointSlices().Informer()
	if err := sliceInf.SetTransform(stripSlice); err != nil {
		return fmt.Errorf("endpointslice informer: %w", err)
	}
	if _, err := svcInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { s.serviceChanged(o) },
		UpdateFunc: func(_, o any) { s.serviceChanged(o) },
		DeleteFunc: func(o any) { s.serviceDeleted(o) },
	}); err != nil {
		return err
	}
	if _, err := sliceInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { s.sliceChanged(o, false) },
		UpdateFunc: func(_, o any) { s.sliceChanged(o, false) },
		DeleteFunc: func(o any) { s.sliceChanged(o, true) },
	}); err != nil {
		return err
	}
	synced := []cache.InformerSynced{svcInf.HasSynced, sliceInf.HasSynced}
	if s.nodes != nil {
		nodeInf := s.nodes.Core().V1().Nodes().Informer()
		if err := nodeInf.SetTransform(stripNode); err != nil {
			return fmt.Errorf("node informer: %w", err)
		}
		if _, err := nodeInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { s.nodeChanged(o, false) },
			UpdateFunc: func(_, o any) { s.nodeChanged(o, false) },
			DeleteFunc: func(o any) { s.nodeChanged(o, true) },
		}); err != nil {
			return err
		}
		s.nodes.Start(ctx.Done())
		synced = append(synced, nodeInf.HasSynced)
	}
	go s.recordStatuses(ctx.Done())
	s.factory.Start(ctx.Done())
	defer s.factory.Shutdown()
	if s.nodes != nil {
		defer s.nodes.Shutdown()
	}
	if !cache.WaitForNamedCacheSync("lbkit-proxyd", ctx.Done(), synced...) {
		return ctx.Err()
	}
	s.mu.Lock()
	n := len(s.state.services)
	s.mu.Unlock()
	s.log.Info("kubernetes source synced", "services", n)
	if s.opts.Synced != nil {
		s.opts.Synced()
	}
	<-ctx.Done()
	return nil
}

// newServiceInformer lists and watches Services as kube-proxy does: the
// label selector, and no headless services (field selector).
func (s *Source) newServiceInformer(client kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
	inf := coreinformers.NewFilteredServiceInformer(client, corev1.NamespaceAll, resync, cache.Indexers{},
		func(o *metav1.ListOptions) {
			o.LabelSelector = s.sel
			o.FieldSelector = "spec.clusterIP!=" + corev1.ClusterIPNone
		})
	_ = inf.SetTransform(stripService) // fails only once started
	return inf
}

// serviceChanged applies a Service's new state.
func (s *Source) serviceChanged(o any) {
	svc, ok := o.(*corev1.Service)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applyService(types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}, svc)
}

func (s *Source) serviceDeleted(o any) {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	svc, ok := o.(*corev1.Service)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applyService(types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}, nil)
}

// sliceChanged applies an EndpointSlice's new state, or its removal.
func (s *Source) sliceChanged(o any, deleted bool) {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o, deleted = d.Obj, true
	}
	sl, ok := o.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	svcName := sl.Labels[LabelServiceName]
	if svcName == "" {
		return // not a Service's slice
	}
	nn := types.NamespacedName{Namespace: sl.Namespace, Name: svcName}
	trigger := triggerTime(sl)
	if trigger.Before(s.started) {
		trigger = time.Time{} // a change before this process is not its latency
	}
	var eps sliceEndpoints
	if !deleted {
		eps = translateSlice(sl)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applySlice(nn, sl.Name, eps, deleted, trigger)
}
