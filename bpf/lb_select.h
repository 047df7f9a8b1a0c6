/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lbkit eBPF datapath: finding the frontend of a flow and picking its
 * backend. Shared by the TC, XDP and socket programs.
 */
#ifndef LBKIT_LB_SELECT_H
#define LBKIT_LB_SELECT_H

#include "lb_maps.h"

/* A flow as the client sent it. Addresses and ports in network order. */
struct lb_flow {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 family;
	/* A TCP SYN without ACK: the first packet of a new connection. */
	__u8 syn;
	__u8 pad;
};

static __always_inline int addr_eq(const __u32 *a, const __u32 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

static __always_inline void addr_copy(__u32 *dst, const __u32 *src)
{
	dst[0] = src[0];
	dst[1] = src[1];
	dst[2] = src[2];
	dst[3] = src[3];
}

/*
 * lookup_service finds the service entry (slot 0) of the flow's
 * destination: the exact frontend, else, if the destination is a node
 * address, a NodePort frontend on the unspecified address. key is left as
 * the key that matched.
 */
static __always_inline struct svc_value *
lookup_service(const struct lb_flow *f, struct svc_key *key)
{
	struct svc_value *svc;
	struct nodeaddr_key nk = {};

	__builtin_memset(key, 0, sizeof(*key));
	addr_copy(key->addr, f->daddr);
	key->port = f->dport;
	key->proto = f->proto;
	key->family = f->family;
	svc = bpf_map_lookup_elem(&lb_services, key);
	if (svc)
		return svc;
	addr_copy(nk.addr, f->daddr);
	nk.family = f->family;
	if (!bpf_map_lookup_elem(&lb_nodeaddrs, &nk))
		return 0;
	key->addr[0] = 0;
	key->addr[1] = 0;
	key->addr[2] = 0;
	key->addr[3] = 0;
	return bpf_map_lookup_elem(&lb_services, key);
}

/* backend_of returns backend id's entry if it still belongs to frontend
 * fe_id, else 0. */
static __always_inline struct backend *backend_of(__u32 id, __u32 fe_id)
{
	struct backend *be;

	if (!id)
		return 0;
	be = bpf_map_lookup_elem(&lb_backends, &id);
	if (!be || be->fe_id != fe_id)
		return 0;
	return be;
}

/*
 * flow_hash is FNV-1a 64 over the client address (4 bytes for IPv4, 16 for
 * IPv6) and the client port in network byte order, mixed with splitmix64's
 * finalizer: the same function as the userspace datapath's maglev hash.
 */
static __always_inline __u64 flow_hash(const struct lb_flow *f)
{
	const __u8 *p = (const __u8 *)f->saddr;
	__u64 h = 14695981039346656037ULL;
	int n = f->family == LB_V6 ? 16 : 4;
	int i;

#pragma unroll
	for (i = 0; i < 16; i++) {
		if (i < n) {
			h ^= p[i];
			h *= 1099511628211ULL;
		}
	}
	h ^= (__u8)(bpf_ntohs(f->sport) >> 8);
	h *= 1099511628211ULL;
	h ^= (__u8)bpf_ntohs(f->sport);
	h *= 1099511628211ULL;
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

/* pick_slot picks a backend id by the service's scheduler: Maglev on the
 * flow hash, else a uniformly random slot (slots repeat a backend by its
 * weight), inline in the service entry or in a slot entry. 0 when nothing
 * could be picked. */
static __always_inline __u32 pick_slot(const struct lb_flow *f, const struct svc_key *key,
				       const struct svc_value *svc)
{
	struct svc_key sk = *key;
	struct svc_value *slot;
	__u32 idx;

	if (svc->flags & LB_SVC_MAGLEV) {
		struct maglev_table *t;
		__u32 fe = svc->fe_id;

		t = bpf_map_lookup_elem(&lb_maglev, &fe);
		if (!t)
			return 0;
		idx = flow_hash(f) % LB_MAGLEV_SIZE;
		/* Keep the bounds check clang would drop: the verifier needs it. */
		asm volatile("" : "+r"(idx));
		if (idx >= LB_MAGLEV_SIZE)
			return 0;
		return t->backend_ids[idx];
	}
	idx = bpf_get_prandom_u32() % svc->count;
	if (svc->count <= LB_INLINE_SLOTS) {
		asm volatile("" : "+r"(idx));
		if (idx >= LB_INLINE_SLOTS)
			return 0;
		return svc->inline_ids[idx];
	}
	sk.slot = idx + 1;
	slot = bpf_map_lookup_elem(&lb_services, &sk);
	if (!slot)
		return 0;
	return slot->backend_id;
}

/*
 * select_backend picks the backend of a new flow: the client's affinity
 * entry while it is fresh and its backend still belongs to the frontend,
 * else the scheduler's choice (which then refreshes the affinity entry).
 * Returns the backend and sets *id, or 0.
 */
static __always_inline struct backend *
select_backend(const struct lb_flow *f, const struct svc_key *key,
	       const struct svc_value *svc, __u32 *id)
{
	struct affinity_key ak = {};
	struct affinity_value av = {};
	struct backend *be;
	__u64 now = 0;

	if (svc->flags & LB_SVC_AFFINITY) {
		struct affinity_value *cur;

		now = bpf_ktime_get_ns();
		addr_copy(ak.addr, f->saddr);
		ak.fe_id = svc->fe_id;
		ak.family = f->family;
		cur = bpf_map_lookup_elem(&lb_affinity, &ak);
		if (cur && now - cur->last_used_ns < (__u64)svc->affinity_timeout * 1000000000ULL) {
			be = backend_of(cur->backend_id, svc->fe_id);
			if (be && be->port == cur->port && addr_eq(be->addr, cur->addr)) {
				cur->last_used_ns = now;
				*id = cur->backend_id;
				return be;
			}
		}
	}
	*id = pick_slot(f, key, svc);
	be = backend_of(*id, svc->fe_id);
	if (!be)
		return 0;
	if (svc->flags & LB_SVC_AFFINITY) {
		av.last_used_ns = now;
		av.backend_id = *id;
		av.port = be->port;
		addr_copy(av.addr, be->addr);
		bpf_map_update_elem(&lb_affinity, &ak, &av, BPF_ANY);
	}
	return be;
}

#endif /* LBKIT_LB_SELECT_H */
