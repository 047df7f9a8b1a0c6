package conformance

import (
	"fmt"
	"slices"

	"github.com/lbkit/lbkit/lb"
)

// Request counts of the endpoint scenarios. A backend among three that must
// show up in 60 requests is missed with probability (2/3)^60 < 1e-10 by a
// random scheduler.
const (
	sampleRequests = 60
	// warmupRequests is how many background requests must have been sent
	// before a change, so that it is known to happen while traffic flows.
	warmupRequests = 5
	// dialTries bounds the connections opened to land one on a given
	// backend.
	dialTries = 100
)

func endpointScenarios() []scenario {
	return []scenario{
		{name: "tcp_endpoint_add_remove", run: func(h *harness) { endpointAddRemove(h, lb.TCP) }},
		{name: "udp_endpoint_add_remove", run: func(h *harness) { endpointAddRemove(h, lb.UDP) }},
		{name: "scale_to_zero_and_back", run: scaleToZero},
		{name: "service_delete", run: serviceDelete},
		{name: "terminating_fallback", run: terminatingFallback},
	}
}

// endpointAddRemove: while requests flow, an added backend starts receiving
// and a removed one receives no new connection once Flush returns; no
// request fails meanwhile (the removed backend's server stays up, so even a
// request balanced to it during the change is answered). An established TCP
// connection to the removed backend keeps working when the datapath says so
// (Options.KeepsEstablished).
func endpointAddRemove(h *harness, proto lb.Protocol) {
	sched := h.spreadScheduler()
	fe := h.frontend(proto)
	svc := service("churn", sched, fe)
	two, all := h.names(0, 1), h.names()
	added := h.backends[2].name

	h.install(svc, h.ready(0, 1))
	h.assertOnly(fe, h.count(fe, 30), two...)

	tr := h.startTraffic(fe)
	tr.waitFor(warmupRequests)
	h.setEndpoints(svc.Key, h.ready())
	h.mustFlush("adding " + added)
	c := h.count(fe, sampleRequests)
	h.assertOnly(fe, c, all...)
	h.assertSeen(fe, c, added)
	h.checkTraffic(tr, proto, "adding "+added)

	var established *liveConn
	if proto == lb.TCP {
		established = h.dialBackend(fe, added, dialTries)
	}
	tr = h.startTraffic(fe)
	tr.waitFor(warmupRequests)
	h.setEndpoints(svc.Key, h.ready(0, 1))
	h.mustFlush("removing " + added)
	c = h.count(fe, sampleRequests)
	h.assertOnly(fe, c, two...)
	h.assertSeen(fe, c, two...)
	h.checkTraffic(tr, proto, "removing "+added)

	switch {
	case established == nil:
	case h.opts.KeepsEstablished:
		if err := established.echo("still there\n"); err != nil {
			h.t.Errorf("%s: established connection to removed backend %s broke: %v", fe, added, err)
		}
	default:
		h.t.Logf("not checking the established connection to removed %s: Options.KeepsEstablished is off", added)
	}
}

// udpInFlightLoss is how many background UDP requests may fail during one
// endpoint change: a datagram whose reply is in flight when its flow is torn
// down (the backend removed, its conntrack entry cleared) is lost, as UDP
// allows. TCP requests may not fail at all.
const udpInFlightLoss = 2

// checkTraffic halts background traffic and fails if requests failed.
func (h *harness) checkTraffic(tr *traffic, proto lb.Protocol, what string) {
	h.t.Helper()
	c, errs := tr.result()
	allowed := 0
	if proto == lb.UDP {
		allowed = udpInFlightLoss
	}
	if len(errs) > allowed {
		h.t.Errorf("%d of %d background requests failed while %s, first: %v", len(errs), c.total()+len(errs), what, errs[0])
	}
}

// scaleToZero: with no endpoints nobody answers; with endpoints back every
// backend does again.
func scaleToZero(h *harness) {
	sched := h.spreadScheduler()
	fes := h.frontends(false, h.protocols()...)
	svc := service("scale", sched, fes...)
	h.install(svc, h.ready())
	for _, fe := range fes {
		h.request(fe)
	}

	h.setEndpoints(svc.Key, nil)
	h.mustFlush("scaling to zero endpoints")
	for _, fe := range fes {
		h.expectNoAnswer(fe, 3, "scaling to zero endpoints")
	}

	h.setEndpoints(svc.Key, h.ready())
	h.mustFlush("scaling back to three endpoints")
	for _, fe := range fes {
		c := h.count(fe, sampleRequests)
		h.assertOnly(fe, c, h.names()...)
		h.assertSeen(fe, c, h.names()...)
	}
}

// serviceDelete: a deleted service stops answering, another service is not
// affected, and the same service added again works again.
func serviceDelete(h *harness) {
	sched := h.spreadScheduler()
	protos := h.protocols()
	doomed := service("doomed", sched, h.frontends(false, protos...)...)
	other := service("other", sched, h.frontends(false, protos...)...)
	h.install(doomed, h.ready())
	h.install(other, h.ready())
	for _, fe := range slices.Concat(doomed.Frontends, other.Frontends) {
		h.request(fe)
	}

	h.eng.Delete(doomed.Key)
	h.mustFlush("deleting service " + string(doomed.Key))
	for _, fe := range doomed.Frontends {
		h.expectNoAnswer(fe, 3, "deleting its service")
	}
	for _, fe := range other.Frontends {
		h.assertSeen(fe, h.count(fe, sampleRequests), h.names()...)
	}

	h.install(doomed, h.ready())
	for _, fe := range doomed.Frontends {
		h.assertSeen(fe, h.count(fe, sampleRequests), h.names()...)
	}
}

// terminatingFallback: with no ready endpoint, traffic goes to the serving
// and terminating one (and never to one that is terminating but no longer
// serving, or one that is simply not ready); once an endpoint is ready
// again, it takes all the traffic.
func terminatingFallback(h *harness) {
	fe := h.frontend(lb.TCP)
	sched := h.spreadScheduler()
	eps := h.ready()
	eps[0].Ready, eps[0].Serving, eps[0].Terminating = false, false, true
	eps[1].Ready, eps[1].Serving, eps[1].Terminating = false, true, true
	eps[2].Ready, eps[2].Serving, eps[2].Terminating = false, false, false
	svc := service("draining", sched, fe)
	h.install(svc, eps)
	c := h.count(fe, 30)
	h.assertOnly(fe, c, h.backends[1].name)

	eps[2].Ready, eps[2].Serving = true, true
	h.setEndpoints(svc.Key, eps)
	h.mustFlush(fmt.Sprintf("making %s ready", h.backends[2].name))
	c = h.count(fe, 30)
	h.assertOnly(fe, c, h.backends[2].name)
}
