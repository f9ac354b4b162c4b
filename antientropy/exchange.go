package antientropy

import (
	"cmp"
	"fmt"
	"slices"
)

// StepKind says what an Exchange needs next.
type StepKind int

// The steps of an exchange.
const (
	// StepDone: the exchange is over; read Result.
	StepDone StepKind = iota
	// StepHashes: get the hashes of Step.Nodes at Step.Level from both
	// trees and call OnHashes.
	StepHashes
	// StepLeafKeys: list the records of leaves Step.Nodes on both sides
	// and call OnLeafKeys.
	StepLeafKeys
	// StepTransfer: pull the peer's records with key hashes Step.Fetch and
	// merge them locally; push the local records with key hashes Step.Push
	// to the peer; then call OnTransfer with the key hashes whose merge
	// changed either side.
	StepTransfer
)

func (k StepKind) String() string {
	switch k {
	case StepDone:
		return "done"
	case StepHashes:
		return "hashes"
	case StepLeafKeys:
		return "leafkeys"
	case StepTransfer:
		return "transfer"
	}
	return fmt.Sprintf("StepKind(%d)", int(k))
}

// Step is one request of an Exchange.
type Step struct {
	Kind  StepKind
	Level int      // StepHashes: the tree level of Nodes
	Nodes []uint32 // StepHashes: node indices; StepLeafKeys: leaf numbers
	Fetch []uint64 // StepTransfer: key hashes to pull from the peer
	Push  []uint64 // StepTransfer: key hashes to push to the peer
}

// ExchangeOptions bounds the requests of an Exchange.
type ExchangeOptions struct {
	// MaxHashes caps the nodes of one StepHashes.
	MaxHashes int
	// MaxLeaves caps the leaves of one StepLeafKeys.
	MaxLeaves int
	// MaxKeys caps each of Fetch and Push of one StepTransfer.
	MaxKeys int
	// Settled, if set, reports a leaf whose (local, remote) hash pair an
	// earlier exchange could not reconcile (see ExchangeResult.Stuck). Such
	// a leaf is skipped rather than listed again.
	Settled func(leaf int, local, remote uint64) bool
}

// LeafDiff is a leaf whose hashes differ.
type LeafDiff struct {
	Leaf          int
	Local, Remote uint64
}

// ExchangeResult summarises an exchange.
type ExchangeResult struct {
	NodesCompared   int // tree node hashes compared (both sides count once)
	LeavesDiffering int // differing leaves found, settled ones included
	LeavesSettled   int // differing leaves skipped because Settled said so
	KeysDiffering   int // distinct key hashes whose records differed
	KeysMoved       int // of those, keys whose merge changed a side
	// Stuck lists the leaves where the exchange found differences but
	// moved nothing (every differing key is one the other side must not
	// hold, or a tombstone the other side reaped). The Service
	// remembers their hash pairs and passes them back through Settled, so
	// a difference that cannot be resolved costs only the descent to its
	// leaf on later exchanges, not a listing and transfer each time.
	Stuck []LeafDiff
}

type phase int

const (
	phaseHashes phase = iota
	phaseLeaves
	phaseDone
)

// leafPlan tracks one listed leaf until its transfers are done.
type leafPlan struct {
	diff          LeafDiff // hashes of the listed entries
	keys, moved   int
	hasDifference bool
}

// Exchange is the comparison of one partition's tree with a peer's, as a
// deterministic state machine free of I/O: Next says what to fetch, On*
// deliver it. A driver (Service) performs the steps against the local
// store and a Peer. The machine descends from the root, level by level,
// into the children of differing nodes only, lists the records of
// differing leaves on both sides, and plans transfers of exactly the keys
// whose records differ.
type Exchange struct {
	shape Shape
	opts  ExchangeOptions
	phase phase
	cur   Step

	level    int
	frontier []uint32 // nodes at level still to compare
	children []uint32 // children (at level-1) of differing nodes found so far

	leaves    []uint32 // differing leaves still to list
	batch     []uint32
	plans     map[int]*leafPlan
	transfers []Step

	res ExchangeResult
}

// NewExchange starts an exchange of one partition's tree.
func NewExchange(s Shape, opts ExchangeOptions) *Exchange {
	opts.MaxHashes = max(opts.MaxHashes, 1)
	opts.MaxLeaves = max(opts.MaxLeaves, 1)
	opts.MaxKeys = max(opts.MaxKeys, 1)
	x := &Exchange{
		shape:    s,
		opts:     opts,
		level:    s.Levels() - 1,
		frontier: []uint32{0},
	}
	x.advance()
	return x
}

// Next returns the step to perform. It does not change the machine: it
// returns the same step until that step's On* method is called.
func (x *Exchange) Next() Step { return x.cur }

// Result returns the exchange's summary; it is final once Next returns
// StepDone.
func (x *Exchange) Result() ExchangeResult { return x.res }

func (x *Exchange) advance() {
	switch x.phase {
	case phaseHashes:
		n := min(len(x.frontier), x.opts.MaxHashes)
		x.cur = Step{Kind: StepHashes, Level: x.level, Nodes: x.frontier[:n:n]}
		return
	case phaseLeaves:
		if len(x.transfers) > 0 {
			x.cur = x.transfers[0]
			return
		}
		if len(x.leaves) > 0 {
			n := min(len(x.leaves), x.opts.MaxLeaves)
			x.batch = x.leaves[:n:n]
			x.leaves = x.leaves[n:]
			x.cur = Step{Kind: StepLeafKeys, Nodes: x.batch}
			return
		}
		x.phase = phaseDone
	}
	x.cur = Step{Kind: StepDone}
}

func (x *Exchange) expect(k StepKind) error {
	if x.cur.Kind != k {
		return fmt.Errorf("%w: got %v reply, want %v", ErrProtocol, k, x.cur.Kind)
	}
	return nil
}

// OnHashes delivers the local and remote hashes of the current
// StepHashes, in its order.
func (x *Exchange) OnHashes(local, remote []uint64) error {
	if err := x.expect(StepHashes); err != nil {
		return err
	}
	nodes := x.cur.Nodes
	if len(local) != len(nodes) || len(remote) != len(nodes) {
		return fmt.Errorf("%w: %d nodes asked, %d local and %d remote hashes", ErrProtocol, len(nodes), len(local), len(remote))
	}
	x.res.NodesCompared += len(nodes)
	for i, n := range nodes {
		if local[i] == remote[i] {
			continue
		}
		if x.level > 0 {
			first, end := x.shape.Children(x.level, int(n))
			for c := first; c < end; c++ {
				x.children = append(x.children, uint32(c))
			}
			continue
		}
		x.res.LeavesDiffering++
		if x.opts.Settled != nil && x.opts.Settled(int(n), local[i], remote[i]) {
			x.res.LeavesSettled++
			continue
		}
		x.leaves = append(x.leaves, n)
	}
	x.frontier = x.frontier[len(nodes):]
	if len(x.frontier) == 0 {
		if x.level == 0 || len(x.children) == 0 {
			x.phase = phaseLeaves
		} else {
			x.level--
			x.frontier, x.children = x.children, nil
		}
	}
	x.advance()
	return nil
}

// OnLeafKeys delivers, for each leaf of the current StepLeafKeys, the
// local and remote records. Each list must be sorted by key hash (the
// store's scan order); ties are sorted here.
func (x *Exchange) OnLeafKeys(local, remote [][]Entry) error {
	if err := x.expect(StepLeafKeys); err != nil {
		return err
	}
	if len(local) != len(x.batch) || len(remote) != len(x.batch) {
		return fmt.Errorf("%w: %d leaves asked, %d local and %d remote lists", ErrProtocol, len(x.batch), len(local), len(remote))
	}
	x.plans = map[int]*leafPlan{}
	var fetch, push []uint64
	for i, leaf := range x.batch {
		f, p, plan := diffLeaf(local[i], remote[i])
		if !plan.hasDifference {
			continue
		}
		plan.diff.Leaf = int(leaf)
		x.plans[int(leaf)] = &plan
		x.res.KeysDiffering += plan.keys
		fetch = append(fetch, f...)
		push = append(push, p...)
	}
	for len(fetch) > 0 || len(push) > 0 {
		nf, np := min(len(fetch), x.opts.MaxKeys), min(len(push), x.opts.MaxKeys)
		x.transfers = append(x.transfers, Step{Kind: StepTransfer, Fetch: fetch[:nf:nf], Push: push[:np:np]})
		fetch, push = fetch[nf:], push[np:]
	}
	if len(x.transfers) == 0 {
		x.finishBatch()
	}
	x.advance()
	return nil
}

// OnTransfer completes the current StepTransfer; moved lists the key
// hashes whose merge changed the local or the remote record.
func (x *Exchange) OnTransfer(moved []uint64) error {
	if err := x.expect(StepTransfer); err != nil {
		return err
	}
	seen := map[uint64]bool{}
	for _, h := range moved {
		if seen[h] {
			continue
		}
		seen[h] = true
		if p := x.plans[x.shape.Leaf(h)]; p != nil {
			p.moved++
			x.res.KeysMoved++
		}
	}
	x.transfers = x.transfers[1:]
	if len(x.transfers) == 0 {
		x.finishBatch()
	}
	x.advance()
	return nil
}

func (x *Exchange) finishBatch() {
	var stuck []LeafDiff
	for _, p := range x.plans {
		if p.moved == 0 {
			stuck = append(stuck, p.diff)
		}
	}
	slices.SortFunc(stuck, func(a, b LeafDiff) int { return cmp.Compare(a.Leaf, b.Leaf) })
	x.res.Stuck = append(x.res.Stuck, stuck...)
	x.plans, x.batch = nil, nil
}

func cmpEntry(a, b Entry) int {
	if c := cmp.Compare(a.Hash, b.Hash); c != 0 {
		return c
	}
	return cmp.Compare(a.KeyHash, b.KeyHash)
}

// diffLeaf compares one leaf's records and plans the transfers: a key
// present on both sides with different records is pulled and pushed (each
// side then merges the other's version), a key on one side only is sent to
// the other. That includes a tombstone past its grace period: a replica
// that lacks the key may never have had it (it lost its disk, say), and
// absence is no agreement to reap. A replica that reaped the key remembers
// it (store.Store.Reap), so the copy changes nothing there. Keys are
// compared by their hash; records sharing a key hash travel together.
func diffLeaf(a, b []Entry) (fetch, push []uint64, plan leafPlan) {
	if !slices.IsSortedFunc(a, cmpEntry) {
		a = slices.Clone(a)
		slices.SortFunc(a, cmpEntry)
	}
	if !slices.IsSortedFunc(b, cmpEntry) {
		b = slices.Clone(b)
		slices.SortFunc(b, cmpEntry)
	}
	for _, e := range a {
		plan.diff.Local ^= e.KeyHash
	}
	for _, e := range b {
		plan.diff.Remote ^= e.KeyHash
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var h uint64
		switch {
		case j == len(b) || (i < len(a) && a[i].Hash <= b[j].Hash):
			h = a[i].Hash
		default:
			h = b[j].Hash
		}
		ei := i
		for ei < len(a) && a[ei].Hash == h {
			ei++
		}
		ej := j
		for ej < len(b) && b[ej].Hash == h {
			ej++
		}
		ga, gb := a[i:ei], b[j:ej]
		i, j = ei, ej
		if slices.EqualFunc(ga, gb, func(x, y Entry) bool { return x.KeyHash == y.KeyHash }) {
			continue
		}
		plan.hasDifference = true
		plan.keys++
		switch {
		case len(ga) > 0 && len(gb) > 0:
			fetch = append(fetch, h)
			push = append(push, h)
		case len(ga) > 0:
			push = append(push, h)
		default:
			fetch = append(fetch, h)
		}
	}
	return fetch, push, plan
}
