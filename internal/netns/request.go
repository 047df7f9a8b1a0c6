package netns

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"
)

// DefaultRequestTimeout bounds a Request whose context has no deadline.
const DefaultRequestTimeout = 2 * time.Second

// udpPing is the payload of a UDP request; the server echoes it back.
const udpPing = "ping\n"

// maxReplyLine bounds the identity line a client reads.
const maxReplyLine = 4096

// Reply is what an identity server answered.
type Reply struct {
	// Backend is the name of the server that answered.
	Backend string
	// Client is the client address the server saw (IPv4-mapped addresses
	// unmapped).
	Client netip.AddrPort
}

// String formats r as the server sent it: "<backend> <client>".
func (r Reply) String() string { return r.Backend + " " + r.Client.String() }

// Request asks the identity server at addr who it is, from the caller's
// namespace, dialing with d (nil means a zero net.Dialer). Over TCP it reads
// the server's first line; over UDP it sends "ping\n" and reads one reply,
// which must echo the ping. The deadline comes from ctx, or is
// DefaultRequestTimeout when ctx has none.
func Request(ctx context.Context, d *net.Dialer, network, addr string) (Reply, error) {
	return request(ctx, d, network, addr, false)
}

// request implements Request; abort closes a TCP connection with a reset
// (SO_LINGER 0) instead of a FIN, leaving no TIME_WAIT behind.
func request(ctx context.Context, d *net.Dialer, network, addr string, abort bool) (Reply, error) {
	r, err := doRequest(ctx, d, network, addr, abort)
	if err != nil {
		return Reply{}, fmt.Errorf("request %s %s: %w", network, addr, err)
	}
	return r, nil
}

func doRequest(ctx context.Context, d *net.Dialer, network, addr string, abort bool) (Reply, error) {
	proto, err := protoOf(network)
	if err != nil {
		return Reply{}, err
	}
	if d == nil {
		d = &net.Dialer{}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultRequestTimeout)
		defer cancel()
	}
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return Reply{}, err
	}
	defer closeConn(conn, abort)
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return Reply{}, fmt.Errorf("set deadline: %w", err)
	}
	// Cancellation before the deadline interrupts the read as well.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if proto == "tcp" {
		line, err := bufio.NewReader(io.LimitReader(conn, maxReplyLine)).ReadString('\n')
		if err != nil {
			return Reply{}, fmt.Errorf("read reply from %s: %w", conn.LocalAddr(), err)
		}
		return parseReply(line)
	}
	if _, err := io.WriteString(conn, udpPing); err != nil {
		return Reply{}, fmt.Errorf("send ping from %s: %w", conn.LocalAddr(), err)
	}
	buf := make([]byte, maxReplyLine+len(udpPing))
	n, err := conn.Read(buf)
	if err != nil {
		return Reply{}, fmt.Errorf("read reply from %s: %w", conn.LocalAddr(), err)
	}
	line, payload, ok := strings.Cut(string(buf[:n]), "\n")
	if !ok || payload != udpPing {
		return Reply{}, fmt.Errorf("malformed UDP reply %q: want \"<name> <addr>\\n\" followed by the %q sent", buf[:n], udpPing)
	}
	return parseReply(line)
}

// closeConn closes c, with a reset when abort is set and c is TCP.
//
// A process forked at the wrong moment (any exec in this test binary) holds
// a copy of every descriptor until its exec closes them, and the kernel
// resets the connection only when the last copy goes. Holding
// syscall.ForkLock keeps such copies from being made while c closes.
func closeConn(c net.Conn, abort bool) {
	tc, ok := c.(*net.TCPConn)
	if !ok || !abort {
		_ = c.Close()
		return
	}
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	_ = tc.SetLinger(0)
	_ = tc.Close()
}

// busySource reports whether err is connect(2) failing with EADDRNOTAVAIL:
// a socket with the same four-tuple still exists, typically one a forked
// child briefly kept open (see closeConn).
func busySource(err error) bool {
	var se *os.SyscallError
	return errors.As(err, &se) && se.Syscall == "connect" && errors.Is(err, syscall.EADDRNOTAVAIL)
}

// protoOf maps a Go network name to "tcp" or "udp".
func protoOf(network string) (string, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return "tcp", nil
	case "udp", "udp4", "udp6":
		return "udp", nil
	}
	return "", fmt.Errorf("unsupported network %q: want tcp, tcp4, tcp6, udp, udp4 or udp6", network)
}

// parseReply parses an identity line "<name> <addr:port>" (with or without
// the trailing newline).
func parseReply(line string) (Reply, error) {
	fields := strings.Fields(line)
	if len(fields) != 2 {
		return Reply{}, fmt.Errorf("malformed reply %q: want \"<name> <addr:port>\"", line)
	}
	ap, err := netip.ParseAddrPort(fields[1])
	if err != nil {
		return Reply{}, fmt.Errorf("malformed reply %q: client address: %w", line, err)
	}
	return Reply{Backend: fields[0], Client: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, nil
}

// checkName rejects server names that would not survive the reply format.
func checkName(name string) error {
	if name == "" {
		return errors.New("server name is empty")
	}
	if strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("server name %q contains a space or control character", name)
	}
	return nil
}
