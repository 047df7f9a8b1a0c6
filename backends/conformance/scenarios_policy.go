package conformance

import "github.com/lbkit/lbkit/lb"

func policyScenarios() []scenario {
	return []scenario{
		{name: "local_traffic_policy", run: localTrafficPolicy},
	}
}

// localTrafficPolicy: with endpoints on this node (node-a) and another
// (node-b), a ClusterIP service with internalTrafficPolicy Local reaches only
// the local ones, while a Cluster service over the same endpoints reaches
// all. Without local endpoints the Local service answers nothing.
func localTrafficPolicy(h *harness) {
	if !h.caps.LocalPolicy {
		h.skipf("does not declare Local traffic policies")
	}
	sched := h.spreadScheduler()
	local := service("local", sched, h.frontend(lb.TCP))
	local.InternalPolicy = lb.PolicyLocal
	cluster := service("cluster", sched, h.frontend(lb.TCP))
	eps := h.ready()
	eps[1].NodeName = OtherNodeName
	h.install(local, eps)
	h.install(cluster, eps)

	lfe, cfe := local.Frontends[0], cluster.Frontends[0]
	c := h.count(lfe, sampleRequests)
	h.assertOnly(lfe, c, h.names(0, 2)...)
	h.assertSeen(lfe, c, h.names(0, 2)...)
	h.assertSeen(cfe, h.count(cfe, sampleRequests), h.names()...)

	for i := range eps {
		eps[i].NodeName = OtherNodeName
	}
	h.setEndpoints(local.Key, eps)
	h.mustFlush("moving every endpoint of the Local service to " + OtherNodeName)
	h.expectNoAnswer(lfe, 3, "moving every endpoint to another node")
}
