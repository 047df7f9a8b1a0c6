/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lbkit eBPF datapath: parsing and rewriting packets in TC programs
 * (struct __sk_buff), with checksum fixups.
 */
#ifndef LBKIT_LB_SKB_H
#define LBKIT_LB_SKB_H

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf_endian.h>

#include "lb_select.h"

#define IP_MF     0x2000
#define IP_OFFSET 0x1fff

/* Where the parts of a parsed packet are. */
struct lb_pkt {
	__u32 l4_off;
	__u32 csum_off;
};

/*
 * parse_skb reads the flow of an Ethernet frame carrying TCP or UDP over
 * IPv4 (not a fragment) or IPv6 (no extension headers). It returns 0 on
 * success, -1 for any other packet, which the programs pass untouched.
 */
static __always_inline int parse_skb(struct __sk_buff *skb, struct lb_flow *f, struct lb_pkt *p)
{
	__u16 ports[2];
	__u8 flags;

	__builtin_memset(f, 0, sizeof(*f));
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
			return -1;
		if (ip.ihl < 5 || (ip.frag_off & bpf_htons(IP_MF | IP_OFFSET)))
			return -1;
		f->family = LB_V4;
		f->proto = ip.protocol;
		f->saddr[0] = ip.saddr;
		f->daddr[0] = ip.daddr;
		p->l4_off = ETH_HLEN + ip.ihl * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)) < 0)
			return -1;
		f->family = LB_V6;
		f->proto = ip6.nexthdr;
		__builtin_memcpy(f->saddr, &ip6.saddr, 16);
		__builtin_memcpy(f->daddr, &ip6.daddr, 16);
		p->l4_off = ETH_HLEN + sizeof(ip6);
	} else {
		return -1;
	}
	switch (f->proto) {
	case IPPROTO_TCP:
		p->csum_off = p->l4_off + offsetof(struct tcphdr, check);
		if (bpf_skb_load_bytes(skb, p->l4_off + 13, &flags, 1) < 0)
			return -1;
		/* SYN set, ACK clear. */
		f->syn = (flags & 0x12) == 0x02;
		break;
	case IPPROTO_UDP:
		p->csum_off = p->l4_off + offsetof(struct udphdr, check);
		break;
	default:
		return -1;
	}
	if (bpf_skb_load_bytes(skb, p->l4_off, ports, sizeof(ports)) < 0)
		return -1;
	f->sport = ports[0];
	f->dport = ports[1];
	return 0;
}

/*
 * rewrite_skb replaces the source (dst == 0) or destination (dst == 1)
 * address and port of a parsed packet, fixing the IPv4 header checksum and
 * the L4 checksum (pseudo header included). A UDP over IPv4 checksum of
 * zero (none) stays zero. Returns 0 or a negative error.
 */
static __always_inline int rewrite_skb(struct __sk_buff *skb, const struct lb_flow *f,
				       const struct lb_pkt *p, int dst, const __u32 *addr, __u16 port)
{
	__u64 mangled = f->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	const __u32 *old_addr = dst ? f->daddr : f->saddr;
	__u16 old_port = dst ? f->dport : f->sport;
	__u32 port_off = p->l4_off + (dst ? 2 : 0);
	int ret;

	if (f->family == LB_V4) {
		__u32 addr_off = ETH_HLEN + (dst ? offsetof(struct iphdr, daddr) : offsetof(struct iphdr, saddr));

		ret = bpf_l4_csum_replace(skb, p->csum_off, old_addr[0], addr[0],
					  BPF_F_PSEUDO_HDR | mangled | sizeof(__u32));
		if (ret < 0)
			return ret;
		ret = bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), old_addr[0],
					  addr[0], sizeof(__u32));
		if (ret < 0)
			return ret;
		ret = bpf_skb_store_bytes(skb, addr_off, addr, sizeof(__u32), 0);
		if (ret < 0)
			return ret;
	} else {
		__u32 addr_off = ETH_HLEN + (dst ? offsetof(struct ipv6hdr, daddr) : offsetof(struct ipv6hdr, saddr));
		__s64 diff = bpf_csum_diff((__be32 *)old_addr, 16, (__be32 *)addr, 16, 0);

		if (diff < 0)
			return (int)diff;
		ret = bpf_l4_csum_replace(skb, p->csum_off, 0, diff, BPF_F_PSEUDO_HDR | mangled);
		if (ret < 0)
			return ret;
		ret = bpf_skb_store_bytes(skb, addr_off, addr, 16, 0);
		if (ret < 0)
			return ret;
	}
	if (port == old_port)
		return 0;
	ret = bpf_l4_csum_replace(skb, p->csum_off, old_port, port, mangled | sizeof(__u16));
	if (ret < 0)
		return ret;
	return bpf_skb_store_bytes(skb, port_off, &port, sizeof(port), 0);
}

#endif /* LBKIT_LB_SKB_H */
