/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lbkit eBPF datapath: refusing a connection to a frontend without
 * backends, as kube-proxy does: a TCP reset, or an ICMP port unreachable
 * for UDP, sent back out of the interface the packet came in on.
 *
 * The packet is rebuilt in place with complete checksums. A packet that
 * came from a local socket through a veth may still be marked
 * CHECKSUM_PARTIAL; the peer it goes back to then trusts it as is.
 */
#ifndef LBKIT_LB_REJECT_H
#define LBKIT_LB_REJECT_H

#include "lb_skb.h"

/* From linux/icmp.h and linux/icmpv6.h, which pull in libc headers. */
#define ICMP_DEST_UNREACH   3
#define ICMP_PORT_UNREACH   3
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PORT_UNREACH 4

/* The first 8 bytes of an ICMP or ICMPv6 message. */
struct lb_icmp {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__u32 unused;
};

#define LB_TTL 64

/* csum_fold folds a 32-bit one's complement sum into a checksum. */
static __always_inline __u16 csum_fold(__s64 sum)
{
	__u32 c = (__u32)sum;

	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	return (__u16)~c;
}

/* swap_eth turns the frame's Ethernet header around. */
static __always_inline int swap_eth(struct __sk_buff *skb)
{
	struct ethhdr eth, out;

	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) < 0)
		return -1;
	__builtin_memcpy(out.h_dest, eth.h_source, ETH_ALEN);
	__builtin_memcpy(out.h_source, eth.h_dest, ETH_ALEN);
	out.h_proto = eth.h_proto;
	return bpf_skb_store_bytes(skb, 0, &out, sizeof(out), 0);
}

/* reject_tcp answers a TCP segment with a reset (RFC 793: ACK set ->
 * seq = its ack; else ack = its seq + length). */
static __noinline int reject_tcp(struct __sk_buff *skb, __u32 l4_off, __u32 family)
{
	struct tcphdr th, r = {};
	__u32 plen, iplen, pseudo[10] = {};
	__s64 sum;

	if (bpf_skb_load_bytes(skb, l4_off, &th, sizeof(th)) < 0 || th.rst)
		return TC_ACT_SHOT;
	r.source = th.dest;
	r.dest = th.source;
	r.doff = 5;
	r.rst = 1;
	if (family == LB_V4) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0 || ip.ihl != 5)
			return TC_ACT_SHOT;
		plen = bpf_ntohs(ip.tot_len) - 20 - th.doff * 4;
		pseudo[0] = ip.daddr;
		pseudo[1] = ip.saddr;
		pseudo[2] = bpf_htonl((IPPROTO_TCP << 16) | sizeof(r));
		ip.saddr = pseudo[0];
		ip.daddr = pseudo[1];
		ip.tot_len = bpf_htons(sizeof(ip) + sizeof(r));
		ip.ttl = LB_TTL;
		ip.id = 0;
		ip.tos = 0;
		ip.frag_off = bpf_htons(0x4000);
		ip.check = 0;
		ip.check = csum_fold(bpf_csum_diff(0, 0, (__be32 *)&ip, sizeof(ip), 0));
		iplen = sizeof(ip);
		if (bpf_skb_change_tail(skb, ETH_HLEN + iplen + sizeof(r), 0) < 0 ||
		    bpf_skb_store_bytes(skb, ETH_HLEN, &ip, sizeof(ip), 0) < 0)
			return TC_ACT_SHOT;
	} else {
		struct ipv6hdr ip6;
		struct in6_addr a;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)) < 0)
			return TC_ACT_SHOT;
		plen = bpf_ntohs(ip6.payload_len) - th.doff * 4;
		a = ip6.saddr;
		ip6.saddr = ip6.daddr;
		ip6.daddr = a;
		ip6.payload_len = bpf_htons(sizeof(r));
		ip6.hop_limit = LB_TTL;
		__builtin_memcpy(pseudo, &ip6.saddr, 32);
		pseudo[8] = bpf_htonl(sizeof(r));
		pseudo[9] = bpf_htonl(IPPROTO_TCP);
		iplen = sizeof(ip6);
		if (bpf_skb_change_tail(skb, ETH_HLEN + iplen + sizeof(r), 0) < 0 ||
		    bpf_skb_store_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6), 0) < 0)
			return TC_ACT_SHOT;
	}
	if (th.ack) {
		r.seq = th.ack_seq;
	} else {
		r.ack = 1;
		r.ack_seq = bpf_htonl(bpf_ntohl(th.seq) + plen + th.syn + th.fin);
	}
	sum = bpf_csum_diff(0, 0, pseudo, family == LB_V4 ? 12 : 40, 0);
	sum = bpf_csum_diff(0, 0, (__be32 *)&r, sizeof(r), (__u32)sum);
	r.check = csum_fold(sum);
	if (bpf_skb_store_bytes(skb, ETH_HLEN + iplen, &r, sizeof(r), 0) < 0 || swap_eth(skb) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect(skb->ifindex, 0);
}

/* reject_udp answers a UDP datagram with an ICMP (v6) port unreachable
 * that quotes its IP header and the first 8 bytes of UDP. */
static __noinline int reject_udp(struct __sk_buff *skb, __u32 family)
{
	__u32 quote[12] = {}, pseudo[10] = {};
	__s64 sum;

	if (family == LB_V4) {
		struct iphdr ip;
		struct lb_icmp ic = {};

		if (bpf_skb_load_bytes(skb, ETH_HLEN, quote, 28) < 0)
			return TC_ACT_SHOT;
		__builtin_memcpy(&ip, quote, sizeof(ip));
		if (ip.ihl != 5)
			return TC_ACT_SHOT;
		ip.saddr = quote[4];
		ip.daddr = quote[3];
		ip.tot_len = bpf_htons(20 + 8 + 28);
		ip.protocol = IPPROTO_ICMP;
		ip.ttl = LB_TTL;
		ip.id = 0;
		ip.tos = 0;
		ip.frag_off = 0;
		ip.check = 0;
		ip.check = csum_fold(bpf_csum_diff(0, 0, (__be32 *)&ip, sizeof(ip), 0));
		ic.type = ICMP_DEST_UNREACH;
		ic.code = ICMP_PORT_UNREACH;
		sum = bpf_csum_diff(0, 0, (__be32 *)&ic, sizeof(ic), 0);
		sum = bpf_csum_diff(0, 0, quote, 28, (__u32)sum);
		ic.checksum = csum_fold(sum);
		if (bpf_skb_change_tail(skb, ETH_HLEN + 28, 0) < 0 ||
		    bpf_skb_adjust_room(skb, 28, BPF_ADJ_ROOM_MAC, 0) < 0 ||
		    bpf_skb_store_bytes(skb, ETH_HLEN, &ip, sizeof(ip), 0) < 0 ||
		    bpf_skb_store_bytes(skb, ETH_HLEN + sizeof(ip), &ic, sizeof(ic), 0) < 0)
			return TC_ACT_SHOT;
	} else {
		struct ipv6hdr ip6;
		struct lb_icmp ic = {};

		if (bpf_skb_load_bytes(skb, ETH_HLEN, quote, 48) < 0)
			return TC_ACT_SHOT;
		__builtin_memcpy(&ip6, quote, sizeof(ip6));
		__builtin_memcpy(&ip6.saddr, &quote[6], 16);
		__builtin_memcpy(&ip6.daddr, &quote[2], 16);
		ip6.payload_len = bpf_htons(8 + 48);
		ip6.nexthdr = IPPROTO_ICMPV6;
		ip6.hop_limit = LB_TTL;
		ic.type = ICMPV6_DEST_UNREACH;
		ic.code = ICMPV6_PORT_UNREACH;
		__builtin_memcpy(pseudo, &ip6.saddr, 32);
		pseudo[8] = bpf_htonl(8 + 48);
		pseudo[9] = bpf_htonl(IPPROTO_ICMPV6);
		sum = bpf_csum_diff(0, 0, pseudo, sizeof(pseudo), 0);
		sum = bpf_csum_diff(0, 0, (__be32 *)&ic, sizeof(ic), (__u32)sum);
		sum = bpf_csum_diff(0, 0, quote, 48, (__u32)sum);
		ic.checksum = csum_fold(sum);
		if (bpf_skb_change_tail(skb, ETH_HLEN + 48, 0) < 0 ||
		    bpf_skb_adjust_room(skb, 48, BPF_ADJ_ROOM_MAC, 0) < 0 ||
		    bpf_skb_store_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6), 0) < 0 ||
		    bpf_skb_store_bytes(skb, ETH_HLEN + sizeof(ip6), &ic, sizeof(ic), 0) < 0)
			return TC_ACT_SHOT;
	}
	if (swap_eth(skb) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect(skb->ifindex, 0);
}

/* reject refuses a packet to a frontend without backends. */
static __always_inline int reject(struct __sk_buff *skb, const struct lb_flow *f, const struct lb_pkt *p)
{
	stat_inc(LB_STAT_NO_BACKEND);
	if (f->proto == IPPROTO_TCP)
		return reject_tcp(skb, p->l4_off, f->family);
	return reject_udp(skb, f->family);
}

#endif /* LBKIT_LB_REJECT_H */
