package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/lbkit/lbkit/lb"
)

// explainStatus is the engine's verdict on a service, as explain shows it.
type explainStatus struct {
	Service  lb.ServiceKey `json:"service"`
	Phase    lb.Phase      `json:"phase"`
	Reason   string        `json:"reason,omitempty"`
	Previous bool          `json:"previousVersionServing,omitempty"`
	// Frontends are the frontends the service holds in the desired state.
	Frontends []string  `json:"frontends,omitempty"`
	Since     time.Time `json:"since"`
}

func statusOf(st lb.ServiceStatus) *explainStatus {
	out := &explainStatus{Service: st.Service, Phase: st.Phase, Previous: st.Previous, Since: st.Since}
	if st.Err != nil {
		out.Reason = st.Err.Error()
	}
	for _, id := range st.Frontends {
		out.Frontends = append(out.Frontends, id.String())
	}
	return out
}

// serviceExplain is the answer for a service: its status and how each
// frontend it holds is realized.
type serviceExplain struct {
	Status    *explainStatus   `json:"status"`
	Frontends []*explainResult `json:"frontends,omitempty"`
	// Errors say why a frontend could not be inspected.
	Errors []string `json:"errors,omitempty"`
}

// notProgrammed is the daemon's answer when it cannot explain something:
// why, and for a frontend the datapath does not hold, the services that
// ask for it, with their status (a conflict says who owns it; an invalid
// or unsupported service says why).
type notProgrammed struct {
	Error   string           `json:"error"`
	Waiting []*explainStatus `json:"waiting,omitempty"`
}

// writeFailure answers with code and the failure as JSON.
func writeFailure(w http.ResponseWriter, code int, f notProgrammed) {
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(f)
}

// explainService answers ?service=KEY.
func explainService(ctx context.Context, w http.ResponseWriter, eng explainEngine, key lb.ServiceKey) {
	st, ok := eng.ServiceStatus(key)
	if !ok {
		writeFailure(w, http.StatusNotFound, notProgrammed{Error: fmt.Sprintf("proxyd has no service %q", key)})
		return
	}
	res := serviceExplain{Status: statusOf(st)}
	if in, ok := eng.Datapath().(lb.Inspector); ok {
		for _, id := range st.Frontends {
			got, err := inspectFrontend(ctx, in, id)
			if err != nil {
				res.Errors = append(res.Errors, fmt.Sprintf("%s: %v", id, err))
				continue
			}
			fe := withEndpoints(got, eng.Snapshot())
			fe.Status = res.Status
			res.Frontends = append(res.Frontends, fe)
		}
	}
	_ = json.NewEncoder(w).Encode(res)
}

// waitingFor returns the status of the services waiting for id.
func waitingFor(eng explainEngine, id lb.FrontendID) []*explainStatus {
	_, waiting := eng.FrontendOwner(id)
	var out []*explainStatus
	for _, key := range waiting {
		if st, ok := eng.ServiceStatus(key); ok {
			out = append(out, statusOf(st))
		}
	}
	return out
}

// printStatus prints a service's status for humans.
func printStatus(w io.Writer, st *explainStatus) {
	if st == nil {
		return
	}
	fmt.Fprintf(w, "status     %s since %s\n", st.Phase, st.Since.Format(time.RFC3339))
	if st.Reason != "" {
		fmt.Fprintf(w, "reason     %s\n", st.Reason)
	}
	if st.Previous {
		fmt.Fprintf(w, "           (the previous version of the service keeps serving)\n")
	}
}
