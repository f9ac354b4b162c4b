package ring

import "sync/atomic"

// Holder publishes the current Ring to concurrent readers. The owner of the
// membership builds a new Ring on every change and Stores it; readers Load
// once per request and use that value throughout, so a request never sees a
// mix of two layouts. The zero value holds nil and is ready to use.
type Holder struct {
	p atomic.Pointer[Ring]
}

// NewHolder returns a Holder holding r.
func NewHolder(r *Ring) *Holder {
	h := &Holder{}
	h.p.Store(r)
	return h
}

// Load returns the current ring, or nil if none was stored.
func (h *Holder) Load() *Ring { return h.p.Load() }

// Store publishes r.
func (h *Holder) Store(r *Ring) { h.p.Store(r) }

// CompareAndSwap publishes next only if the current ring is old, and reports
// whether it did. It lets concurrent updaters detect a lost race.
func (h *Holder) CompareAndSwap(old, next *Ring) bool {
	return h.p.CompareAndSwap(old, next)
}
