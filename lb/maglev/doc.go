// Package maglev builds Maglev consistent-hashing lookup tables, as described
// in Google's paper "Maglev: A Fast and Reliable Software Network Load
// Balancer" (NSDI 2016) and as used by Cilium and Katran.
//
// A table has M slots, M prime. Each slot names one backend; a flow is sent
// to the backend in slot hash(flow) % M. The table is built so that every
// backend owns a share of the slots close to its weight, and so that adding or
// removing one backend moves only a little more than the slots it gains or
// loses: flows to the other backends keep their backend.
//
// # Building the table
//
// Every backend gets its own order in which it prefers the slots, a
// permutation of 0..M-1 derived only from its Name:
//
//	offset = h1(Name) % M
//	skip   = h2(Name) % (M-1) + 1
//	pref_j = (offset + j*skip) % M,  j = 0, 1, 2, ...
//
// Because M is prime and 1 <= skip < M, pref visits every slot exactly once.
// h1 and h2 are SipHash-2-4 of the Name under two fixed, distinct 128-bit keys
// (see hash.go), so the permutations are the same in every process, on every
// machine and architecture; they are part of this package's contract.
//
// The backends then take turns. On its turn a backend walks its preference
// list from where it stopped last time, skips slots already taken, and claims
// the first free one. This repeats until every slot is taken. With equal
// weights the turns are plain round robin, so slot counts differ by at most
// one between backends.
//
// # Weights
//
// Weights decide whose turn it is, in the manner of weighted fair queueing:
// the backend that has claimed c slots and has weight w has its next turn at
// virtual time (c+1)/w, and the backend with the earliest next turn goes next
// (ties go to the backend whose Name sorts first). The comparison is done
// exactly in integers. This keeps every backend's count c within
// [M*w/W - 1, M*w/W + n*w/W] (W is the sum of weights, n the number of
// backends), so shares are proportional to weights up to about one slot. With
// equal weights it reduces to round robin. A weight of 0 counts as 1. A
// backend whose weight is tiny next to the others may get no slot at all.
//
// # Determinism
//
// New sorts the backends by Name before it builds, so the same set of
// backends gives the same slot-to-Name mapping whatever order the caller
// lists them in; the slots then hold indices into the caller's slice.
//
// # Cost
//
// Backends of equal weight always have equal virtual times in a round, so
// they are kept together and take their turns round robin; only the groups of
// distinct weights sit in a binary heap, so picking a turn costs O(log g) for
// g distinct weights (nothing at all with equal weights). Claiming slots
// costs O(M log M) probes in expectation, about ln M probes per slot once
// there are more than a few backends, because the last free slots take
// longest to hit (as in coupon collecting). The preference lists are never
// materialized: each backend keeps only its current position and stride, so
// memory is O(M + n).
//
// The table is a flat []int32 of backend indices (Slots), ready to be copied
// into a BPF array map by the eBPF datapath, while the userspace proxy calls
// Lookup directly.
package maglev
