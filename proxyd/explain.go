package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lbkit/lbkit/lb"
	"github.com/lbkit/lbkit/proxyd/config"
)

// explainPath is where the daemon answers explain requests, on its metrics
// address.
const explainPath = "/lbkit/explain"

// explainEngine is what the explain handler reads: the datapath currently
// in use, the desired state it was given and the status of every service.
// *lb.Engine implements it.
type explainEngine interface {
	Datapath() lb.Datapath
	Snapshot() *lb.Snapshot
	ServiceStatus(lb.ServiceKey) (lb.ServiceStatus, bool)
	FrontendOwner(lb.FrontendID) (lb.ServiceKey, []lb.ServiceKey)
}

// explainResult is the daemon's answer: the datapath's inspection, plus
// every endpoint the service has, so that endpoints the datapath does not
// use (terminating, not ready) show up too.
type explainResult struct {
	lb.Inspection
	// Endpoints are all the service's endpoints with their state; empty when
	// the daemon's desired state is not known.
	Endpoints []explainEndpoint `json:"endpoints,omitempty"`
	// Status is the engine's verdict on the service.
	Status *explainStatus `json:"status,omitempty"`
}

// explainEndpoint is one endpoint of the inspected service.
type explainEndpoint struct {
	Addr     string `json:"addr"`
	State    string `json:"state"` // ready, terminating (serving), terminating, not ready
	InUse    bool   `json:"inUse"` // among the frontend's backends in the datapath
	NodeName string `json:"nodeName,omitempty"`
}

// engineExplainHandler answers GET /lbkit/explain?frontend=IP:PORT/PROTO by
// asking the engine's current datapath (which reads its kernel state, or for
// userspace its live state) how the frontend is realized, and adds the
// service's endpoints from the engine's desired state and its status. A
// frontend the datapath does not hold is answered with the services that
// ask for it and why they do not have it. ?service=KEY answers with the
// service's status and each frontend it holds.
func engineExplainHandler(eng explainEngine) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if key := r.URL.Query().Get("service"); key != "" {
			explainService(r.Context(), w, eng, lb.ServiceKey(key))
			return
		}
		id, err := lb.ParseFrontendID(r.URL.Query().Get("frontend"))
		if err != nil {
			writeFailure(w, http.StatusBadRequest, notProgrammed{Error: err.Error()})
			return
		}
		dp := eng.Datapath()
		in, ok := dp.(lb.Inspector)
		if !ok {
			writeFailure(w, http.StatusNotImplemented, notProgrammed{Error: fmt.Sprintf("the %s datapath cannot be inspected", dp.Name())})
			return
		}
		res, err := inspectFrontend(r.Context(), in, id)
		if err != nil {
			writeFailure(w, http.StatusNotFound, notProgrammed{Error: err.Error(), Waiting: waitingFor(eng, id)})
			return
		}
		out := withEndpoints(res, eng.Snapshot())
		if st, ok := eng.ServiceStatus(res.Service); ok {
			out.Status = statusOf(st)
		}
		_ = json.NewEncoder(w).Encode(out)
	})
}

// inspectFrontend inspects id; when nothing is programmed at that exact
// address, it looks for a NodePort on the unspecified address of id's family
// (0.0.0.0 or ::), which is how a NodePort served on every node address is
// stored, so that "explain NODEIP:NODEPORT" finds it.
func inspectFrontend(ctx context.Context, in lb.Inspector, id lb.FrontendID) (*lb.Inspection, error) {
	res, err := in.Inspect(ctx, id)
	if err == nil || !id.Addr.IsValid() || id.Addr.IsUnspecified() {
		return res, err
	}
	wild := lb.FrontendID{Addr: netip.IPv4Unspecified(), Port: id.Port, Protocol: id.Protocol}
	if id.Addr.Unmap().Is6() {
		wild.Addr = netip.IPv6Unspecified()
	}
	np, npErr := in.Inspect(ctx, wild)
	if npErr != nil || np.Frontend.Kind != lb.NodePort {
		return nil, err
	}
	np.Details = append([]string{fmt.Sprintf("%s is the NodePort %s, served on every node address", id, wild)}, np.Details...)
	return np, nil
}

// withEndpoints adds the service's endpoints from the desired state to an
// inspection, and marks the backends that are terminating endpoints.
func withEndpoints(in *lb.Inspection, desired *lb.Snapshot) *explainResult {
	res := &explainResult{Inspection: *in}
	st, ok := desired.Service(in.Service)
	if in.Service == "" || !ok {
		return res
	}
	res.Backends = slices.Clone(in.Backends)
	inUse := make(map[netip.AddrPort]bool, len(in.Backends))
	for _, b := range in.Backends {
		inUse[b.Addr] = true
	}
	for _, ep := range st.Endpoints {
		res.Endpoints = append(res.Endpoints, explainEndpoint{
			Addr: ep.Addr.String(), State: endpointState(ep), InUse: inUse[ep.Addr], NodeName: ep.NodeName,
		})
		if !ep.Terminating {
			continue
		}
		for i := range res.Backends {
			if res.Backends[i].Addr == ep.Addr {
				res.Backends[i].Terminating = true
			}
		}
	}
	return res
}

// endpointState names an endpoint's EndpointSlice conditions.
func endpointState(ep lb.Endpoint) string {
	switch {
	case ep.Terminating && ep.Serving:
		return "terminating (serving)"
	case ep.Terminating:
		return "terminating"
	case ep.Ready:
		return "ready"
	}
	return "not ready"
}

// explainCommand is "proxyd explain VIP:PORT[/PROTO]": it asks the running
// daemon and prints the answer.
func explainCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("proxyd explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	output := fs.String("o", "text", "output format: text or json")
	server := fs.String("server", "", "the daemon's metrics address (default: from --config, else 127.0.0.1:10249)")
	cfgFile := fs.String("config", "", "the daemon's config file, to find its metrics address")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: proxyd explain [-o text|json] [--server HOST:PORT | --config FILE] IP:PORT[/PROTO] | SERVICE")
		fs.PrintDefaults()
	}
	// Accept flags after the frontend too ("explain 198.18.100.1:80 -o json").
	var positional []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(positional) != 1 {
		fs.Usage()
		return 2
	}
	if *output != "text" && *output != "json" {
		fmt.Fprintf(stderr, "proxyd explain: -o %q: want text or json\n", *output)
		return 2
	}
	addr, err := explainServer(*server, *cfgFile)
	if err != nil {
		fmt.Fprintln(stderr, "proxyd explain:", err)
		return 1
	}
	if _, ipErr := netip.ParseAddr(positional[0]); ipErr != nil && !strings.Contains(positional[0], ":") {
		return explainServiceCommand(addr, lb.ServiceKey(positional[0]), *output == "json", stdout, stderr)
	}
	id, err := lb.ParseFrontendID(positional[0])
	if err != nil {
		fmt.Fprintln(stderr, "proxyd explain:", err)
		return 2
	}
	in, raw, err := fetchExplain(addr, id)
	if err != nil {
		fmt.Fprintln(stderr, "proxyd explain:", err)
		var np *notProgrammedError
		if errors.As(err, &np) {
			for _, st := range np.Waiting {
				fmt.Fprintf(stderr, "  service %s asks for it: %s\n", st.Service, st.Reason)
			}
		}
		return 1
	}
	if *output == "json" {
		_, _ = stdout.Write(raw)
		return 0
	}
	printInspection(stdout, in)
	return 0
}

// explainServer picks the daemon address: --server, else the config's
// metricsBindAddress (an unspecified IP means loopback), else the default.
func explainServer(server, cfgFile string) (string, error) {
	if server != "" {
		return server, nil
	}
	addr := config.Default().MetricsBindAddress
	if cfgFile != "" {
		fs := flag.NewFlagSet("", flag.ContinueOnError)
		f := config.NewFlags(fs)
		if err := fs.Parse([]string{"--config", cfgFile}); err != nil {
			return "", err
		}
		cfg, _, err := f.Resolve(fs)
		if err != nil {
			return "", err
		}
		addr = cfg.MetricsBindAddress
	}
	if addr == "" {
		return "", errors.New("the daemon has no metrics address (metricsBindAddress is empty); give --server")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("metrics address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port), nil
}

func fetchExplain(addr string, id lb.FrontendID) (*explainResult, []byte, error) {
	raw, err := askDaemon(addr, "frontend="+url.QueryEscape(id.String()))
	if err != nil {
		var np *notProgrammedError
		if errors.As(err, &np) {
			np.what = id.String()
		}
		return nil, nil, err
	}
	var in explainResult
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, nil, fmt.Errorf("decode the daemon's answer: %w", err)
	}
	return &in, raw, nil
}

// notProgrammedError is the daemon's answer for something it does not
// program, with the services that ask for it.
type notProgrammedError struct {
	what string
	notProgrammed
}

func (e *notProgrammedError) Error() string { return e.what + ": " + e.notProgrammed.Error }

// askDaemon GETs the explain endpoint with query and returns the body of a
// 200 answer.
func askDaemon(addr, query string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+explainPath+"?"+query, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask the daemon at %s: %w (is proxyd running? give --server or --config)", addr, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var np notProgrammed
		if json.Unmarshal(raw, &np) == nil && np.Error != "" {
			return nil, &notProgrammedError{notProgrammed: np}
		}
		return nil, fmt.Errorf("daemon answered %s", resp.Status)
	}
	return raw, nil
}

// explainServiceCommand is "proxyd explain SERVICE".
func explainServiceCommand(addr string, key lb.ServiceKey, asJSON bool, stdout, stderr io.Writer) int {
	raw, err := askDaemon(addr, "service="+url.QueryEscape(string(key)))
	if err != nil {
		fmt.Fprintf(stderr, "proxyd explain: %s: %v\n", key, err)
		return 1
	}
	if asJSON {
		_, _ = stdout.Write(raw)
		return 0
	}
	var res serviceExplain
	if err := json.Unmarshal(raw, &res); err != nil {
		fmt.Fprintln(stderr, "proxyd explain: decode the daemon's answer:", err)
		return 1
	}
	fmt.Fprintf(stdout, "service    %s\n", key)
	printStatus(stdout, res.Status)
	for _, fe := range res.Frontends {
		fmt.Fprintln(stdout)
		fe.Status = nil // said once, above
		printInspection(stdout, fe)
	}
	for _, e := range res.Errors {
		fmt.Fprintf(stdout, "frontend   %s\n", e)
	}
	return 0
}

// printInspection prints an inspection for humans: the backends the
// datapath uses, then the service's endpoints it does not use (terminating,
// not ready), marked.
func printInspection(w io.Writer, in *explainResult) {
	fmt.Fprintf(w, "frontend   %s (%s)\n", in.Frontend, in.Frontend.Kind)
	fmt.Fprintf(w, "service    %s\n", in.Service)
	printStatus(w, in.Status)
	fmt.Fprintf(w, "datapath   %s\n", in.Datapath)
	fmt.Fprintf(w, "scheduler  %s\n", in.Scheduler)
	if in.AffinityTimeout > 0 {
		fmt.Fprintf(w, "affinity   ClientIP, timeout %s\n", in.AffinityTimeout)
	} else {
		fmt.Fprintf(w, "affinity   none\n")
	}
	var unused []explainEndpoint
	for _, ep := range in.Endpoints {
		if !ep.InUse {
			unused = append(unused, ep)
		}
	}
	if len(in.Backends) == 0 {
		fmt.Fprintf(w, "backends   none: connections are rejected\n")
	} else {
		fmt.Fprintf(w, "backends   %d\n", len(in.Backends))
	}
	if len(in.Backends) > 0 || len(unused) > 0 {
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ADDRESS\tWEIGHT\tNODE\tSTATE")
		for _, b := range in.Backends {
			state := "ready"
			if b.Terminating {
				state = "terminating (in use: no endpoint is ready)"
			}
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\n", b.Addr, b.Weight, dash(b.NodeName), state)
		}
		for _, ep := range unused {
			fmt.Fprintf(tw, "  %s\t-\t%s\t%s, not in use\n", ep.Addr, dash(ep.NodeName), ep.State)
		}
		_ = tw.Flush()
	}
	for _, d := range in.Details {
		fmt.Fprintf(w, "  %s\n", strings.TrimSpace(d))
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
