package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"

	"github.com/lbkit/lbkit/lb"
	"github.com/lbkit/lbkit/proxyd/config"
	"github.com/lbkit/lbkit/proxyd/health"
	"github.com/lbkit/lbkit/proxyd/metrics"
	"github.com/lbkit/lbkit/sources/file"
	"github.com/lbkit/lbkit/sources/kube"
)

// shutdownTimeout bounds how long the HTTP servers get to finish on exit.
const shutdownTimeout = 5 * time.Second

// daemonCommand parses flags and config, then runs the daemon, --cleanup or
// --write-config-to. It returns the exit code.
func daemonCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("proxyd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flags := config.NewFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: proxyd [flags]            run the daemon")
		fmt.Fprintln(stderr, "       proxyd explain IP:PORT[/PROTO] | SERVICE [-o json]")
		fmt.Fprintln(stderr, "       proxyd version (or --version)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "proxyd: unexpected argument %q (subcommands: explain, version)\n", fs.Arg(0))
		return 2
	}
	cfg, warnings, err := flags.Resolve(fs)
	if err != nil {
		fmt.Fprintln(stderr, "proxyd:", err)
		return 1
	}
	if flags.WriteConfigTo != "" {
		if err := writeConfig(cfg, flags.WriteConfigTo, stdout); err != nil {
			fmt.Fprintln(stderr, "proxyd:", err)
			return 1
		}
		return 0
	}
	log, err := newLogger(cfg.Lbkit.LogFormat, cfg.Lbkit.Verbosity, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "proxyd:", err)
		return 1
	}
	defer func() { _ = log.Sync() }()
	for _, w := range warnings {
		log.Warn(w)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	if flags.Cleanup {
		modeGiven := false
		fs.Visit(func(f *flag.Flag) { modeGiven = modeGiven || f.Name == "mode" })
		if err := cleanupAll(ctx, cfg, modeGiven || flags.ConfigFile != "" && cfg.Mode != "", log); err != nil {
			log.Error("cleanup failed", zap.Error(err))
			return 1
		}
		return 0
	}
	if err := runDaemon(ctx, cfg, log); err != nil {
		log.Error("proxyd failed", zap.Error(err))
		return 1
	}
	return 0
}

// writeConfig writes the effective configuration to path ("-" = stdout).
func writeConfig(cfg *config.Config, path string, stdout io.Writer) error {
	data, err := cfg.Marshal()
	if err != nil {
		return err
	}
	if path == "-" {
		_, err = stdout.Write(data)
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("--write-config-to: %w", err)
	}
	return nil
}

// nodeName is hostnameOverride, else the lower-cased hostname.
func nodeName(cfg *config.Config) string {
	if cfg.HostnameOverride != "" {
		return strings.ToLower(strings.TrimSpace(cfg.HostnameOverride))
	}
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return strings.ToLower(h)
}

// runDaemon runs until ctx is done. On the way out it leaves a kernel
// datapath programmed, as kube-proxy does, so traffic keeps flowing while
// proxyd restarts; the next start adopts what it finds.
func runDaemon(ctx context.Context, cfg *config.Config, log *zap.Logger) error {
	tuneGC()
	mode := cfg.EffectiveMode()
	m := metrics.New(mode)
	node := nodeName(cfg)

	// With Kubernetes, read this node's Node first: its IPs are the
	// "primary" NodePort addresses and its zone picks topology hints.
	var client kubernetes.Interface
	var startNode kube.NodeState
	if useKubernetes(cfg) {
		var err error
		if client, err = kubeClient(cfg, log); err != nil {
			return err
		}
		startNode = waitForNode(ctx, client, node, log)
	}
	nodeIPs := startNode.Primary()
	nodeIPsInUse := nodeIPsUsed(cfg, nodeIPs)
	deps := datapathDeps{partialFallback: m.PartialFallback}
	if nodeIPsInUse {
		deps.nodeIPs = nodeIPs
	}
	dp, err := newDatapath(cfg, log, deps)
	if err != nil {
		return err
	}
	syncPeriod, minSyncPeriod := cfg.SyncPeriods()
	hooks := m.Hooks()
	// Status changes become Kubernetes Events once the source exists.
	var onStatus atomic.Pointer[func(lb.ServiceStatus)]
	metricsStatus := hooks.StatusChanged
	hooks.StatusChanged = func(st lb.ServiceStatus) {
		if metricsStatus != nil {
			metricsStatus(st)
		}
		if f := onStatus.Load(); f != nil {
			(*f)(st)
		}
	}
	eng, err := lb.NewEngine(dp, lb.Config{
		NodeName: node, NodeZone: startNode.Zone,
		SyncPeriod: syncPeriod, MinSyncPeriod: minSyncPeriod,
		// Nothing can be programmed before the source has listed
		// everything, and syncing before would remove what an earlier
		// process left serving: wait for it however long it takes
		// (/healthz says what is awaited).
		InitialSyncTimeout: -1,
		Logger:             slogOf(log.Named("engine").With(zap.String("mode", mode))),
		Hooks:              hooks,
	})
	if err != nil {
		return err
	}
	m.ObserveServices(func() map[lb.Phase]int { return eng.Status().Phases })
	retireOtherModes(ctx, cfg, eng, log)
	hc := health.New(eng.Status, syncPeriod, node, nil)
	// The first full sync, which prunes what an earlier process left and
	// the source no longer has, waits until the source's state is in.
	var src source
	if client != nil {
		ks, err := newKubeSource(cfg, client, eng, hc, startNode, nodeIPsInUse, node, log, eng.RegisterSource("kubernetes"))
		if err != nil {
			return err
		}
		f := ks.StatusChanged
		onStatus.Store(&f)
		src = ks
	} else {
		src = newFileSource(cfg, eng, m, log, eng.RegisterSource("services-file"))
	}
	applyConntrack(cfg, log)

	// Bind the HTTP servers before anything runs: a port in use is fatal.
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	mux.Handle(explainPath, engineExplainHandler(eng))
	if cfg.EnableProfiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	handlers := map[string]http.Handler{cfg.MetricsBindAddress: mux, cfg.HealthzBindAddress: hc.Handler()}
	if cfg.MetricsBindAddress == cfg.HealthzBindAddress {
		mux.Handle("/healthz", hc.Handler())
		mux.Handle("/livez", hc.Handler())
		handlers = map[string]http.Handler{cfg.MetricsBindAddress: mux}
	}
	servers, err := listenAll(handlers)
	if err != nil {
		return err
	}
	// A file that is not there yet (a volume still being mounted) is
	// waited for: nothing is synced, so whatever an earlier process
	// programmed keeps serving, and /healthz says what is missing. A file
	// that is there but wrong stops proxyd with its line and field.
	if err := src.Load(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		closeAll(servers)
		return err
	}
	source := "kubernetes"
	if client == nil {
		source = "file " + cfg.Lbkit.Services
	}
	log.Info("proxyd started",
		zap.String("version", versionString()), zap.String("mode", mode), zap.String("node", node),
		zap.String("source", source), zap.String("metrics", cfg.MetricsBindAddress),
		zap.String("healthz", cfg.HealthzBindAddress), zap.Duration("syncPeriod", syncPeriod),
		zap.Duration("minSyncPeriod", minSyncPeriod))

	done := make(chan error, 2+len(servers))
	go func() { done <- eng.Run(ctx) }()
	go func() { done <- src.Run(ctx) }()
	for _, s := range servers {
		go func() { done <- s.serve() }()
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-done:
		if errors.Is(runErr, context.Canceled) {
			runErr = nil
		}
	}
	log.Info("proxyd stopping")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	for _, s := range servers {
		_ = s.srv.Shutdown(sctx)
	}
	// Close keeps a kernel datapath programmed, so traffic flows while
	// proxyd restarts; the userspace proxy's listeners end with it.
	if persistent(mode) {
		log.Info("leaving the datapath programmed; proxyd --cleanup removes it", zap.String("mode", eng.Datapath().Name()))
	}
	if err := eng.Datapath().Close(); err != nil {
		log.Warn("the datapath did not close cleanly", zap.Error(err))
	}
	return runErr
}

// defaultGCPercent is proxyd's GOGC unless the environment sets one. At
// 10k services the live heap is about 70 MB, and Go's default of 100 lets
// the heap grow to twice that between collections: a node agent should
// rather spend a little more CPU on the collector (syncs allocate in
// bursts) than hold that memory.
const defaultGCPercent = 50

// tuneGC applies defaultGCPercent when GOGC is not set.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}

// retireOtherModes finds the state other modes left in the namespace (a
// mode change, or an iptables flavour change) and hands it to the engine,
// which removes it once this mode's first full sync has programmed
// everything: traffic moves from the old rules to the new ones without a
// moment with neither.
func retireOtherModes(ctx context.Context, cfg *config.Config, eng *lb.Engine, log *zap.Logger) {
	if !persistent(cfg.EffectiveMode()) && os.Geteuid() != 0 {
		return // an unprivileged userspace proxy can neither see nor remove kernel state
	}
	left, err := detectOtherModes(ctx, cfg, log)
	if err != nil {
		log.Warn("could not look for the state of other modes; whatever they left stays until proxyd --cleanup", zap.Error(err))
	}
	for _, l := range left {
		log.Info("found the state of another mode; removing it once this mode is programmed",
			zap.String("state", l.Mode), zap.Strings("found", l.Found))
		eng.Retire(l.Cleaner)
	}
}

// source is where services come from.
type source interface {
	Load() error
	Run(ctx context.Context) error
}

// newFileSource builds the services file source; it calls synced once,
// when its first state is in the engine.
func newFileSource(cfg *config.Config, eng *lb.Engine, m *metrics.Metrics, log *zap.Logger, synced func()) source {
	if cfg.ClientConnection.Kubeconfig != "" {
		log.Warn("a services file is given: the kubeconfig is not used",
			zap.String("services", cfg.Lbkit.Services), zap.String("kubeconfig", cfg.ClientConnection.Kubeconfig))
	}
	var once sync.Once
	return file.New(cfg.Lbkit.Services, eng, file.Options{
		Logger:    slogOf(log.Named("services-file")),
		OnError:   func(error) { m.ConfigReloadError("file") },
		OnApplied: func(int) { once.Do(synced) },
	})
}

// httpServer is one bound HTTP server.
type httpServer struct {
	srv *http.Server
	ln  net.Listener
}

func (s *httpServer) serve() error {
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", s.ln.Addr(), err)
	}
	return nil
}

// listenAll binds one server per non-empty address; an empty address
// disables that server.
func listenAll(handlers map[string]http.Handler) ([]*httpServer, error) {
	var out []*httpServer
	for addr, h := range handlers {
		if addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll(out)
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		out = append(out, &httpServer{srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, ln: ln})
	}
	return out, nil
}

func closeAll(servers []*httpServer) {
	for _, s := range servers {
		_ = s.ln.Close()
	}
}
