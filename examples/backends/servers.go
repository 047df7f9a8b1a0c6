package main

import (
	"errors"
	"fmt"
	"net"

	"github.com/lbkit/lbkit/lb"
	"github.com/lbkit/lbkit/sources/file"
)

// server is one running backend.
type server struct {
	name  string
	addr  string
	proto lb.Protocol
	close func() error
}

type serverList []*server

// Close stops every server.
func (l serverList) Close() {
	for _, s := range l {
		_ = s.close()
	}
}

// startServers starts a server for every endpoint of every entry, for each
// protocol the service's frontends use.
func startServers(entries []file.Entry) (serverList, error) {
	var out serverList
	for _, e := range entries {
		protos := map[lb.Protocol]bool{}
		for _, fe := range e.Service.Frontends {
			protos[fe.Protocol] = true
		}
		for i, ep := range e.Endpoints {
			if !ep.Addr.Addr().IsLoopback() {
				out.Close()
				return nil, fmt.Errorf("service %s: endpoint %s is not a loopback address; this helper only serves on 127.0.0.1", e.Service.Key, ep.Addr)
			}
			name := fmt.Sprintf("%s/%d", e.Service.Key, i)
			for _, p := range []lb.Protocol{lb.TCP, lb.UDP} {
				if !protos[p] {
					continue
				}
				s, err := start(name, ep.Addr.String(), p)
				if err != nil {
					out.Close()
					return nil, fmt.Errorf("service %s: %w", e.Service.Key, err)
				}
				out = append(out, s)
			}
		}
	}
	return out, nil
}

func start(name, addr string, p lb.Protocol) (*server, error) {
	switch p {
	case lb.TCP:
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		go serveTCP(name, ln)
		return &server{name: name, addr: addr, proto: p, close: ln.Close}, nil
	case lb.UDP:
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, err
		}
		go serveUDP(name, pc)
		return &server{name: name, addr: addr, proto: p, close: pc.Close}, nil
	}
	return nil, errors.New("unsupported protocol " + p.String())
}

func serveTCP(name string, ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			fmt.Fprintf(c, "%s %s\n", name, c.RemoteAddr())
		}()
	}
}

func serveUDP(name string, pc net.PacketConn) {
	buf := make([]byte, 64<<10)
	for {
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		_, _ = pc.WriteTo(fmt.Appendf(nil, "%s %s\n", name, from), from)
	}
}
