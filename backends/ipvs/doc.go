// Package ipvs is lbkit's IPVS datapath: every frontend becomes an IPVS
// virtual server in NAT (masquerade) mode with one real server per backend,
// programmed over generic netlink: reads and single writes with
// github.com/moby/ipvs, a full sync's writes in batches of many requests
// per sendmsg (genl.go, nlbatch.go), each acknowledged on its own so that
// an error stays with its virtual server. Virtual IPs (ClusterIP,
// ExternalIP and LoadBalancer addresses) are local routes through a dummy
// device of ours, lbkit-ipvs0, so that the kernel delivers their traffic
// locally, where IPVS takes it; NodePorts are virtual servers on the
// node's own addresses. The source NAT that Service semantics need
// (masqueradeAll, clusterCIDR, external traffic under the Cluster policy,
// hairpin) is three nftables rules per family (tables "ip lbkit-ipvs" and
// "ip6 lbkit-ipvs"), whose matches are set lookups, so a change edits set
// elements, never rules.
//
// Each service picks its own IPVS scheduler (rr, wrr, lc, wlc, sh, dh, sed,
// nq, and mh for lb.Maglev); ClientIP affinity is IPVS persistence. A sync
// touches only the services in the ChangeSet and reads nothing back from the
// kernel except for real servers that are draining; a full sync reads the
// table once and repairs what differs. On start the datapath adopts what a
// previous process left (Adopt), never flushing, so a restart drops no
// established connection. Removed TCP and SCTP real servers drain with
// weight 0 until their connections are gone or a bound passes; removed UDP
// real servers go at once, with their conntrack entries.
//
// See README.md for the layout, the kernel settings it applies and what
// kube-proxy's IPVS mode got wrong that this package avoids.
package ipvs
