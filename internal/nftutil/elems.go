package nftutil

import (
	"fmt"

	"github.com/google/nftables"
)

// MaxElemsBytes bounds the element list of one NEWSETELEM or DELSETELEM
// message: its netlink attribute length is 16 bits.
const MaxElemsBytes = 48 << 10

// elemOverhead estimates the attribute headers around one element.
const elemOverhead = 48

// ElemSize estimates the bytes element e takes in a message.
func ElemSize(e nftables.SetElement) int {
	n := elemOverhead + len(e.Key) + len(e.KeyEnd) + len(e.Val) + len(e.Comment)
	if e.VerdictData != nil {
		n += len(e.VerdictData.Chain)
	}
	return n
}

// WriteElements queues adding (or, with del, deleting) elems to set s, in
// messages small enough for the 16-bit attribute length, and returns the
// estimated bytes queued.
func WriteElements(nft *nftables.Conn, s *nftables.Set, elems []nftables.SetElement, del bool) (int, error) {
	total := 0
	for start := 0; start < len(elems); {
		size, end := 0, start
		for ; end < len(elems); end++ {
			n := ElemSize(elems[end])
			if size+n > MaxElemsBytes && end > start {
				break
			}
			size += n
		}
		var err error
		if del {
			err = nft.SetDeleteElements(s, elems[start:end])
		} else {
			err = nft.SetAddElements(s, elems[start:end])
		}
		if err != nil {
			op := "add"
			if del {
				op = "delete"
			}
			return total, fmt.Errorf("%s elements of set %s: %w", op, s.Name, err)
		}
		total += size
		start = end
	}
	return total, nil
}
