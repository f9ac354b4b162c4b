package version

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
)

// Errors returned by Update.
var (
	// ErrTooManySiblings means the write would leave more live siblings than
	// the caller allows; the client must resolve them first.
	ErrTooManySiblings = errors.New("version: too many siblings")
	// ErrTooLarge means the write would leave siblings whose values add
	// up to more bytes than the caller allows; the client must resolve
	// them first.
	ErrTooLarge = errors.New("version: siblings too large")
	// ErrNoNode means a write was applied without naming the issuing node.
	ErrNoNode = errors.New("version: write without a node")
	// ErrCounterExhausted means the issuing node's counter for the key
	// would pass MaxCounter (only a forged context can bring it there).
	ErrCounterExhausted = errors.New("version: counter exhausted")
)

// MaxCounter bounds dot counters. Real counters stay far below it: a
// node's counters start at the clock in microseconds when its store is
// first opened (Write.CounterFloor) and grow by one per write. A context
// naming a larger counter is malformed, and no write issues one, so a
// counter never wraps around to zero (which every context would count as
// seen, dropping the write). Contexts and sets from the network are held
// to the far lower CounterBound (Context.Plausible), so none can bring a
// key's counters near it.
const MaxCounter uint64 = 1 << 62

// Sibling is one stored version of a key's value.
type Sibling struct {
	Dot         Dot    `msgpack:"d"`
	Value       []byte `msgpack:"v,omitempty"`
	ContentType string `msgpack:"t,omitempty"`
	// Deleted marks a tombstone: a delete recorded as a causal version.
	Deleted bool `msgpack:"x,omitempty"`
	// WriteTime is when the issuing replica applied the write, in Unix
	// nanoseconds. It orders last-write-wins buckets and tombstone reaping.
	WriteTime int64 `msgpack:"w"`
}

// Set is a key's state: its siblings, sorted by dot, and the causal context
// covering them and everything they superseded. The zero Set is an absent
// key.
type Set struct {
	Siblings []Sibling `msgpack:"s,omitempty"`
	Context  Context   `msgpack:"c"`
}

// Write is one client write as a replica applies it.
type Write struct {
	// Node is the replica issuing the write's dot.
	Node string
	// Context is what the client had seen: the X-Context of its read.
	// Exactly the siblings it covers are superseded.
	Context Context
	// Value, ContentType and Deleted describe the new sibling.
	Value       []byte
	ContentType string
	Deleted     bool
	// WriteTime is the replica's clock, in Unix nanoseconds.
	WriteTime int64
	// CounterFloor is the least counter the new dot may take. A replica
	// passes a node-wide counter it never hands out twice
	// (store.Store.NextCounter), so the dot is new even when the key's
	// history was reaped here while a dot of it lives on elsewhere (on a
	// replica that did not reap yet, in a hint, in a message in flight),
	// and whatever the clock does. Zero: one past what the contexts hold.
	CounterFloor uint64
	// LWW makes the write replace every sibling: last write wins.
	LWW bool
	// Detached says the issuer does not hold its own earlier versions of
	// the key (a fallback issuing on a hint it keeps for another node).
	// The new dot is then recorded on its own, in the context's cloud:
	// raising the issuer's vector entry would claim every earlier dot of
	// the issuer for this key as seen, and drop them wherever this set
	// meets them.
	Detached bool
	// MaxSiblings caps the live siblings the write may leave; zero means
	// no cap. Tombstones count, since they are still versions.
	MaxSiblings int
	// MaxBytes caps the bytes of the values (and content types) of the
	// siblings the write leaves; zero means no cap. Concurrent blind
	// writes of large values would otherwise build a record larger than
	// any message can carry.
	MaxBytes int
}

// IsEmpty reports whether the set holds nothing: the key is absent.
func (s Set) IsEmpty() bool { return len(s.Siblings) == 0 && s.Context.IsEmpty() }

// Clone returns a deep copy sharing no slices with s.
func (s Set) Clone() Set {
	out := Set{Context: s.Context.Clone()}
	if len(s.Siblings) > 0 {
		out.Siblings = make([]Sibling, len(s.Siblings))
		for i, sib := range s.Siblings {
			sib.Value = bytes.Clone(sib.Value)
			out.Siblings[i] = sib
		}
	}
	return out
}

// Live returns the siblings that are not tombstones.
func (s Set) Live() []Sibling {
	var out []Sibling
	for _, sib := range s.Siblings {
		if !sib.Deleted {
			out = append(out, sib)
		}
	}
	return out
}

// Deleted reports whether the set has versions and all of them are
// tombstones.
func (s Set) Deleted() bool {
	if len(s.Siblings) == 0 {
		return false
	}
	for _, sib := range s.Siblings {
		if !sib.Deleted {
			return false
		}
	}
	return true
}

// Dots returns the dots of the siblings, in order.
func (s Set) Dots() []Dot {
	out := make([]Dot, len(s.Siblings))
	for i, sib := range s.Siblings {
		out[i] = sib.Dot
	}
	return out
}

// Has reports whether a sibling with dot d is present.
func (s Set) Has(d Dot) bool {
	_, ok := slices.BinarySearchFunc(s.Siblings, d, cmpSiblingDot)
	return ok
}

func cmpSiblingDot(s Sibling, d Dot) int {
	switch {
	case s.Dot.Less(d):
		return -1
	case d.Less(s.Dot):
		return 1
	}
	return 0
}

// Update applies a client write on the replica that issues its dot. It
// drops the siblings the write's context covers, keeps all others, adds the
// new sibling, and returns the new dot. The set is changed only when Update
// succeeds.
func (s *Set) Update(w Write) (Dot, error) {
	if w.Node == "" {
		return Dot{}, ErrNoNode
	}
	counter := max(s.Context.Max(w.Node)+1, w.Context.Max(w.Node)+1, w.CounterFloor)
	if counter > MaxCounter || counter == 0 {
		return Dot{}, fmt.Errorf("%w: %s would issue counter %d", ErrCounterExhausted, w.Node, counter)
	}
	dot := Dot{Node: w.Node, Counter: counter}
	kept := make([]Sibling, 0, len(s.Siblings)+1)
	if !w.LWW {
		for _, sib := range s.Siblings {
			if !w.Context.Covers(sib.Dot) {
				kept = append(kept, sib)
			}
		}
	}
	kept = append(kept, Sibling{
		Dot: dot, Value: w.Value, ContentType: w.ContentType,
		Deleted: w.Deleted, WriteTime: w.WriteTime,
	})
	if w.MaxSiblings > 0 && len(kept) > w.MaxSiblings {
		return Dot{}, fmt.Errorf("%w: %d would remain, at most %d allowed", ErrTooManySiblings, len(kept), w.MaxSiblings)
	}
	if w.MaxBytes > 0 {
		size := 0
		for _, sib := range kept {
			size += len(sib.Value) + len(sib.ContentType)
		}
		if size > w.MaxBytes {
			return Dot{}, fmt.Errorf("%w: %d siblings of %d bytes would remain, at most %d bytes allowed", ErrTooLarge, len(kept), size, w.MaxBytes)
		}
	}
	ctx := s.Context.Clone()
	ctx.Merge(w.Context)
	if w.Detached {
		ctx.Add(dot)
	} else {
		// The issuing replica has seen every dot it ever issued for this
		// key, so its vector entry can jump straight to the new counter.
		if ctx.VV == nil {
			ctx.VV = make(map[string]uint64)
		}
		ctx.VV[w.Node] = counter
		ctx.compact()
	}
	slices.SortFunc(kept, func(a, b Sibling) int { return cmpSiblingDot(a, b.Dot) })
	s.Siblings, s.Context = kept, ctx
	return dot, nil
}

// WriteContext is the context a client gets back after a write: what it had
// seen plus its own new dot. It does not cover concurrent siblings the
// client never read, so writing again with it cannot drop them.
func WriteContext(seen Context, dot Dot) Context {
	c := seen.Clone()
	c.Add(dot)
	return c
}

// Sync joins two replicas' sets of the same key. A sibling of either side
// survives unless the other side has seen its dot and no longer holds it.
// The result shares no memory with a or b.
func Sync(a, b Set) Set {
	out := Set{Context: a.Context.Clone()}
	out.Context.Merge(b.Context)
	i, j := 0, 0
	for i < len(a.Siblings) || j < len(b.Siblings) {
		switch {
		case j == len(b.Siblings) || (i < len(a.Siblings) && a.Siblings[i].Dot.Less(b.Siblings[j].Dot)):
			if !b.Context.Covers(a.Siblings[i].Dot) {
				out.Siblings = append(out.Siblings, cloneSibling(a.Siblings[i]))
			}
			i++
		case i == len(a.Siblings) || b.Siblings[j].Dot.Less(a.Siblings[i].Dot):
			if !a.Context.Covers(b.Siblings[j].Dot) {
				out.Siblings = append(out.Siblings, cloneSibling(b.Siblings[j]))
			}
			j++
		default: // same dot on both sides: the same write
			out.Siblings = append(out.Siblings, cloneSibling(a.Siblings[i]))
			i++
			j++
		}
	}
	return out
}

// ResolveLWW keeps only the sibling with the latest write time (ties broken
// by dot), as a last-write-wins bucket does after a sync.
func (s *Set) ResolveLWW() {
	if len(s.Siblings) <= 1 {
		return
	}
	best := s.Siblings[0]
	for _, sib := range s.Siblings[1:] {
		if sib.WriteTime > best.WriteTime || (sib.WriteTime == best.WriteTime && best.Dot.Less(sib.Dot)) {
			best = sib
		}
	}
	s.Siblings = []Sibling{best}
}

// Equal reports whether two sets hold the same siblings and contexts.
func (s Set) Equal(o Set) bool {
	if len(s.Siblings) != len(o.Siblings) || !s.Context.Equal(o.Context) {
		return false
	}
	for i := range s.Siblings {
		a, b := s.Siblings[i], o.Siblings[i]
		if a.Dot != b.Dot || a.Deleted != b.Deleted || a.ContentType != b.ContentType ||
			a.WriteTime != b.WriteTime || !bytes.Equal(a.Value, b.Value) {
			return false
		}
	}
	return true
}

func cloneSibling(s Sibling) Sibling {
	s.Value = bytes.Clone(s.Value)
	return s
}
