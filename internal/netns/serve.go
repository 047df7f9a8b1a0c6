package netns

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
)

// ServeTCP serves identity on ln until the test ends: for each connection it
// writes "<name> <remote addr>\n", then echoes everything it reads until EOF,
// then closes. t.Cleanup closes ln and every open connection and waits for
// the server to stop. name must not contain spaces.
func ServeTCP(t testing.TB, name string, ln net.Listener) {
	t.Helper()
	if err := checkName(name); err != nil {
		_ = ln.Close()
		t.Fatalf("netns: ServeTCP on %s: %v", ln.Addr(), err)
	}
	s := &tcpServer{name: name, ln: ln, conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go s.acceptLoop()
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("netns: TCP server %s on %s: %v", name, ln.Addr(), err)
		}
	})
}

// tcpServer is one ServeTCP server.
type tcpServer struct {
	name string
	ln   net.Listener
	wg   sync.WaitGroup

	mu      sync.Mutex
	closing bool
	conns   map[net.Conn]struct{}
	err     error // why accepting stopped before closing, if it did
}

func (s *tcpServer) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			if !s.closing {
				s.err = fmt.Errorf("accept stopped early: %w", err)
			}
			s.mu.Unlock()
			return
		}
		if !s.track(c) {
			_ = c.Close()
			return
		}
		s.wg.Add(1)
		go s.handle(c)
	}
}

// track records an open connection; false when the server is stopping.
func (s *tcpServer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *tcpServer) handle(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.Close()
	}()
	if _, err := fmt.Fprintf(c, "%s %s\n", s.name, c.RemoteAddr()); err != nil {
		return // the client went away; nothing to serve
	}
	_, _ = io.Copy(c, c)
}

// stop closes the listener and all connections and waits for the goroutines.
func (s *tcpServer) stop() error {
	s.mu.Lock()
	s.closing = true
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	_ = s.ln.Close()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// ServeUDP serves identity on pc until the test ends: each datagram is
// answered with "<name> <remote addr>\n" followed by the datagram's payload.
// t.Cleanup closes pc and waits for the server to stop. name must not contain
// spaces.
func ServeUDP(t testing.TB, name string, pc net.PacketConn) {
	t.Helper()
	if err := checkName(name); err != nil {
		_ = pc.Close()
		t.Fatalf("netns: ServeUDP on %s: %v", pc.LocalAddr(), err)
	}
	var (
		mu      sync.Mutex
		closing bool
		loopErr error
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				mu.Lock()
				if !closing && !errors.Is(err, net.ErrClosed) {
					loopErr = fmt.Errorf("read stopped early: %w", err)
				}
				mu.Unlock()
				return
			}
			reply := append([]byte(name+" "+from.String()+"\n"), buf[:n]...)
			// A failed reply is the client's problem (it times out).
			_, _ = pc.WriteTo(reply, from)
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		closing = true
		mu.Unlock()
		_ = pc.Close()
		<-done
		if loopErr != nil {
			t.Errorf("netns: UDP server %s on %s: %v", name, pc.LocalAddr(), loopErr)
		}
	})
}
