// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/*
 * lbkit eBPF datapath: every program, in one object so that they share
 * their maps. See README.md for the map layout and backends/ebpf for the
 * loader that keeps the maps equal to the desired state.
 */
#include "lb_tc.h"
#include "lb_sock.h"
#include "lb_xdp.h"

char __license[] SEC("license") = "Dual BSD/GPL";

/* lb_tc_ingress balances packets to frontends and translates the replies
 * of masqueraded flows. Attached to TC ingress (TCX or clsact). */
SEC("tc")
int lb_tc_ingress(struct __sk_buff *skb)
{
	return tc_ingress(skb);
}

/* lb_tc_egress translates replies from backends back to their frontend. */
SEC("tc")
int lb_tc_egress(struct __sk_buff *skb)
{
	return tc_egress(skb);
}

/* Socket-LB: translate at connect and sendmsg time, and back for
 * getpeername and recvmsg. */
SEC("cgroup/connect4")
int lb_connect4(struct bpf_sock_addr *ctx)
{
	return sock_to_backend(ctx, 0);
}

SEC("cgroup/connect6")
int lb_connect6(struct bpf_sock_addr *ctx)
{
	return sock_to_backend(ctx, 1);
}

SEC("cgroup/sendmsg4")
int lb_sendmsg4(struct bpf_sock_addr *ctx)
{
	return sock_to_backend(ctx, 0);
}

SEC("cgroup/sendmsg6")
int lb_sendmsg6(struct bpf_sock_addr *ctx)
{
	return sock_to_backend(ctx, 1);
}

SEC("cgroup/recvmsg4")
int lb_recvmsg4(struct bpf_sock_addr *ctx)
{
	return sock_to_frontend(ctx, 0);
}

SEC("cgroup/recvmsg6")
int lb_recvmsg6(struct bpf_sock_addr *ctx)
{
	return sock_to_frontend(ctx, 1);
}

SEC("cgroup/getpeername4")
int lb_getpeername4(struct bpf_sock_addr *ctx)
{
	return sock_to_frontend(ctx, 0);
}

SEC("cgroup/getpeername6")
int lb_getpeername6(struct bpf_sock_addr *ctx)
{
	return sock_to_frontend(ctx, 1);
}

/* lb_xdp balances flows to frontends at XDP ingress; the TC programs do
 * what it leaves (masquerading, replies). */
SEC("xdp")
int lb_xdp(struct xdp_md *ctx)
{
	return xdp_balance(ctx);
}
