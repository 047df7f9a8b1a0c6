/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lbkit eBPF datapath: map layout shared by every program in lb.c.
 *
 * Go mirrors these structs through bpf2go's generated types (LB*); the
 * layout is explicit (every pad named) so that the Go and C views agree
 * byte for byte. Addresses are four 32-bit words in network byte order: an
 * IPv4 address sits in addr[0], the other words are zero. Ports are in
 * network byte order too.
 */
#ifndef LBKIT_LB_H
#define LBKIT_LB_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf_helpers.h>

/* Address families in keys: the IP version. */
#define LB_V4 4
#define LB_V6 6

/* Backend slots kept in the service entry itself: a frontend with up to
 * this many slots needs no slot entries, and a change of its backends is
 * one atomic write of the service entry. */
#define LB_INLINE_SLOTS 8

/* Slots of a Maglev table (a prime). lb/maglev builds the table in Go. */
#define LB_MAGLEV_SIZE 4093

/* Flags of a service entry (slot 0). */
#define LB_SVC_MAGLEV   0x01 /* pick with the Maglev table, not at random */
#define LB_SVC_AFFINITY 0x02 /* ClientIP session affinity */
#define LB_SVC_MASQ     0x04 /* always masquerade (external, Cluster policy) */
#define LB_SVC_EXTERNAL 0x08 /* NodePort, ExternalIP or LoadBalancer */

/* Flags of a conntrack entry. */
#define LB_CT_SNAT 0x01 /* the flow was masqueraded toward its backend */

/* ensure_rev's period: 2^30 ns, about 1.07 s. */
#define LB_REV_CHECK_SHIFT 30

/* Directions of a conntrack key. */
#define LB_CT_FWD 0 /* client -> frontend, as the client sent it */
#define LB_CT_REV 1 /* backend -> client (or -> masquerade address) */

/* Counters of lb_stats (per CPU). */
#define LB_STAT_XDP_FWD    0 /* packets XDP translated to a backend */
#define LB_STAT_TC_FWD     1 /* packets TC ingress translated to a backend */
#define LB_STAT_TC_REV     2 /* replies TC egress translated back */
#define LB_STAT_SNAT_FWD   3 /* masqueraded packets to a backend */
#define LB_STAT_SNAT_REV   4 /* replies of masqueraded flows */
#define LB_STAT_SOCK       5 /* socket calls socket-LB translated */
#define LB_STAT_NO_BACKEND 6 /* packets or calls refused: no backend */
#define LB_STAT_MAX        8

/* Global settings (lb_config, key 0). */
#define LB_CFG_MASQ_ALL 0x01 /* masquerade every flow to a frontend */

/*
 * lb_services: one entry per frontend with slot 0 (the service entry) and,
 * when it has more than LB_INLINE_SLOTS slots, one per backend slot
 * 1..count. A frontend with an unspecified address (all zero) is a NodePort
 * served on every address in lb_nodeaddrs.
 */
struct svc_key {
	__u32 addr[4];
	__u16 port;
	__u8 proto;
	__u8 family;
	__u16 slot;
	__u16 pad;
};

struct svc_value {
	/* slot > 0: the backend id of this slot. slot 0: unused. */
	__u32 backend_id;
	/* slot 0: the frontend id (Maglev table key, conntrack owner). */
	__u32 fe_id;
	/* slot 0: ClientIP affinity timeout in seconds. */
	__u32 affinity_timeout;
	/* slot 0: number of backend slots (0: reject). */
	__u16 count;
	__u8 flags;
	__u8 pad;
	/* slot 0 with count <= LB_INLINE_SLOTS: the backend id of every slot. */
	__u32 inline_ids[LB_INLINE_SLOTS];
};

/* lb_backends: backend id -> address. */
struct backend {
	__u32 addr[4];
	__u16 port;
	__u8 family;
	__u8 pad;
	/* The frontend id that owns this backend id: an id is valid for a flow
	 * only while it still belongs to the flow's frontend. */
	__u32 fe_id;
};

/* lb_maglev: frontend id -> Maglev table of backend ids. */
struct maglev_table {
	__u32 backend_ids[LB_MAGLEV_SIZE];
};

/*
 * lb_ct: the connection table (LRU). A flow has two entries: FWD keyed by
 * the packet as the client sent it (client -> frontend), REV keyed by the
 * reply as the backend sends it (backend -> client, or backend ->
 * masquerade address when the flow was masqueraded).
 */
struct ct_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 family;
	__u8 dir;
	__u8 pad;
};

struct ct_value {
	/* FWD: the backend. REV: the frontend (the reply's new source). */
	__u32 nat_addr[4];
	/* FWD with LB_CT_SNAT: the masquerade address toward the backend.
	 * REV with LB_CT_SNAT: the client (the reply's new destination). */
	__u32 snat_addr[4];
	__u16 nat_port;
	__u16 snat_port;
	/* FWD: the backend id the flow was balanced to. */
	__u32 backend_id;
	__u32 fe_id;
	__u8 flags;
	/* FWD: the coarse time (LB_REV_CHECK_SHIFT units, modulo 256) at which
	 * the flow's REV entry was last known to exist; ensure_rev runs again
	 * only when it has changed, not on every packet. */
	__u8 rev_check;
	__u8 pad[2];
};

/*
 * lb_rev_ports (array, one entry): which source ports a REV key can have,
 * that is the ports of backends some flow was balanced to. Every packet is
 * a candidate reply, but a REV lookup in the big lb_ct LRU costs cache
 * misses; a packet whose source port is not marked cannot match a REV
 * entry (a client's packet to a frontend comes from an ephemeral port), so
 * the lookup is skipped. rev marks the ports of REV entries without
 * LB_CT_SNAT (egress translates their replies), snat those of masqueraded
 * flows (ingress translates theirs). The programs mark a port before they
 * create a REV entry with it and never clear it: a stale mark only costs a
 * lookup. One byte per port, indexed by the port in network order, so that
 * marking is a plain store that cannot lose a concurrent mark of another
 * port.
 */
struct rev_ports {
	__u8 rev[65536];
	__u8 snat[65536];
};

/* lb_affinity: (client address, frontend id) -> backend (LRU). */
struct affinity_key {
	__u32 addr[4];
	__u32 fe_id;
	__u8 family;
	__u8 pad[3];
};

struct affinity_value {
	__u64 last_used_ns;
	__u32 backend_id;
	__u16 port;
	__u16 pad;
	__u32 addr[4];
};

/* lb_nodeaddrs: the node addresses NodePort frontends are served on. */
struct nodeaddr_key {
	__u32 addr[4];
	__u8 family;
	__u8 pad[3];
};

/* lb_config: global settings (struct settings), one entry (key 0). */
struct settings {
	__u32 flags;
	/* Non-zero: traffic to a ClusterIP from a source outside every prefix
	 * in lb_cluster_cidrs is masqueraded (kube-proxy's clusterCIDR). */
	__u32 have_cluster_cidrs;
};

/* lb_cluster_cidrs: an LPM trie of the cluster's pod prefixes. The family
 * is the first word of the data, so prefixlen = 32 + the prefix's bits. */
struct cidr_key {
	__u32 prefixlen;
	__u32 family;
	__u32 addr[4];
};

/*
 * lb_sock: socket-LB translations of one socket (by cookie). FWD: frontend
 * -> the backend the socket was pointed at (so that every datagram of an
 * unconnected UDP socket goes to the same backend); REV: backend -> the
 * frontend to report to the application (getpeername, recvmsg).
 */
struct sock_key {
	__u64 cookie;
	__u32 addr[4];
	__u16 port;
	__u8 family;
	__u8 dir;
	__u8 pad[4];
};

struct sock_value {
	__u32 addr[4];
	__u16 port;
	__u16 pad;
	__u32 backend_id;
	__u32 fe_id;
};

#endif /* LBKIT_LB_H */
