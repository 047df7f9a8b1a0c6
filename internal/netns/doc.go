// Package netns builds hermetic, real-kernel test topologies out of network
// namespaces. Every datapath's conformance tests run their traffic in one:
// a client, a node where the datapath under test runs, and backends that
// answer with their own name and the client address they saw.
//
// New creates the namespaces (named "lbkt-<random>-<role>") and removes them
// in t.Cleanup, even when the test fails. Nothing is ever added to the root
// namespace: veth pairs are created directly inside the test namespaces, and
// no namespace has a default route, so no packet can leave the test.
//
//	  client ns                node ns                            backend<i> ns
//	+---------------+        +---------------------------------+  +-------------------+
//	| eth0          |  veth  | lbclient                        |  | eth0              |
//	| 198.18.1.2/24 +--------+ 198.18.1.1/24                   |  | 198.18.2.(10+i)   |
//	| 2001:2:0:1::2 |        | 2001:2:0:1::1                   |  | 2001:2:0:2::(a+i) |
//	+---------------+        |                                 |  +---------+---------+
//	 routes:                 | lbbr0 (bridge)    lbback<i> ----+------------+  veth
//	 198.18.0.0/15           | 198.18.2.1/24     (bridge port) |
//	   via 198.18.1.1        | 2001:2:0:2::1/64                |   routes:
//	 2001:2::/48             |                                 |   198.18.0.0/15
//	   via 2001:2:0:1::1     | ip_forward=1, rp_filter=0       |     via 198.18.2.1
//	 (no default route)      | optional local routes for the   |   2001:2::/48
//	                         | VIP ranges 198.18.100.0/24 and  |     via 2001:2:0:2::1
//	                         | 2001:2:0:100::/64               |
//	                         +---------------------------------+
//
// The client routes the whole test range, and so the VIP ranges, to the node;
// what the node does with VIP traffic is up to the datapath under test. Each
// backend serves TCP and UDP (ServeTCP, ServeUDP) on its own addresses. The
// identity servers and Request also work without namespaces, on 127.0.0.1,
// for tests that do not run as root.
package netns
