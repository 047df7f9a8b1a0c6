// Command backends serves the endpoints of a services file on 127.0.0.1 so
// that proxyd has something to balance over, and probes the file's frontends
// to show how traffic was spread.
//
//	go run ./examples/backends [-services examples/services.yaml]   # serve until interrupted
//	go run ./examples/backends -probe 300                            # send 300 requests per frontend
//
// Every backend answers a TCP connection or a UDP datagram with one line
// naming itself ("web/1 127.0.0.1:9002"). Only loopback endpoints are served.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lbkit/lbkit/sources/file"
)

func main() {
	path := flag.String("services", "examples/services.yaml", "services file whose endpoints to serve")
	probe := flag.Int("probe", 0, "instead of serving, send this many requests to every frontend and print the spread")
	flag.Parse()

	entries, err := loadEntries(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "backends:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *probe > 0 {
		err = probeAll(ctx, os.Stdout, entries, *probe)
	} else {
		err = serveAll(ctx, os.Stdout, entries)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "backends:", err)
		os.Exit(1)
	}
}

func loadEntries(path string) ([]file.Entry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return file.Parse(data, path)
}

// serveAll serves every endpoint until ctx is done.
func serveAll(ctx context.Context, out io.Writer, entries []file.Entry) error {
	servers, err := startServers(entries)
	if err != nil {
		return err
	}
	defer servers.Close()
	for _, s := range servers {
		fmt.Fprintf(out, "serving %-12s on %s/%s\n", s.name, s.addr, s.proto)
	}
	fmt.Fprintf(out, "%d backends up; interrupt to stop\n", len(servers))
	<-ctx.Done()
	return nil
}

// probeTimeout bounds one probe request.
const probeTimeout = 2 * time.Second
