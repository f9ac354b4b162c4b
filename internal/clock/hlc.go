package clock

import "sync/atomic"

// HLC is a hybrid logical clock kept in one int64 of Unix nanoseconds: the
// physical time, raised to the largest timestamp the node has seen, with
// the logical counter folded into the low digits (a reading that would not
// move past the last one takes the last plus one nanosecond). Its readings
// only grow, whatever the wall clock does, and a node that has seen a
// timestamp (Observe) stamps every later event after it: a write stamped on
// a node that had seen another write always orders after it, even when its
// wall clock runs behind. It is safe for concurrent use.
type HLC struct {
	clk  Clock
	last atomic.Int64
}

// NewHLC returns a hybrid logical clock over clk's physical time.
func NewHLC(clk Clock) *HLC { return &HLC{clk: clk} }

// Now returns a timestamp after every one Now returned or Observe saw, and
// no earlier than the physical time.
func (h *HLC) Now() int64 {
	for {
		last := h.last.Load()
		next := max(h.clk.Now().UnixNano(), last+1)
		if h.last.CompareAndSwap(last, next) {
			return next
		}
	}
}

// Observe raises the clock to ts: every later Now is after it.
func (h *HLC) Observe(ts int64) {
	for {
		last := h.last.Load()
		if ts <= last || h.last.CompareAndSwap(last, ts) {
			return
		}
	}
}
