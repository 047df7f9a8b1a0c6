// Package nftutil is the nftables kit the datapaths that program nftables
// share (backends/nftables, and the masquerade tables of backends/ipvs),
// so that both build the same expressions, encode the same keys and talk
// to the kernel the same way: registers and payload loads, set keys
// ("addr . proto . port", each field padded to 4 bytes), a netlink
// connection opened in a network namespace with buffers sized for the
// batch, and set elements written in messages the kernel accepts.
package nftutil
