package netns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/lbkit/lbkit/internal/nsutil"
)

// A Host is one network namespace of a Topology.
type Host struct {
	// Name is the role: "client", "node", "backend0", "backend1", ...
	Name string
	// NS is the namespace name, unique per test ("lbkt-<random>-<role>").
	NS string
	// Path is the namespace's bind mount, /var/run/netns/<NS>.
	Path string
	// IPv4 is the host's address (the node's is its client-side address).
	IPv4 netip.Addr
	// IPv6 is the host's IPv6 address; the zero Addr unless Options.IPv6.
	IPv6 netip.Addr
	// Link is the host's interface toward the rest of the topology: HostLink
	// on the client and backends, NodeClientLink on the node.
	Link string
}

// Addr returns the host's IPv6 address when v6 is true, else its IPv4
// address.
func (h *Host) Addr(v6 bool) netip.Addr {
	if v6 {
		return h.IPv6
	}
	return h.IPv4
}

// Do runs fn on a locked OS thread inside the host's namespace
// (nsutil.Do(h.Path, fn)). Sockets fn creates stay in that namespace.
func (h *Host) Do(fn func() error) error {
	return nsutil.Do(h.Path, fn)
}

// Exec runs a command inside the host's namespace (`ip netns exec`) and
// returns its combined output. The error includes the output.
func (h *Host) Exec(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := commandOutput(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
	if err != nil {
		return out, fmt.Errorf("netns %s: %w", h.Name, err)
	}
	return out, nil
}

// Dial connects from a socket created in the host's namespace.
func (h *Host) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netns %s: dial %s %s: %w", h.Name, network, addr, err)
	}
	return c, nil
}

// Listen listens on a socket created in the host's namespace.
func (h *Host) Listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := h.Do(func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netns %s: listen %s %s: %w", h.Name, network, addr, err)
	}
	return ln, nil
}

// ListenPacket opens a packet socket in the host's namespace.
func (h *Host) ListenPacket(network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := h.Do(func() error {
		var err error
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netns %s: listen %s %s: %w", h.Name, network, addr, err)
	}
	return pc, nil
}

// Request sends one identity request (see Request) from the host's
// namespace to addr over network ("tcp", "tcp4", "tcp6", "udp", ...).
func (h *Host) Request(ctx context.Context, network string, addr netip.AddrPort) (Reply, error) {
	var r Reply
	err := h.Do(func() error {
		var err error
		r, err = request(ctx, &net.Dialer{}, network, addr.String(), false)
		return err
	})
	if err != nil {
		return Reply{}, fmt.Errorf("netns %s: %w", h.Name, err)
	}
	return r, nil
}

// RequestFrom is Request from the fixed source local. The socket sets
// SO_REUSEADDR and a TCP connection is closed with SO_LINGER 0 (a reset), so
// no TIME_WAIT state keeps the same source from being used again at once.
// While the previous connection from local is still going away, connect
// fails with EADDRNOTAVAIL; RequestFrom then retries until ctx's deadline
// (DefaultRequestTimeout when ctx has none).
func (h *Host) RequestFrom(ctx context.Context, network string, local, addr netip.AddrPort) (Reply, error) {
	if !local.IsValid() {
		return Reply{}, fmt.Errorf("netns %s: RequestFrom: invalid local address %v", h.Name, local)
	}
	proto, err := protoOf(network)
	if err != nil {
		return Reply{}, fmt.Errorf("netns %s: %w", h.Name, err)
	}
	d := &net.Dialer{Control: reuseAddr}
	if proto == "tcp" {
		d.LocalAddr = net.TCPAddrFromAddrPort(local)
	} else {
		d.LocalAddr = net.UDPAddrFromAddrPort(local)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultRequestTimeout)
		defer cancel()
	}
	var r Reply
	err = h.Do(func() error {
		for {
			var err error
			r, err = request(ctx, d, network, addr.String(), true)
			if err == nil || !busySource(err) || ctx.Err() != nil {
				return err
			}
			// The previous connection from local is still going away.
			select {
			case <-ctx.Done():
				return err
			case <-time.After(busyRetryInterval):
			}
		}
	})
	if err != nil {
		return Reply{}, fmt.Errorf("netns %s: from %s: %w", h.Name, local, err)
	}
	return r, nil
}

// busyRetryInterval paces RequestFrom's retries while the previous
// connection from the same source is still being torn down.
const busyRetryInterval = 5 * time.Millisecond
