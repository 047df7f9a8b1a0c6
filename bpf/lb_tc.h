/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lbkit eBPF datapath: the TC programs' logic. Ingress translates packets
 * to frontends (DNAT, and SNAT when masquerading) and the replies of
 * masqueraded flows; egress translates the replies of the others.
 */
#ifndef LBKIT_LB_TC_H
#define LBKIT_LB_TC_H

#include "lb_nat.h"
#include "lb_reject.h"

/* A flow's translation, from its FWD conntrack entry or a new choice. */
struct lb_xlate {
	__u32 addr[4];
	__u32 snat_addr[4];
	__u16 port;
	__u16 snat_port;
	__u8 snat;
};

/* rev_now is the current time in the units of ct_value.rev_check. */
static __always_inline __u8 rev_now(void)
{
	return (__u8)(bpf_ktime_get_ns() >> LB_REV_CHECK_SHIFT);
}

/*
 * ensure_rev recreates a flow's REV entry if the LRU evicted it, so that
 * replies keep being translated. The REV lookup is a cache miss in the big
 * lb_ct, so it is done at most once per LB_REV_CHECK_SHIFT period (about a
 * second) per flow, and on every SYN, rather than on every packet: the
 * FWD entry remembers when it was last done. (The time wraps every 256
 * periods; a flow that happens to match the old value only waits one more
 * period.)
 */
static __always_inline void ensure_rev(const struct lb_flow *f, struct ct_value *fwd)
{
	struct ct_value rv = {};
	struct ct_key rk = {};
	__u8 now;

	now = rev_now();
	if (fwd->rev_check == now && !f->syn)
		return;
	fwd->rev_check = now;
	/* Restores the mark when lb_ct outlived lb_rev_ports (the maps of an
	 * older version were adopted). */
	rev_port_mark(fwd->nat_port, fwd->flags & LB_CT_SNAT);
	if (fwd->flags & LB_CT_SNAT)
		return; /* its port was claimed with the entry; never re-claimed */
	rev_key_of(&rk, f, fwd->nat_addr, fwd->nat_port);
	if (bpf_map_lookup_elem(&lb_ct, &rk))
		return;
	addr_copy(rv.nat_addr, f->daddr);
	rv.nat_port = f->dport;
	rv.fe_id = fwd->fe_id;
	bpf_map_update_elem(&lb_ct, &rk, &rv, BPF_ANY);
}

/*
 * new_flow balances a new flow: picks the backend, decides masquerading,
 * and records both conntrack entries. Returns 0, or -1 to drop.
 */
static __always_inline int new_flow(struct __sk_buff *skb, const struct lb_flow *f,
				    const struct svc_key *key, const struct svc_value *svc,
				    struct lb_xlate *x)
{
	struct ct_value fv = {}, rv = {};
	struct ct_key fk, rk = {};
	struct backend *be;
	__u32 id = 0;

	be = select_backend(f, key, svc, &id);
	if (!be)
		return -1;
	addr_copy(x->addr, be->addr);
	x->port = be->port;
	x->snat = 0;
	addr_copy(fv.nat_addr, be->addr);
	fv.nat_port = be->port;
	fv.backend_id = id;
	fv.fe_id = svc->fe_id;
	fv.rev_check = rev_now(); /* the REV entry is created below */
	addr_copy(rv.nat_addr, f->daddr);
	rv.nat_port = f->dport;
	rv.fe_id = svc->fe_id;

	if (need_masq(f, svc, be) &&
	    fib_route(skb, f->family, f->saddr, be->addr, f->proto, 1, x->snat_addr)) {
		rv.flags = LB_CT_SNAT;
		addr_copy(rv.snat_addr, f->saddr);
		rv.snat_port = f->sport;
		x->snat_port = snat_claim(f, be, x->snat_addr, &rv);
		if (!x->snat_port)
			return -1;
		x->snat = 1;
		fv.flags = LB_CT_SNAT;
		addr_copy(fv.snat_addr, x->snat_addr);
		fv.snat_port = x->snat_port;
	} else {
		rev_port_mark(be->port, 0);
		rev_key_of(&rk, f, be->addr, be->port);
		bpf_map_update_elem(&lb_ct, &rk, &rv, BPF_ANY);
	}
	ct_key_of(&fk, f, LB_CT_FWD);
	bpf_map_update_elem(&lb_ct, &fk, &fv, BPF_ANY);
	return 0;
}

/*
 * existing_flow fills x from the flow's FWD entry when the flow may stay on
 * its backend: the backend still belongs to the frontend, or the packet
 * continues an established TCP connection (which keeps its backend even
 * after the backend was removed, as with kube-proxy). A UDP flow or a new
 * TCP connection whose backend went away is balanced anew. Returns 1 when
 * x was filled.
 */
static __always_inline int existing_flow(const struct lb_flow *f, const struct svc_value *svc,
					 struct lb_xlate *x)
{
	struct ct_value *ct;
	struct backend *be;
	struct ct_key fk;

	ct_key_of(&fk, f, LB_CT_FWD);
	ct = bpf_map_lookup_elem(&lb_ct, &fk);
	if (!ct || ct->fe_id != svc->fe_id)
		return 0;
	be = backend_of(ct->backend_id, svc->fe_id);
	if (!be || be->port != ct->nat_port || !addr_eq(be->addr, ct->nat_addr)) {
		if (f->proto != IPPROTO_TCP || f->syn)
			return 0;
	}
	addr_copy(x->addr, ct->nat_addr);
	x->port = ct->nat_port;
	x->snat = ct->flags & LB_CT_SNAT;
	addr_copy(x->snat_addr, ct->snat_addr);
	x->snat_port = ct->snat_port;
	ensure_rev(f, ct);
	return 1;
}

/* LB_REJECT is to_frontend's answer for a frontend without backends. */
#define LB_REJECT 0x7fff

/* to_frontend translates a packet to a frontend. A subprogram of its own,
 * so that its stack and reject's are never needed at once. */
static __noinline int to_frontend(struct __sk_buff *skb, const struct lb_flow *f, const struct lb_pkt *p)
{
	struct svc_value *svc;
	struct svc_key key;
	struct lb_xlate x = {};
	__u32 ifindex;

	svc = lookup_service(f, &key);
	if (!svc)
		return TC_ACT_OK;
	if (!svc->count)
		return LB_REJECT;
	if (!existing_flow(f, svc, &x) && new_flow(skb, f, &key, svc, &x) < 0) {
		stat_inc(LB_STAT_NO_BACKEND);
		return TC_ACT_SHOT;
	}
	if (rewrite_skb(skb, f, p, 1, x.addr, x.port) < 0)
		return TC_ACT_SHOT;
	if (!x.snat) {
		stat_inc(LB_STAT_TC_FWD);
		return TC_ACT_OK;
	}
	stat_inc(LB_STAT_SNAT_FWD);
	if (rewrite_skb(skb, f, p, 0, x.snat_addr, x.snat_port) < 0)
		return TC_ACT_SHOT;
	/* The source is now a node address: the stack would drop the packet
	 * as martian, so it is sent straight to the next hop. */
	ifindex = fib_route(skb, f->family, x.snat_addr, x.addr, f->proto, 0, 0);
	if (!ifindex)
		return TC_ACT_SHOT;
	return bpf_redirect_neigh(ifindex, 0, 0, 0);
}

/* from_masqueraded translates the reply of a masqueraded flow back to
 * frontend -> client and sends it on toward the client. */
static __noinline int from_masqueraded(struct __sk_buff *skb, const struct lb_flow *f,
					    const struct lb_pkt *p, const struct ct_value *rv)
{
	struct ct_value r = *rv;
	__u32 ifindex;

	if (rewrite_skb(skb, f, p, 1, r.snat_addr, r.snat_port) < 0)
		return TC_ACT_SHOT;
	if (rewrite_skb(skb, f, p, 0, r.nat_addr, r.nat_port) < 0)
		return TC_ACT_SHOT;
	stat_inc(LB_STAT_SNAT_REV);
	ifindex = fib_route(skb, f->family, r.nat_addr, r.snat_addr, f->proto, 0, 0);
	if (!ifindex)
		return TC_ACT_SHOT;
	return bpf_redirect_neigh(ifindex, 0, 0, 0);
}

static __always_inline int tc_ingress(struct __sk_buff *skb)
{
	struct ct_value *rv;
	int ret;
	struct ct_key rk;
	struct lb_flow f;
	struct lb_pkt p;

	if (parse_skb(skb, &f, &p) < 0)
		return TC_ACT_OK;
	/* Only a packet from the port of a masqueraded flow's backend can be
	 * its reply: a client's packet to a frontend, and the replies of flows
	 * that were not masqueraded (egress translates those), skip the lb_ct
	 * lookup. */
	if (rev_port_maybe(f.sport, 1)) {
		ct_key_of(&rk, &f, LB_CT_REV);
		rv = bpf_map_lookup_elem(&lb_ct, &rk);
		if (rv && (rv->flags & LB_CT_SNAT))
			return from_masqueraded(skb, &f, &p, rv);
	}
	ret = to_frontend(skb, &f, &p);
	if (ret == LB_REJECT)
		return reject(skb, &f, &p);
	return ret;
}

static __always_inline int tc_egress(struct __sk_buff *skb)
{
	struct ct_value *rv;
	struct ct_key rk;
	struct lb_flow f;
	struct lb_pkt p;
	__u32 addr[4];
	__u16 port;

	if (parse_skb(skb, &f, &p) < 0)
		return TC_ACT_OK;
	/* Egress sees every packet the node sends, forward ones included:
	 * only those from the port of a backend of a flow that was not
	 * masqueraded can be replies it translates. */
	if (!rev_port_maybe(f.sport, 0))
		return TC_ACT_OK;
	ct_key_of(&rk, &f, LB_CT_REV);
	rv = bpf_map_lookup_elem(&lb_ct, &rk);
	if (!rv || (rv->flags & LB_CT_SNAT))
		return TC_ACT_OK;
	addr_copy(addr, rv->nat_addr);
	port = rv->nat_port;
	if (rewrite_skb(skb, &f, &p, 0, addr, port) < 0)
		return TC_ACT_SHOT;
	stat_inc(LB_STAT_TC_REV);
	return TC_ACT_OK;
}

#endif /* LBKIT_LB_TC_H */
