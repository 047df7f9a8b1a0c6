/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lbkit eBPF datapath: the connection table and masquerading, for the TC
 * programs.
 */
#ifndef LBKIT_LB_NAT_H
#define LBKIT_LB_NAT_H

#include "lb_skb.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
/* Flags newer than the UAPI headers of the build machine (Linux 6.1). */
#ifndef BPF_FIB_LOOKUP_SKIP_NEIGH
#define BPF_FIB_LOOKUP_SKIP_NEIGH (1U << 2)
#endif
#ifndef BPF_FIB_LOOKUP_SRC
#define BPF_FIB_LOOKUP_SRC (1U << 4)
#endif

/* How many source ports masquerading tries before it gives up. */
#define LB_SNAT_TRIES 8
/* Masquerade source ports after the first choice (the client's own port)
 * come from [LB_SNAT_PORT_MIN, LB_SNAT_PORT_MIN + LB_SNAT_PORT_SPAN). */
#define LB_SNAT_PORT_MIN  32768
#define LB_SNAT_PORT_SPAN 28232

static __always_inline void ct_key_of(struct ct_key *k, const struct lb_flow *f, __u8 dir)
{
	__builtin_memset(k, 0, sizeof(*k));
	addr_copy(k->saddr, f->saddr);
	addr_copy(k->daddr, f->daddr);
	k->sport = f->sport;
	k->dport = f->dport;
	k->proto = f->proto;
	k->family = f->family;
	k->dir = dir;
}

/* rev_key_of builds the REV key of a flow that is not masqueraded: the
 * reply from its backend addr:port to the client. */
static __always_inline void rev_key_of(struct ct_key *k, const struct lb_flow *f,
				       const __u32 *addr, __u16 port)
{
	__builtin_memset(k, 0, sizeof(*k));
	addr_copy(k->saddr, addr);
	addr_copy(k->daddr, f->saddr);
	k->sport = port;
	k->dport = f->sport;
	k->proto = f->proto;
	k->family = f->family;
	k->dir = LB_CT_REV;
}

/*
 * fib_route looks up the route of a packet from saddr to daddr arriving on
 * the packet's interface. On success it returns the output interface and,
 * when want_src is set, stores the address the node would use as source
 * toward daddr in src. Returns 0 when there is no usable route.
 */
static __always_inline __u32 fib_route(struct __sk_buff *skb, __u8 family, const __u32 *saddr,
				       const __u32 *daddr, __u8 proto, int want_src, __u32 *src)
{
	struct bpf_fib_lookup fib = {};
	__u32 flags = BPF_FIB_LOOKUP_SKIP_NEIGH;
	long ret;

	fib.ifindex = skb->ingress_ifindex ? skb->ingress_ifindex : skb->ifindex;
	fib.l4_protocol = proto;
	if (family == LB_V4) {
		fib.family = AF_INET;
		fib.ipv4_src = saddr[0];
		fib.ipv4_dst = daddr[0];
	} else {
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_src, saddr, 16);
		__builtin_memcpy(fib.ipv6_dst, daddr, 16);
	}
	if (want_src)
		flags |= BPF_FIB_LOOKUP_SRC;
	ret = bpf_fib_lookup(skb, &fib, sizeof(fib), flags);
	if (ret != BPF_FIB_LKUP_RET_SUCCESS)
		return 0;
	if (want_src) {
		if (family == LB_V4) {
			src[0] = fib.ipv4_src;
			src[1] = src[2] = src[3] = 0;
		} else {
			__builtin_memcpy(src, fib.ipv6_src, 16);
		}
	}
	return fib.ifindex;
}

/* need_masq decides whether a new flow to backend be is masqueraded, as
 * kube-proxy does: masqueradeAll, external traffic with the Cluster policy,
 * a ClusterIP reached from outside the cluster prefixes, and hairpin (a
 * backend reaching itself through the frontend). */
static __always_inline int need_masq(const struct lb_flow *f, const struct svc_value *svc,
				     const struct backend *be)
{
	struct settings *cfg;
	__u32 zero = 0;

	if (svc->flags & LB_SVC_MASQ)
		return 1;
	if (addr_eq(f->saddr, be->addr))
		return 1;
	cfg = bpf_map_lookup_elem(&lb_config, &zero);
	if (!cfg)
		return 0;
	if (cfg->flags & LB_CFG_MASQ_ALL)
		return 1;
	if (!(svc->flags & LB_SVC_EXTERNAL) && cfg->have_cluster_cidrs) {
		struct cidr_key ck = {};

		ck.prefixlen = f->family == LB_V4 ? 64 : 160;
		ck.family = f->family;
		addr_copy(ck.addr, f->saddr);
		if (!bpf_map_lookup_elem(&lb_cluster_cidrs, &ck))
			return 1;
	}
	return 0;
}

/*
 * snat_claim reserves a masquerade source port for a flow: the REV entry
 * (backend -> masquerade address:port) is created only if no other flow
 * holds it. The client's own port is tried first, then ports derived from
 * the flow hash. Returns the port (network order) or 0.
 */
static __always_inline __u16 snat_claim(const struct lb_flow *f, const struct backend *be,
					const __u32 *snat, struct ct_value *rv)
{
	struct ct_key rk = {};
	__u32 h = (__u32)flow_hash(f);
	int i;

	addr_copy(rk.saddr, be->addr);
	addr_copy(rk.daddr, snat);
	rk.sport = be->port;
	rk.proto = f->proto;
	rk.family = f->family;
	rk.dir = LB_CT_REV;
	rev_port_mark(be->port, 1);
	for (i = 0; i < LB_SNAT_TRIES; i++) {
		struct ct_value *cur;

		rk.dport = i == 0 ? f->sport : bpf_htons(LB_SNAT_PORT_MIN + (h + i * 7919) % LB_SNAT_PORT_SPAN);
		if (bpf_map_update_elem(&lb_ct, &rk, rv, BPF_NOEXIST) == 0)
			return rk.dport;
		cur = bpf_map_lookup_elem(&lb_ct, &rk);
		if (cur && cur->snat_port == f->sport && addr_eq(cur->snat_addr, f->saddr)) {
			*cur = *rv;
			return rk.dport;
		}
	}
	return 0;
}

#endif /* LBKIT_LB_NAT_H */
