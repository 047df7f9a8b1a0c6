package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Netlink sizing. google/nftables sends a whole batch with one sendmsg,
// which the kernel refuses (EMSGSIZE, "message too long") when it exceeds
// the socket's send buffer, and queues one ack per message in the receive
// buffer (ENOBUFS when they do not fit). The defaults (about 200 KiB) hold
// a few thousand elements; a full sync of 10k services is several MiB.
// Like nft, the datapath raises both buffers (SO_SNDBUFFORCE and
// SO_RCVBUFFORCE, CAP_NET_ADMIN) to fit the batch it is about to send.
const (
	// maxElemsBytes bounds the element list of one NEWSETELEM or
	// DELSETELEM message: its netlink attribute length is 16 bits.
	maxElemsBytes = 48 << 10
	// elemOverhead estimates the attribute headers around one element.
	elemOverhead = 48
	// minSockBuf is the least buffer size asked for.
	minSockBuf = 1 << 20
	// ackBytes is what one queued ack costs the receive buffer (skb
	// truesize), generously.
	ackBytes = 2 << 10
)

// conn is one netlink connection to the datapath's namespace, used for the
// reads and the one transaction of a sync.
type conn struct {
	nft *nftables.Conn
	nl  *netlink.Conn // the socket, for buffer sizes
	ns  *os.File      // the namespace, kept open while the conn lives
	// tables are the ip and ip6 tables, indexed by fam.
	tables [2]*nftables.Table

	bytes    int // estimated size of the queued batch
	messages int // queued messages
}

// dial opens a lasting netlink connection in the configured namespace.
func (c *config) dial() (*conn, error) {
	cn := &conn{tables: [2]*nftables.Table{
		{Name: c.table, Family: nftables.TableFamilyIPv4},
		{Name: c.table, Family: nftables.TableFamilyIPv6},
	}}
	opts := []nftables.ConnOption{
		nftables.AsLasting(),
		nftables.WithSockOptions(func(nl *netlink.Conn) error { cn.nl = nl; return nil }),
	}
	if c.netns != "" {
		f, err := os.Open(c.netns)
		if err != nil {
			return nil, fmt.Errorf("nftables: open network namespace: %w", err)
		}
		cn.ns = f
		opts = append(opts, nftables.WithNetNSFd(int(f.Fd())))
	}
	nft, err := nftables.New(opts...)
	if err != nil {
		cn.closeNS()
		return nil, fmt.Errorf("nftables: netlink connection%s: %w", c.where(), err)
	}
	cn.nft = nft
	return cn, nil
}

// where names the namespace in errors: "" or " in /var/run/netns/x".
func (c *config) where() string {
	if c.netns == "" {
		return ""
	}
	return " in " + c.netns
}

func (cn *conn) closeNS() {
	if cn.ns != nil {
		_ = cn.ns.Close()
		cn.ns = nil
	}
}

// close ends the connection.
func (cn *conn) close() {
	if cn.nft != nil {
		_ = cn.nft.CloseLasting()
	}
	cn.closeNS()
}

// table returns the family's table.
func (cn *conn) table(v6 bool) *nftables.Table { return cn.tables[fam(v6)] }

// tableExists reports whether the family's table is there.
func (cn *conn) tableExists(v6 bool) (bool, error) {
	t := cn.table(v6)
	_, err := cn.nft.ListTableOfFamily(t.Name, t.Family)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.ENOENT):
		return false, nil
	}
	return false, fmt.Errorf("list table %s %s: %w", familyName(v6), t.Name, err)
}

// familyName is the nft name of the family: "ip" or "ip6".
func familyName(v6 bool) string {
	if v6 {
		return "ip6"
	}
	return "ip"
}

// queue accounts for one queued message of about n bytes.
func (cn *conn) queue(n int) {
	cn.bytes += n + 64
	cn.messages++
}

// recreateTables queues the removal of both tables (even if absent: add,
// then delete) and the creation of empty ones.
func (cn *conn) recreateTables() {
	cn.deleteTables()
	for _, t := range cn.tables {
		cn.nft.AddTable(t)
		cn.queue(64)
	}
}

// deleteTables queues the removal of both tables, which need not exist.
func (cn *conn) deleteTables() {
	for _, t := range cn.tables {
		cn.nft.AddTable(t)
		cn.nft.DelTable(t)
		cn.queue(64)
		cn.queue(64)
	}
}

// writeChain queues creating (or keeping) a chain and replacing its rules.
func (cn *conn) writeChain(v6 bool, def chainDef, flush bool) {
	t := cn.table(v6)
	ch := cn.nft.AddChain(def.nft(t))
	cn.queue(128)
	if flush {
		cn.nft.FlushChain(ch)
		cn.queue(64)
	}
	for _, r := range def.rules {
		cn.nft.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: r})
		cn.queue(64 + 48*len(r))
	}
}

// flushChain queues removing every rule of a chain.
func (cn *conn) flushChain(v6 bool, name string) {
	cn.nft.FlushChain(&nftables.Chain{Name: name, Table: cn.table(v6)})
	cn.queue(64)
}

// deleteChain queues removing a chain (with its rules).
func (cn *conn) deleteChain(v6 bool, name string) {
	cn.nft.DelChain(&nftables.Chain{Name: name, Table: cn.table(v6)})
	cn.queue(64)
}

// addSets queues creating (or keeping) every set of both tables.
func (cn *conn) addSets() error {
	for _, d := range allSets() {
		if err := cn.nft.AddSet(d.nft(cn.table(d.v6)), nil); err != nil {
			return fmt.Errorf("add set %s of table %s: %w", d.name, d.family(), err)
		}
		cn.queue(256)
	}
	return nil
}

// deleteSet queues removing a set.
func (cn *conn) deleteSet(v6 bool, name string) {
	cn.nft.DelSet(&nftables.Set{Table: cn.table(v6), Name: name})
	cn.queue(64)
}

// writeElems queues adding (or deleting) elements, grouped by set, in
// messages small enough for the 16-bit attribute length.
func (cn *conn) writeElems(elems []elem, del bool) error {
	var bySet [2 * numSetIDs][]elem
	for _, e := range elems {
		i := int(e.set.id) + fam(e.set.v6)*int(numSetIDs)
		bySet[i] = append(bySet[i], e)
	}
	for _, group := range bySet {
		if err := cn.writeSetElems(group, del); err != nil {
			return err
		}
	}
	return nil
}

// writeSetElems queues elements of one set.
func (cn *conn) writeSetElems(elems []elem, del bool) error {
	for start := 0; start < len(elems); {
		d := elems[start].set.def()
		batch := make([]nftables.SetElement, 0, min(len(elems)-start, 1024))
		size := 0
		end := start
		for ; end < len(elems); end++ {
			e := elems[end]
			n := elemOverhead + len(e.key) + len(e.val) + len(e.chain) + len(e.comment)
			if size+n > maxElemsBytes && len(batch) > 0 {
				break
			}
			size += n
			batch = append(batch, e.nft(d, del))
		}
		s := d.nft(cn.table(d.v6))
		var err error
		if del {
			err = cn.nft.SetDeleteElements(s, batch)
		} else {
			err = cn.nft.SetAddElements(s, batch)
		}
		if err != nil {
			op := "add"
			if del {
				op = "delete"
			}
			return fmt.Errorf("%s elements of set %s %s: %w", op, d.family(), d.name, err)
		}
		cn.queue(size)
		start = end
	}
	return nil
}

// nft converts the element; a deletion needs only the key.
func (e elem) nft(d setDef, del bool) nftables.SetElement {
	se := nftables.SetElement{Key: []byte(e.key)}
	if del {
		return se
	}
	se.Comment = e.comment
	switch d.kind {
	case dataMap:
		se.Val = []byte(e.val)
	case verdictMap:
		se.VerdictData = &expr.Verdict{Kind: expr.VerdictGoto, Chain: e.chain}
	}
	return se
}

// flush sends the queued batch as one transaction, after sizing the socket
// buffers for it.
func (cn *conn) flush() error {
	if cn.messages == 0 {
		return nil
	}
	if cn.nl != nil {
		snd := max(minSockBuf, 2*cn.bytes)
		rcv := max(minSockBuf, ackBytes*(cn.messages+8))
		if err := setSockBuf(cn.nl, snd, rcv); err != nil {
			return err
		}
	}
	err := cn.nft.Flush()
	cn.bytes, cn.messages = 0, 0
	if err != nil {
		return fmt.Errorf("nftables transaction: %w", err)
	}
	return nil
}

// setSockBuf forces the socket's buffer sizes (root may exceed
// net.core.wmem_max/rmem_max), falling back to the capped options.
func setSockBuf(nl *netlink.Conn, snd, rcv int) error {
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

// generation returns the namespace's nftables ruleset generation, which
// every committed transaction (anyone's) increments.
func (cn *conn) generation() (uint32, error) {
	if cn.nl == nil {
		return 0, errors.New("no netlink socket")
	}
	replies, err := cn.nl.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN),
			Flags: netlink.Request,
		},
		Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	})
	if err != nil {
		return 0, fmt.Errorf("get ruleset generation: %w", err)
	}
	for _, m := range replies {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return 0, fmt.Errorf("ruleset generation: %w", err)
		}
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			if ad.Type() == unix.NFTA_GEN_ID {
				return ad.Uint32(), nil
			}
		}
	}
	return 0, errors.New("ruleset generation: no NFTA_GEN_ID in the reply")
}
