package lb

import "hash/maphash"

// A persistent hash trie from ServiceKey to *ServiceState (a simple HAMT
// without bitmap compression). Every update copies only the path from the
// root to one leaf, so old snapshots stay valid and share everything else.

const (
	pBits     = 5
	pFanout   = 1 << pBits
	pLeafMax  = 8  // entries a leaf holds before it splits
	pMaxDepth = 12 // 60 bits of hash; deeper leaves just grow
)

var pSeed = maphash.MakeSeed()

func hashKey(k ServiceKey) uint64 { return maphash.String(pSeed, string(k)) }

type pentry struct {
	hash uint64
	key  ServiceKey
	val  *ServiceState
}

// pnode is either an inner node (children != nil) or a leaf (entries).
//
// edit marks a node as owned by one batch of updates (a "transient", as in
// Clojure's persistent maps): while a batch holds the token it may mutate
// the nodes it created itself instead of copying them again. Once the batch
// ends nobody holds the token any more and the nodes are immutable.
type pnode struct {
	children *[pFanout]*pnode
	entries  []pentry
	edit     *editToken
}

// editToken identifies one batch of updates.
type editToken struct{ _ byte }

func slot(h uint64, depth int) int { return int(h>>(depth*pBits)) & (pFanout - 1) }

func (n *pnode) get(h uint64, k ServiceKey, depth int) *ServiceState {
	for n != nil {
		if n.children == nil {
			for i := range n.entries {
				if n.entries[i].key == k {
					return n.entries[i].val
				}
			}
			return nil
		}
		n = n.children[slot(h, depth)]
		depth++
	}
	return nil
}

// set returns a new node with k bound to v (or removed when v is nil) and the
// change in the number of entries (-1, 0 or +1).
func (n *pnode) set(h uint64, k ServiceKey, v *ServiceState, depth int, tok *editToken) (*pnode, int) {
	if n == nil {
		if v == nil {
			return nil, 0
		}
		return &pnode{entries: []pentry{{h, k, v}}, edit: tok}, 1
	}
	owned := tok != nil && n.edit == tok
	if n.children != nil {
		i := slot(h, depth)
		child, delta := n.children[i].set(h, k, v, depth+1, tok)
		if child == n.children[i] {
			return n, delta
		}
		if owned {
			n.children[i] = child
			return n, delta
		}
		kids := *n.children
		kids[i] = child
		return &pnode{children: &kids, edit: tok}, delta
	}
	// Leaf.
	for i := range n.entries {
		if n.entries[i].key != k {
			continue
		}
		if v == nil {
			if len(n.entries) == 1 {
				return nil, -1
			}
			es := make([]pentry, 0, len(n.entries)-1)
			es = append(es, n.entries[:i]...)
			es = append(es, n.entries[i+1:]...)
			return &pnode{entries: es, edit: tok}, -1
		}
		if owned {
			n.entries[i].val = v
			return n, 0
		}
		es := append([]pentry(nil), n.entries...)
		es[i].val = v
		return &pnode{entries: es, edit: tok}, 0
	}
	if v == nil {
		return n, 0
	}
	if len(n.entries) < pLeafMax || depth >= pMaxDepth {
		if owned {
			n.entries = append(n.entries, pentry{h, k, v})
			return n, 1
		}
		es := make([]pentry, len(n.entries), len(n.entries)+1)
		copy(es, n.entries)
		return &pnode{entries: append(es, pentry{h, k, v}), edit: tok}, 1
	}
	// Split the full leaf into an inner node, then insert.
	inner := &pnode{children: new([pFanout]*pnode), edit: tok}
	for _, e := range n.entries {
		i := slot(e.hash, depth)
		inner.children[i], _ = inner.children[i].set(e.hash, e.key, e.val, depth+1, tok)
	}
	return inner.set(h, k, v, depth, tok)
}

func (n *pnode) each(fn func(*ServiceState) bool) bool {
	if n == nil {
		return true
	}
	if n.children == nil {
		for _, e := range n.entries {
			if !fn(e.val) {
				return false
			}
		}
		return true
	}
	for _, c := range n.children {
		if !c.each(fn) {
			return false
		}
	}
	return true
}
