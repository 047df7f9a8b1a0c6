/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lbkit eBPF datapath: socket-LB. cgroup v2 hooks translate a frontend to a
 * backend when a socket connects (or sends a datagram), so traffic from
 * clients on the node needs no per-packet NAT, and translate the backend
 * back when the application asks whom it talks to.
 */
#ifndef LBKIT_LB_SOCK_H
#define LBKIT_LB_SOCK_H

#include <linux/in.h>
#include <bpf_endian.h>

#include "lb_nat.h"

#define LB_ECONNREFUSED 111

#define LB_SOCK_FWD 0
#define LB_SOCK_REV 1

/* sock_flow describes the socket's destination as a flow. The client is
 * the socket's bound address and port when it has them (a socket bound
 * before connect); an unbound socket has neither yet, so affinity treats
 * all of them as one client (kube-proxy sees them all as the node's
 * address) and Maglev hashes the socket cookie instead of the port.
 * Returns 1 when the socket is bound. */
static __always_inline int sock_flow(struct bpf_sock_addr *ctx, struct lb_flow *f, __u64 cookie, int v6)
{
	struct bpf_sock *sk = ctx->sk;
	__u32 sport = 0;

	__builtin_memset(f, 0, sizeof(*f));
	f->proto = ctx->protocol;
	f->dport = (__u16)ctx->user_port;
	if (v6) {
		f->family = LB_V6;
		f->daddr[0] = ctx->user_ip6[0];
		f->daddr[1] = ctx->user_ip6[1];
		f->daddr[2] = ctx->user_ip6[2];
		f->daddr[3] = ctx->user_ip6[3];
	} else {
		f->family = LB_V4;
		f->daddr[0] = ctx->user_ip4;
	}
	if (sk) {
		if (v6) {
			f->saddr[0] = sk->src_ip6[0];
			f->saddr[1] = sk->src_ip6[1];
			f->saddr[2] = sk->src_ip6[2];
			f->saddr[3] = sk->src_ip6[3];
		} else {
			f->saddr[0] = sk->src_ip4;
		}
		sport = sk->src_port;
	}
	if (sport) {
		f->sport = bpf_htons((__u16)sport);
		return 1;
	}
	f->sport = (__u16)(cookie ^ (cookie >> 16) ^ (cookie >> 32) ^ (cookie >> 48));
	return 0;
}

static __always_inline void sock_set_dst(struct bpf_sock_addr *ctx, const __u32 *addr, __u16 port, int v6)
{
	if (v6) {
		ctx->user_ip6[0] = addr[0];
		ctx->user_ip6[1] = addr[1];
		ctx->user_ip6[2] = addr[2];
		ctx->user_ip6[3] = addr[3];
	} else {
		ctx->user_ip4 = addr[0];
	}
	ctx->user_port = port;
}

/* sock_remember records the flow's backend: in the connection table for
 * a bound socket, else per socket in lb_sock. */
static __always_inline void sock_remember(const struct lb_flow *f, const struct ct_key *ck, __u64 cookie,
					  int bound, const struct backend *be, __u32 id, __u32 fe_id)
{
	if (bound) {
		struct ct_value cv = {};

		addr_copy(cv.nat_addr, be->addr);
		cv.nat_port = be->port;
		cv.backend_id = id;
		cv.fe_id = fe_id;
		bpf_map_update_elem(&lb_ct, ck, &cv, BPF_ANY);
	} else {
		struct sock_value sv = {};
		struct sock_key sk = {};

		sk.cookie = cookie;
		addr_copy(sk.addr, f->daddr);
		sk.port = f->dport;
		sk.family = f->family;
		sk.dir = LB_SOCK_FWD;
		addr_copy(sv.addr, be->addr);
		sv.port = be->port;
		sv.backend_id = id;
		sv.fe_id = fe_id;
		bpf_map_update_elem(&lb_sock, &sk, &sv, BPF_ANY);
	}
}

/*
 * sock_to_backend points a socket at the backend of the frontend it
 * addresses: the flow's previous backend while it is still valid (per
 * client address and port for a bound socket, like the packet path, so that
 * a UDP flow keeps its backend across sockets; else per socket), else a new
 * choice. Returns 1 to let the call go on, 0 to refuse it (a frontend
 * without backends).
 */
static __always_inline int sock_to_backend(struct bpf_sock_addr *ctx, int v6)
{
	struct sock_value *cur, rv = {};
	struct sock_key sk = {};
	struct svc_value *svc;
	struct ct_value *ct;
	struct backend *be;
	struct svc_key key;
	struct ct_key ck;
	struct lb_flow f;
	__u64 cookie;
	__u32 id = 0;
	int bound;

	if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP)
		return 1;
	cookie = bpf_get_socket_cookie(ctx);
	bound = sock_flow(ctx, &f, cookie, v6);
	svc = lookup_service(&f, &key);
	if (!svc)
		return 1;
	if (!svc->count) {
		/* Refused, as a TCP reset or ICMP port unreachable would. */
		stat_inc(LB_STAT_NO_BACKEND);
		bpf_set_retval(-LB_ECONNREFUSED);
		return 0;
	}
	ct_key_of(&ck, &f, LB_CT_FWD);
	if (bound) {
		ct = bpf_map_lookup_elem(&lb_ct, &ck);
		if (ct && ct->fe_id == svc->fe_id)
			id = ct->backend_id;
	} else {
		sk.cookie = cookie;
		addr_copy(sk.addr, f.daddr);
		sk.port = f.dport;
		sk.family = f.family;
		sk.dir = LB_SOCK_FWD;
		cur = bpf_map_lookup_elem(&lb_sock, &sk);
		if (cur && cur->fe_id == svc->fe_id)
			id = cur->backend_id;
	}
	be = backend_of(id, svc->fe_id);
	if (!be) {
		be = select_backend(&f, &key, svc, &id);
		if (!be) {
			stat_inc(LB_STAT_NO_BACKEND);
			return 0;
		}
		sock_remember(&f, &ck, cookie, bound, be, id, svc->fe_id);
	}
	sk.cookie = cookie;
	addr_copy(sk.addr, be->addr);
	sk.port = be->port;
	sk.family = f.family;
	sk.dir = LB_SOCK_REV;
	addr_copy(rv.addr, f.daddr);
	rv.port = f.dport;
	rv.fe_id = svc->fe_id;
	bpf_map_update_elem(&lb_sock, &sk, &rv, BPF_ANY);
	sock_set_dst(ctx, be->addr, be->port, v6);
	stat_inc(LB_STAT_SOCK);
	return 1;
}

/* sock_to_frontend reports a backend as the frontend the socket
 * addressed. Always returns 1. */
static __always_inline int sock_to_frontend(struct bpf_sock_addr *ctx, int v6)
{
	struct sock_key rk = {};
	struct sock_value *rv;

	rk.cookie = bpf_get_socket_cookie(ctx);
	if (v6) {
		rk.addr[0] = ctx->user_ip6[0];
		rk.addr[1] = ctx->user_ip6[1];
		rk.addr[2] = ctx->user_ip6[2];
		rk.addr[3] = ctx->user_ip6[3];
		rk.family = LB_V6;
	} else {
		rk.addr[0] = ctx->user_ip4;
		rk.family = LB_V4;
	}
	rk.port = (__u16)ctx->user_port;
	rk.dir = LB_SOCK_REV;
	rv = bpf_map_lookup_elem(&lb_sock, &rk);
	if (rv)
		sock_set_dst(ctx, rv->addr, rv->port, v6);
	return 1;
}

#endif /* LBKIT_LB_SOCK_H */
