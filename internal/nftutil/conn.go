package nftutil

import (
	"errors"
	"fmt"
	"os"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Conn is a lasting nftables connection (one netlink socket for every
// request) in a network namespace, with the socket at hand for buffer
// sizes and raw requests.
type Conn struct {
	Nft     *nftables.Conn
	Netlink *netlink.Conn
	ns      *os.File
}

// Dial opens a lasting nftables connection in the namespace at netns (""
// = the process's own). Close ends it.
func Dial(netns string) (*Conn, error) {
	c := &Conn{}
	opts := []nftables.ConnOption{
		nftables.AsLasting(),
		nftables.WithSockOptions(func(nl *netlink.Conn) error { c.Netlink = nl; return nil }),
	}
	if netns != "" {
		f, err := os.Open(netns)
		if err != nil {
			return nil, fmt.Errorf("open network namespace: %w", err)
		}
		c.ns = f
		opts = append(opts, nftables.WithNetNSFd(int(f.Fd())))
	}
	nft, err := nftables.New(opts...)
	if err != nil {
		c.closeNS()
		return nil, fmt.Errorf("netlink connection%s: %w", Where(netns), err)
	}
	c.Nft = nft
	return c, nil
}

// Where names a namespace in messages: "" for the process's own, else
// " in PATH".
func Where(netns string) string {
	if netns == "" {
		return ""
	}
	return " in " + netns
}

// Close ends the connection and releases the namespace.
func (c *Conn) Close() {
	if c.Nft != nil {
		_ = c.Nft.CloseLasting()
	}
	c.closeNS()
}

func (c *Conn) closeNS() {
	if c.ns != nil {
		_ = c.ns.Close()
		c.ns = nil
	}
}

// FlushSized sends the queued batch as one transaction after making the
// socket's buffers at least snd and rcv bytes. google/nftables sends a
// whole batch with one sendmsg, which the kernel refuses (EMSGSIZE) when it
// exceeds the send buffer, and queues one ack per message in the receive
// buffer (ENOBUFS when they do not fit); the defaults (about 200 KiB) hold
// a few thousand elements.
func (c *Conn) FlushSized(snd, rcv int) error {
	if c.Netlink != nil {
		if err := SetSockBuf(c.Netlink, snd, rcv); err != nil {
			return err
		}
	}
	return c.Nft.Flush()
}

// SetSockBuf makes the socket's buffers at least snd and rcv bytes,
// forcing them (root may exceed net.core.wmem_max/rmem_max) and falling
// back to the capped options.
func SetSockBuf(nl *netlink.Conn, snd, rcv int) error {
	raw, err := nl.SyscallConn()
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	var serr error
	cerr := raw.Control(func(fd uintptr) {
		for _, o := range []struct{ force, plain, size int }{
			{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, snd},
			{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, rcv},
		} {
			if cur, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, o.plain); err == nil && cur >= o.size {
				continue
			}
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o.force, o.size); err != nil {
				if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o.plain, o.size); err != nil {
					serr = fmt.Errorf("set netlink socket buffer to %d bytes: %w", o.size, err)
				}
			}
		}
	})
	return errors.Join(cerr, serr)
}
