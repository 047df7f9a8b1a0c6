/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lbkit eBPF datapath: the XDP program. It balances new flows and
 * translates the packets of known ones before the stack allocates an skb,
 * then passes them up to be routed. What XDP cannot finish it leaves
 * untouched for the TC programs, which are attached as well: flows that
 * are masqueraded (they need an skb to be redirected) and replies.
 */
#ifndef LBKIT_LB_XDP_H
#define LBKIT_LB_XDP_H

#include "lb_tc.h"

/* csum_apply folds the 32-bit one's complement sum diff (of ~old + new,
 * as bpf_csum_diff computes it) into the checksum at *check. */
static __always_inline void csum_apply(__u16 *check, __s64 diff, int udp)
{
	__u32 c = (__u16)~*check;

	if (udp && *check == 0)
		return; /* UDP over IPv4 without a checksum */
	c += (__u32)diff;
	if (c < (__u32)diff)
		c++;
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	*check = (__u16)~c;
	if (udp && *check == 0)
		*check = 0xffff;
}

/* xdp_record records a new, not masqueraded flow as new_flow does. */
static __always_inline void xdp_record(const struct lb_flow *f, const struct svc_value *svc,
				       const struct backend *be, __u32 id)
{
	struct ct_value fv = {}, rv = {};
	struct ct_key fk, rk = {};

	addr_copy(fv.nat_addr, be->addr);
	fv.nat_port = be->port;
	fv.backend_id = id;
	fv.fe_id = svc->fe_id;
	fv.rev_check = rev_now();
	addr_copy(rv.nat_addr, f->daddr);
	rv.nat_port = f->dport;
	rv.fe_id = svc->fe_id;
	rev_port_mark(be->port, 0);
	rev_key_of(&rk, f, be->addr, be->port);
	bpf_map_update_elem(&lb_ct, &rk, &rv, BPF_ANY);
	ct_key_of(&fk, f, LB_CT_FWD);
	bpf_map_update_elem(&lb_ct, &fk, &fv, BPF_ANY);
}

static __always_inline int xdp_balance(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct ethhdr *eth = data;
	struct svc_value *svc;
	struct lb_xlate x = {};
	__u32 old_ports, new_ports;
	__u16 *l3_check = 0;
	__u16 *l4_check;
	struct svc_key key;
	struct lb_flow f = {};
	__u32 *daddr;
	__u32 *ports;
	void *l4;
	__s64 diff;
	int n;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end || ip->ihl != 5 || (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
			return XDP_PASS;
		f.family = LB_V4;
		f.proto = ip->protocol;
		f.saddr[0] = ip->saddr;
		f.daddr[0] = ip->daddr;
		daddr = &ip->daddr;
		l3_check = &ip->check;
		l4 = ip + 1;
		n = 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return XDP_PASS;
		f.family = LB_V6;
		f.proto = ip6->nexthdr;
		__builtin_memcpy(f.saddr, &ip6->saddr, 16);
		__builtin_memcpy(f.daddr, &ip6->daddr, 16);
		daddr = (__u32 *)&ip6->daddr;
		l4 = ip6 + 1;
		n = 16;
	} else {
		return XDP_PASS;
	}
	if (f.proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end)
			return XDP_PASS;
		f.syn = th->syn && !th->ack;
		l4_check = &th->check;
	} else if (f.proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end)
			return XDP_PASS;
		l4_check = &uh->check;
	} else {
		return XDP_PASS;
	}
	ports = l4;
	f.sport = ((__u16 *)ports)[0];
	f.dport = ((__u16 *)ports)[1];

	svc = lookup_service(&f, &key);
	if (!svc)
		return XDP_PASS;
	if (!svc->count)
		return XDP_PASS; /* TC ingress answers with a reject */
	if (!existing_flow(&f, svc, &x)) {
		struct backend *be;
		__u32 id = 0;

		be = select_backend(&f, &key, svc, &id);
		if (!be) {
			stat_inc(LB_STAT_NO_BACKEND);
			return XDP_DROP;
		}
		if (need_masq(&f, svc, be))
			return XDP_PASS; /* TC ingress masquerades it */
		addr_copy(x.addr, be->addr);
		x.port = be->port;
		xdp_record(&f, svc, be, id);
	}
	if (x.snat)
		return XDP_PASS;

	/* Rewrite the destination: address, port and both checksums. */
	old_ports = *ports;
	((__u16 *)&new_ports)[0] = f.sport;
	((__u16 *)&new_ports)[1] = x.port;
	if (n == 4) {
		diff = bpf_csum_diff(f.daddr, 4, x.addr, 4, 0);
		if (diff < 0)
			return XDP_PASS;
		if (l3_check)
			csum_apply(l3_check, diff, 0);
		daddr[0] = x.addr[0];
	} else {
		diff = bpf_csum_diff(f.daddr, 16, x.addr, 16, 0);
		if (diff < 0)
			return XDP_PASS;
		daddr[0] = x.addr[0];
		daddr[1] = x.addr[1];
		daddr[2] = x.addr[2];
		daddr[3] = x.addr[3];
	}
	diff = bpf_csum_diff(&old_ports, 4, &new_ports, 4, (__u32)diff);
	if (diff < 0)
		return XDP_PASS;
	csum_apply(l4_check, diff, f.proto == IPPROTO_UDP && n == 4);
	*ports = new_ports;
	stat_inc(LB_STAT_XDP_FWD);
	return XDP_PASS;
}

#endif /* LBKIT_LB_XDP_H */
