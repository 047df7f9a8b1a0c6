package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/lbkit/lbkit/internal/nftutil"
)

// Netlink sizing. A full sync of 10k services is several MiB, more than
// the default socket buffers hold; like nft, the datapath raises both
// buffers (SO_SNDBUFFORCE and SO_RCVBUFFORCE, CAP_NET_ADMIN) to fit the
// batch it is about to send (nftutil.Conn.FlushSized).
const (
	// minSockBuf is the least buffer size asked for.
	minSockBuf = 1 << 20
	// ackBytes is what one queued ack costs the receive buffer (skb
	// truesize), generously.
	ackBytes = 2 << 10
)

// conn is one netlink connection to the datapath's namespace, used for the
// reads and the one transaction of a sync.
type conn struct {
	*nftutil.Conn
	nft *nftables.Conn // Conn.Nft
	// tables are the ip and ip6 tables, indexed by fam.
	tables [2]*nftables.Table

	bytes    int // estimated size of the queued batch
	messages int // queued messages
}

// dial opens a lasting netlink connection in the configured namespace.
func (c *config) dial() (*conn, error) {
	nc, err := nftutil.Dial(c.netns)
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return &conn{Conn: nc, nft: nc.Nft, tables: [2]*nftables.Table{
		{Name: c.table, Family: nftables.TableFamilyIPv4},
		{Name: c.table, Family: nftables.TableFamilyIPv6},
	}}, nil
}

// where names the namespace in errors: "" or " in /var/run/netns/x".
func (c *config) where() string { return nftutil.Where(c.netns) }

// close ends the connection.
func (cn *conn) close() { cn.Close() }

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
	if len(elems) == 0 {
		return nil
	}
	d := elems[0].set.def()
	batch := make([]nftables.SetElement, len(elems))
	for i, e := range elems {
		batch[i] = e.nft(d, del)
	}
	n, err := nftutil.WriteElements(cn.nft, d.nft(cn.table(d.v6)), batch, del)
	cn.queue(n)
	if err != nil {
		return fmt.Errorf("table %s: %w", d.family(), err)
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
	snd := max(minSockBuf, 2*cn.bytes)
	rcv := max(minSockBuf, ackBytes*(cn.messages+8))
	err := cn.FlushSized(snd, rcv)
	cn.bytes, cn.messages = 0, 0
	if err != nil {
		return fmt.Errorf("nftables transaction: %w", err)
	}
	return nil
}

// generation returns the namespace's nftables ruleset generation, which
// every committed transaction (anyone's) increments.
func (cn *conn) generation() (uint32, error) {
	if cn.Netlink == nil {
		return 0, errors.New("no netlink socket")
	}
	replies, err := cn.Netlink.Execute(netlink.Message{
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
