package netns

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// These tests need no privileges: the servers run on 127.0.0.1.

func TestServeTCPRequestLoopback(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ServeTCP(t, "alpha", ln)
	r, err := Request(t.Context(), nil, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if r.Backend != "alpha" {
		t.Errorf("Backend = %q, want alpha", r.Backend)
	}
	if r.Client.Addr() != netip.MustParseAddr("127.0.0.1") || r.Client.Port() == 0 {
		t.Errorf("Client = %v, want 127.0.0.1:<port>", r.Client)
	}
}

func TestServeTCPEchoesAfterIdentity(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ServeTCP(t, "echo", ln)
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rd := bufio.NewReader(c)
	line, err := rd.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	want := "echo " + c.LocalAddr().String() + "\n"
	if line != want {
		t.Errorf("identity line = %q, want %q", line, want)
	}
	if _, err := io.WriteString(c, "hello, world"); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	if string(rest) != "hello, world" {
		t.Errorf("echo = %q, want %q", rest, "hello, world")
	}
}

func TestServeUDPRequestLoopback(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ServeUDP(t, "beta", pc)
	d := &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 0}}
	r, err := Request(t.Context(), d, "udp4", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	if r.Backend != "beta" || r.Client.Addr() != netip.MustParseAddr("127.0.0.1") || r.Client.Port() == 0 {
		t.Errorf("reply = %v, want beta 127.0.0.1:<port>", r)
	}

	// The payload comes back after the identity line.
	c, err := net.Dial("udp4", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("payload")); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	want := "beta " + c.LocalAddr().String() + "\npayload"
	if string(buf[:n]) != want {
		t.Errorf("datagram = %q, want %q", buf[:n], want)
	}
}

func TestRequestErrors(t *testing.T) {
	t.Run("unsupported network", func(t *testing.T) {
		_, err := Request(t.Context(), nil, "sctp", "127.0.0.1:1")
		if err == nil || !strings.Contains(err.Error(), `unsupported network "sctp"`) {
			t.Errorf("err = %v, want unsupported network", err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if _, err := Request(t.Context(), nil, "tcp", addr); err == nil {
			t.Error("Request to a closed port succeeded")
		}
	})
	t.Run("malformed reply", func(t *testing.T) {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err == nil {
				_, _ = io.WriteString(c, "no-address-here\n")
				c.Close()
			}
		}()
		_, err = Request(t.Context(), nil, "tcp", ln.Addr().String())
		if err == nil || !strings.Contains(err.Error(), "malformed reply") {
			t.Errorf("err = %v, want malformed reply", err)
		}
	})
	t.Run("silent server hits the context deadline", func(t *testing.T) {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		// The kernel completes the handshake; nobody ever writes.
		if _, err := Request(ctx, nil, "tcp", ln.Addr().String()); err == nil {
			t.Error("Request to a silent server succeeded")
		}
	})
}

func TestParseReply(t *testing.T) {
	r, err := parseReply("backend2 [::ffff:198.18.1.2]:40000\n")
	if err != nil {
		t.Fatal(err)
	}
	want := Reply{Backend: "backend2", Client: netip.MustParseAddrPort("198.18.1.2:40000")}
	if r != want {
		t.Errorf("parseReply = %v, want %v (mapped address unmapped)", r, want)
	}
	for _, bad := range []string{"", "x", "a b c", "a 1.2.3.4", "a [::1]"} {
		if _, err := parseReply(bad); err == nil {
			t.Errorf("parseReply(%q) succeeded", bad)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, bad := range []string{"", "two words", "tab\tname", "nl\n"} {
		if err := checkName(bad); err == nil {
			t.Errorf("checkName(%q) accepted", bad)
		}
	}
	if err := checkName("backend0"); err != nil {
		t.Errorf("checkName(backend0): %v", err)
	}
}
