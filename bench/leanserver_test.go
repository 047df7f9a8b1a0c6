package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lbkit/lbkit/internal/netns"
)

// The lean load's wire format. A TCP server sends a leanReplyLen-byte reply
// as soon as it accepts a connection and closes it: leanMagic, its backend
// index, then the client address and port it sees (4 + 2 bytes, network
// order). A UDP query is a 4-byte sequence number; the reply is the same 8
// bytes followed by the query, echoed.
const (
	leanMagic    = 'L'
	leanReplyLen = 8
	leanQueryLen = 4
)

// leanPoll is how long an event loop waits in epoll_wait before it checks
// whether it should stop (and, in a client, for operations that timed out).
const leanPoll = 100 * time.Millisecond

// leanServers are the TCP and UDP servers of one backend: non-blocking
// sockets served with plain system calls by one event loop per protocol,
// each on its own locked OS thread. Under load an epoll_wait returns many
// ready sockets at once, so a connection costs the kernel's work and little
// else: no goroutine per connection, no Go netpoller, no thread switch per
// connection.
type leanServers struct {
	stop atomic.Bool
	wg   sync.WaitGroup
	fds  []int

	mu  sync.Mutex
	err error // the first unexpected failure of a server loop
}

// serveLean starts the TCP and UDP servers of backend index of h on h's IPv4
// address and port; tb.Cleanup stops them and closes the sockets (before the
// namespaces go, since it is registered later).
func serveLean(tb testing.TB, h *netns.Host, index int, port uint16) {
	tb.Helper()
	s := &leanServers{}
	tb.Cleanup(func() {
		if err := s.close(); err != nil {
			tb.Errorf("lean servers of %s: %v", h.Name, err)
		}
	})
	addr := &unix.SockaddrInet4{Port: int(port), Addr: h.IPv4.As4()}
	var tcp, udp int
	err := h.Do(func() error {
		var err error
		if tcp, err = s.socket(unix.SOCK_STREAM, addr); err != nil {
			return fmt.Errorf("tcp: %w", err)
		}
		if err := unix.Listen(tcp, 4096); err != nil {
			return fmt.Errorf("tcp: listen: %w", err)
		}
		if udp, err = s.socket(unix.SOCK_DGRAM, addr); err != nil {
			return fmt.Errorf("udp: %w", err)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("lean servers of %s on %s:%d: %v", h.Name, h.IPv4, port, err)
	}
	s.spawn(tcp, func() error { return s.serveTCP(tcp, byte(index)) })
	s.spawn(udp, func() error { return s.serveUDP(udp, byte(index)) })
}

// socket opens a non-blocking socket of type typ bound to addr.
func (s *leanServers) socket(typ int, addr *unix.SockaddrInet4) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	s.fds = append(s.fds, fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return -1, fmt.Errorf("set SO_REUSEADDR: %w", err)
	}
	if err := unix.Bind(fd, addr); err != nil {
		return -1, fmt.Errorf("bind: %w", err)
	}
	return fd, nil
}

// spawn runs serve on a goroutine locked to its own OS thread.
func (s *leanServers) spawn(fd int, serve func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := serve(); err != nil {
			s.mu.Lock()
			if s.err == nil {
				s.err = fmt.Errorf("socket %d: %w", fd, err)
			}
			s.mu.Unlock()
		}
	}()
}

// waitReadable blocks until fd is readable, for at most leanPoll, with
// epoll instance ep (which watches fd). It reports false when the server is
// stopping.
func (s *leanServers) waitReadable(ep int) (bool, error) {
	var ev [1]unix.EpollEvent
	for !s.stop.Load() {
		n, err := unix.EpollWait(ep, ev[:], int(leanPoll.Milliseconds()))
		if err != nil && !errors.Is(err, unix.EINTR) {
			return false, fmt.Errorf("epoll_wait: %w", err)
		}
		if n > 0 {
			return true, nil
		}
	}
	return false, nil
}

// epollOn returns an epoll instance watching fd for input.
func epollOn(fd int) (int, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("epoll_create: %w", err)
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
		_ = unix.Close(ep)
		return -1, fmt.Errorf("epoll_ctl: %w", err)
	}
	return ep, nil
}

// serveTCP accepts every pending connection on ln, sends it the reply and
// closes it, until stopped. The lean client resets the connection after
// reading the reply, so neither side keeps a TIME_WAIT socket.
func (s *leanServers) serveTCP(ln int, index byte) error {
	ep, err := epollOn(ln)
	if err != nil {
		return err
	}
	defer unix.Close(ep)
	var reply [leanReplyLen]byte
	for {
		if ok, err := s.waitReadable(ep); !ok {
			return err
		}
		for {
			fd, sa, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
			if errors.Is(err, unix.EAGAIN) {
				break
			}
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ECONNABORTED) {
				continue
			}
			if err != nil {
				return fmt.Errorf("accept: %w", err)
			}
			if err := putReply(reply[:], index, sa); err == nil {
				_, _ = unix.Write(fd, reply[:])
			}
			_ = unix.Close(fd)
		}
	}
}

// serveUDP answers every pending query on fd, until stopped.
func (s *leanServers) serveUDP(fd int, index byte) error {
	ep, err := epollOn(fd)
	if err != nil {
		return err
	}
	defer unix.Close(ep)
	var buf [64]byte
	var reply [leanReplyLen + leanQueryLen]byte
	for {
		if ok, err := s.waitReadable(ep); !ok {
			return err
		}
		for {
			n, from, err := unix.Recvfrom(fd, buf[:], 0)
			if errors.Is(err, unix.EAGAIN) {
				break
			}
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return fmt.Errorf("recvfrom: %w", err)
			}
			if n != leanQueryLen || putReply(reply[:], index, from) != nil {
				continue // not a lean query: no answer, the client times out
			}
			copy(reply[leanReplyLen:], buf[:leanQueryLen])
			_ = unix.Sendto(fd, reply[:], 0, from)
		}
	}
}

// putReply writes the reply header for a client at sa into b.
func putReply(b []byte, index byte, sa unix.Sockaddr) error {
	in4, ok := sa.(*unix.SockaddrInet4)
	if !ok {
		return fmt.Errorf("client address %T is not IPv4", sa)
	}
	b[0], b[1] = leanMagic, index
	copy(b[2:6], in4.Addr[:])
	binary.BigEndian.PutUint16(b[6:8], uint16(in4.Port))
	return nil
}

// parseReply checks a reply header and returns the backend index and the
// client address the backend saw.
func parseReply(b []byte) (int, netip.AddrPort, error) {
	if len(b) < leanReplyLen || b[0] != leanMagic {
		return 0, netip.AddrPort{}, fmt.Errorf("malformed reply %x", b)
	}
	peer := netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[2:6])), binary.BigEndian.Uint16(b[6:8]))
	return int(b[1]), peer, nil
}

// close stops the server loops, waits for them and closes the sockets.
func (s *leanServers) close() error {
	s.stop.Store(true)
	s.wg.Wait()
	for _, fd := range s.fds {
		_ = unix.Close(fd)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
