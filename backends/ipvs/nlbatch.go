package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"time"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// A batch is a list of netlink request messages, encoded back to back,
// each asking for an acknowledgement (NLM_F_ACK). batchSock.send writes it
// with few sendmsg calls and returns one error per message.
type batch struct {
	buf  []byte
	ends []int // end offset of each message in buf
}

// reset empties the batch, keeping its memory.
func (b *batch) reset() { b.buf, b.ends = b.buf[:0], b.ends[:0] }

// len is the number of messages.
func (b *batch) len() int { return len(b.ends) }

// msg returns message i.
func (b *batch) msg(i int) []byte {
	start := 0
	if i > 0 {
		start = b.ends[i-1]
	}
	return b.buf[start:b.ends[i]]
}

// begin starts a message of the given type and flags (NLM_F_REQUEST and
// NLM_F_ACK are added; the sequence number is set when sent). The caller
// appends the body to b.buf and calls end.
func (b *batch) begin(typ, flags uint16) {
	var h [unix.SizeofNlMsghdr]byte
	binary.NativeEndian.PutUint16(h[4:], typ)
	binary.NativeEndian.PutUint16(h[6:], flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	b.buf = append(b.buf, h[:]...)
}

// end finishes the message begin started: it sets its length.
func (b *batch) end() {
	start := 0
	if n := len(b.ends); n > 0 {
		start = b.ends[n-1]
	}
	b.buf = pad(b.buf)
	binary.NativeEndian.PutUint32(b.buf[start:], uint32(len(b.buf)-start))
	b.ends = append(b.ends, len(b.buf))
}

// pad aligns buf to netlink's 4 bytes.
func pad(buf []byte) []byte {
	for len(buf)%4 != 0 {
		buf = append(buf, 0)
	}
	return buf
}

// attr appends a netlink attribute (type, value, padding).
func attr(buf []byte, typ uint16, value ...byte) []byte {
	var h [unix.SizeofRtAttr]byte
	binary.NativeEndian.PutUint16(h[:], uint16(unix.SizeofRtAttr+len(value)))
	binary.NativeEndian.PutUint16(h[2:], typ)
	return pad(append(append(buf, h[:]...), value...))
}

func attrU16(buf []byte, typ, v uint16) []byte {
	return attr(buf, typ, binary.NativeEndian.AppendUint16(nil, v)...)
}

func attrU32(buf []byte, typ uint16, v uint32) []byte {
	return attr(buf, typ, binary.NativeEndian.AppendUint32(nil, v)...)
}

// nest starts a nested attribute; close it with endNest(buf, start).
func nest(buf []byte, typ uint16) ([]byte, int) {
	return attr(buf, typ), len(buf)
}

// endNest sets the length of the nested attribute that starts at start.
func endNest(buf []byte, start int) []byte {
	binary.NativeEndian.PutUint16(buf[start:], uint16(len(buf)-start))
	return buf
}

// batchSock is a netlink socket (in the datapath's namespace) that sends
// batches: as many messages per sendmsg as fit in maxBytes and whose
// acknowledgements fit in the receive buffer, then reads the
// acknowledgements and maps each one back to its message by sequence number.
type batchSock struct {
	s    *nl.NetlinkSocket
	pid  uint32
	seq  uint32
	rbuf []byte
	// maxBytes and maxMsgs bound one sendmsg: the kernel refuses a
	// message larger than the send buffer, and drops acknowledgements that
	// do not fit in the receive buffer (it handles the whole sendmsg
	// before we read any).
	maxBytes, maxMsgs int
	// sends counts sendmsg calls.
	sends func()
}

// Batch limits. An acknowledgement takes one socket buffer in the receive
// queue (under 1 KiB of accounted memory, error replies included with
// NETLINK_CAP_ACK); we leave twice that per message.
const (
	batchBytes   = 64 << 10
	rcvBufWanted = 4 << 20
	ackCost      = 2 << 10
	ackTimeout   = 30 * time.Second
)

// openBatchSock opens a netlink socket of protocol proto in the namespace
// at path ("": the current one).
func openBatchSock(path string, proto int, sends func()) (*batchSock, error) {
	ns := netns.None()
	if path != "" {
		var err error
		if ns, err = netns.GetFromPath(path); err != nil {
			return nil, fmt.Errorf("network namespace %s: %w", path, err)
		}
		defer ns.Close()
	}
	s, err := nl.GetNetlinkSocketAt(ns, netns.None(), proto)
	if err != nil {
		return nil, fmt.Errorf("netlink socket (protocol %d): %w", proto, err)
	}
	bs := &batchSock{s: s, rbuf: make([]byte, 64<<10), maxBytes: batchBytes, sends: sends}
	if err := bs.setup(); err != nil {
		s.Close()
		return nil, err
	}
	return bs, nil
}

func (bs *batchSock) setup() error {
	fd := bs.s.GetFd()
	// A larger receive buffer lets more acknowledgements wait; FORCE
	// needs CAP_NET_ADMIN, which programming IPVS needs anyway.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBufWanted); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBufWanted)
	}
	rcv, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		return fmt.Errorf("netlink receive buffer size: %w", err)
	}
	bs.maxMsgs = max(rcv/ackCost, 1)
	// Error acknowledgements without a copy of the request.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	tv := unix.NsecToTimeval(ackTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("netlink receive timeout: %w", err)
	}
	if bs.pid, err = bs.s.GetPid(); err != nil {
		return fmt.Errorf("netlink port id: %w", err)
	}
	return nil
}

func (bs *batchSock) close() { bs.s.Close() }

// send sends every message of b and returns one error per message: nil
// when the kernel acknowledged it, a syscall.Errno when it refused it,
// another error when the outcome is unknown (the socket failed).
// Messages go in order; one message's failure does not stop the others.
func (bs *batchSock) send(b *batch) []error {
	errs := make([]error, b.len())
	for first := 0; first < b.len(); {
		last := first + 1 // one past the chunk's last message
		for last < b.len() && last-first < bs.maxMsgs && b.ends[last]-b.start(first) <= bs.maxBytes {
			last++
		}
		bs.sendChunk(b, first, last, errs)
		first = last
	}
	return errs
}

// start is the offset of message i.
func (b *batch) start(i int) int {
	if i == 0 {
		return 0
	}
	return b.ends[i-1]
}

// sendChunk sends messages [first, last) of b in one sendmsg and fills
// their errors from the acknowledgements.
func (bs *batchSock) sendChunk(b *batch, first, last int, errs []error) {
	seq0 := bs.seq + 1
	for i := first; i < last; i++ {
		bs.seq++
		binary.NativeEndian.PutUint32(b.buf[b.start(i)+8:], bs.seq)
	}
	fail := func(err error) {
		for i := first; i < last; i++ {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}
	chunk := b.buf[b.start(first):b.ends[last-1]]
	if bs.sends != nil {
		bs.sends()
	}
	if err := unix.Sendto(bs.s.GetFd(), chunk, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		fail(fmt.Errorf("netlink sendmsg of %d messages: %w", last-first, err))
		return
	}
	acked := make([]bool, last-first)
	for pending := last - first; pending > 0; {
		n, _, err := unix.Recvfrom(bs.s.GetFd(), bs.rbuf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			fail(fmt.Errorf("netlink acknowledgement lost (%d of %d missing): %w", pending, last-first, err))
			return
		}
		for h, data := range messages(bs.rbuf[:n]) {
			i := int(h.Seq - seq0)
			if h.Type != unix.NLMSG_ERROR || h.Pid != bs.pid || h.Seq < seq0 || i >= last-first || acked[i] {
				continue // a stale acknowledgement of an earlier chunk
			}
			errs[first+i] = ackError(data)
			acked[i] = true
			pending--
		}
	}
}

// request sends one message and returns the payloads of the replies of
// type typ (a get, not a batch).
func (bs *batchSock) request(b *batch, typ uint16) ([][]byte, error) {
	bs.seq++
	binary.NativeEndian.PutUint32(b.buf[8:], bs.seq)
	if err := unix.Sendto(bs.s.GetFd(), b.buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("netlink sendmsg: %w", err)
	}
	var out [][]byte
	for {
		n, _, err := unix.Recvfrom(bs.s.GetFd(), bs.rbuf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("netlink reply: %w", err)
		}
		for h, data := range messages(bs.rbuf[:n]) {
			if h.Seq != bs.seq || h.Pid != bs.pid {
				continue
			}
			switch h.Type {
			case typ:
				out = append(out, slices.Clone(data)) // rbuf is reused
			case unix.NLMSG_ERROR:
				if err := ackError(data); err != nil {
					return nil, err
				}
				return out, nil // the acknowledgement ends the reply
			}
		}
	}
}

// messages iterates over the netlink messages in buf (headers and
// payloads), without copying; it stops at a malformed one.
func messages(buf []byte) func(yield func(unix.NlMsghdr, []byte) bool) {
	return func(yield func(unix.NlMsghdr, []byte) bool) {
		for len(buf) >= unix.SizeofNlMsghdr {
			h := unix.NlMsghdr{
				Len: binary.NativeEndian.Uint32(buf), Type: binary.NativeEndian.Uint16(buf[4:]),
				Flags: binary.NativeEndian.Uint16(buf[6:]), Seq: binary.NativeEndian.Uint32(buf[8:]),
				Pid: binary.NativeEndian.Uint32(buf[12:]),
			}
			if h.Len < unix.SizeofNlMsghdr || int(h.Len) > len(buf) {
				return
			}
			if !yield(h, buf[unix.SizeofNlMsghdr:h.Len]) {
				return
			}
			buf = buf[min(int(h.Len+3)&^3, len(buf)):]
		}
	}
}

// ackError returns the error an acknowledgement (NLMSG_ERROR payload)
// carries: nil for success, the kernel's errno otherwise.
func ackError(data []byte) error {
	if len(data) < 4 {
		return fmt.Errorf("netlink acknowledgement too short (%d bytes)", len(data))
	}
	if code := int32(binary.NativeEndian.Uint32(data)); code != 0 {
		return syscall.Errno(-code)
	}
	return nil
}
