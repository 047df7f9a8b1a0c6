/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lbkit eBPF datapath: the maps. max_entries here are defaults; the Go
 * loader sets them from its Options before it creates the maps.
 */
#ifndef LBKIT_LB_MAPS_H
#define LBKIT_LB_MAPS_H

#include "lb.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct svc_key);
	__type(value, struct svc_value);
	__uint(max_entries, 262144);
} lb_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct backend);
	__uint(max_entries, 131072);
} lb_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct maglev_table);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} lb_maglev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct_key);
	__type(value, struct ct_value);
	__uint(max_entries, 262144);
} lb_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct rev_ports);
	__uint(max_entries, 1);
} lb_rev_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct affinity_key);
	__type(value, struct affinity_value);
	__uint(max_entries, 65536);
} lb_affinity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct nodeaddr_key);
	__type(value, __u32);
	__uint(max_entries, 1024);
} lb_nodeaddrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct settings);
	__uint(max_entries, 1);
} lb_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct cidr_key);
	__type(value, __u32);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} lb_cluster_cidrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sock_key);
	__type(value, struct sock_value);
	__uint(max_entries, 65536);
} lb_sock SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, LB_STAT_MAX);
} lb_stats SEC(".maps");

static __always_inline void stat_inc(__u32 i)
{
	__u64 *c = bpf_map_lookup_elem(&lb_stats, &i);

	if (c)
		*c += 1;
}

/* rev_port_mark records that REV keys with LB_CT_SNAT (snat != 0) or
 * without it may have source port port (network order). Called before the
 * REV entry is created; written only when the mark is missing, so that the
 * hot cache line stays shared. */
static __always_inline void rev_port_mark(__u16 port, int snat)
{
	struct rev_ports *rp;
	__u32 zero = 0;

	rp = bpf_map_lookup_elem(&lb_rev_ports, &zero);
	if (!rp)
		return;
	if (snat) {
		if (!rp->snat[port])
			rp->snat[port] = 1;
	} else if (!rp->rev[port]) {
		rp->rev[port] = 1;
	}
}

/* rev_port_maybe reports whether a packet from source port port (network
 * order) may match a REV entry with LB_CT_SNAT (snat != 0) or without it:
 * false means the lookup cannot find one. */
static __always_inline int rev_port_maybe(__u16 port, int snat)
{
	struct rev_ports *rp;
	__u32 zero = 0;

	rp = bpf_map_lookup_elem(&lb_rev_ports, &zero);
	if (!rp)
		return 1;
	return snat ? rp->snat[port] : rp->rev[port];
}

#endif /* LBKIT_LB_MAPS_H */
