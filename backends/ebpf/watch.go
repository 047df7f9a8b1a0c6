package ebpf

import (
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Link watching: from the first Sync (or Adopt) until Cleanup, one
// goroutine per loaded datapath subscribes to the namespace's link events
// and applies them under d.mu, so it never races with Sync or Cleanup.
// Once Cleanup (or a failed start) retires the watcher, the goroutine does
// nothing more and ends; Cleanup and Close wait for it.

// Watcher tuning; Datapath.watchBuf and watchRcvBuf override the sizes
// (tests provoke overruns with tiny ones).
const (
	// defaultWatchBuf is the capacity of the channel between netlink's
	// receiving goroutine and the watcher.
	defaultWatchBuf = 64
	// defaultWatchRcvBuf is the subscription socket's receive buffer:
	// room for a burst of link events (a node starting many pods) while
	// the watcher waits for a Sync to finish.
	defaultWatchRcvBuf = 1 << 20
	// Retry pacing after the subscription failed.
	watchRetryMin = 100 * time.Millisecond
	watchRetryMax = 30 * time.Second
)

// watcher is one link-watching goroutine.
type watcher struct {
	stop chan struct{} // closed to retire the watcher
	done chan struct{} // closed when the goroutine has ended
}

// startWatch starts watching links for the TC and XDP modes. d.mu is
// held.
func (d *Datapath) startWatch() {
	if d.opts.Attach == AttachSocket || d.watch != nil {
		return
	}
	w := &watcher{stop: make(chan struct{}), done: make(chan struct{})}
	d.watch = w
	go d.watchLinks(w)
}

// retireWatch stops the watcher; the goroutine ends on its own and
// waitRetired waits for it. d.mu is held.
func (d *Datapath) retireWatch() {
	if d.watch == nil {
		return
	}
	close(d.watch.stop)
	d.retired = append(d.retired, d.watch)
	d.watch = nil
}

// takeRetired returns the retired watchers to wait for (after unlocking
// d.mu, which they may be waiting on). d.mu is held.
func (d *Datapath) takeRetired() []*watcher {
	ws := d.retired
	d.retired = nil
	return ws
}

// waitWatchers waits until the goroutines of ws have ended.
func waitWatchers(ws []*watcher) {
	for _, w := range ws {
		<-w.done
	}
}

// current runs fn under d.mu if w is still the datapath's watcher, and
// reports whether it was.
func (d *Datapath) current(w *watcher, fn func()) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.watch != w {
		return false
	}
	fn()
	return true
}

// watchLinks is the watcher's goroutine: subscribe, compare the links with
// the attachments (events before the subscription were missed), apply
// events; when the subscription fails (an overrun: the kernel dropped
// events) start over.
func (d *Datapath) watchLinks(w *watcher) {
	defer close(w.done)
	retry := watchRetryMin
	for {
		healthy, ok := d.watchOnce(w)
		if !ok {
			return
		}
		if healthy {
			retry = watchRetryMin
		}
		if !sleep(w.stop, retry) {
			return
		}
		retry = min(2*retry, watchRetryMax)
	}
}

// watchOnce runs one subscription until it ends. healthy reports that
// events arrived (the retry pacing starts over); ok is false once the
// watcher is retired.
func (d *Datapath) watchOnce(w *watcher) (healthy, ok bool) {
	// The subscription's own stop channel, closed when the watcher is
	// retired or this subscription ended, so that netlink closes the
	// socket of a failed subscription at once.
	subStop := make(chan struct{})
	ended := make(chan struct{})
	defer close(ended)
	go func() {
		select {
		case <-w.stop:
		case <-ended:
		}
		close(subStop)
	}()
	updates := make(chan netlink.LinkUpdate, d.watchBufSize())
	if err := d.subscribe(updates, subStop); err != nil {
		return false, d.current(w, func() {
			d.watchErrors++
			d.log.Warn("cannot watch interfaces; retrying", "error", err)
		})
	}
	// Runs before close(ended): when the watcher was retired, netlink
	// closes the channel once subStop is closed; otherwise it is closed.
	defer drain(updates)
	if !d.current(w, func() { _ = d.reconcileLinks(false) }) {
		return false, false
	}
	for u := range updates {
		if !d.current(w, func() { d.onLinkUpdate(u) }) {
			return healthy, false
		}
		healthy = true
	}
	// netlink closed the channel: retired, or the subscription failed.
	return healthy, d.current(w, func() {
		d.watchErrors++
		d.log.Warn("interface events lost (subscription failed or overran): listing interfaces again")
	})
}

// subscribe subscribes ch to the link events of the namespace until stop
// is closed; netlink closes ch when the subscription ends, whatever the
// reason.
func (d *Datapath) subscribe(ch chan netlink.LinkUpdate, stop chan struct{}) error {
	opts := netlink.LinkSubscribeOptions{
		ReceiveBufferSize: d.watchRcvBufSize(),
		ErrorCallback: func(err error) {
			select {
			case <-stop: // the socket was closed on purpose
			default:
				d.log.Debug("interface watch", "error", err)
			}
		},
	}
	if d.opts.Netns != "" {
		ns, err := netns.GetFromPath(d.opts.Netns)
		if err != nil {
			return fmt.Errorf("ebpf: watch interfaces: open %s: %w", d.opts.Netns, err)
		}
		defer ns.Close()
		opts.Namespace = &ns
	}
	if err := netlink.LinkSubscribeWithOptions(ch, stop, opts); err != nil {
		return fmt.Errorf("ebpf: watch interfaces: %w", err)
	}
	return nil
}

// watchBufSize and watchRcvBufSize return the watcher's sizes.
func (d *Datapath) watchBufSize() int {
	if d.watchBuf > 0 {
		return d.watchBuf
	}
	return defaultWatchBuf
}

func (d *Datapath) watchRcvBufSize() int {
	if d.watchRcvBuf > 0 {
		return d.watchRcvBuf
	}
	return defaultWatchRcvBuf
}

// drain reads ch until netlink closes it, so that netlink's receiving
// goroutine is never left blocked on a send.
func drain(ch chan netlink.LinkUpdate) {
	for range ch {
	}
}

// sleep waits for d or until stop is closed, and reports whether the wait
// ran its course.
func sleep(stop chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-stop:
		return false
	case <-t.C:
		return true
	}
}
