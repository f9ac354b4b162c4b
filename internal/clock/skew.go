package clock

import (
	"sync/atomic"
	"time"
)

// Skewed is a Clock whose readings are another clock's plus an offset that
// can be stepped at any time, forward or back, as an operator or NTP steps
// a machine's clock. Timers, tickers and Since measure durations on the
// underlying clock, as the monotonic clock does on a real machine: a step
// changes what Now says, not how long a timer takes. It is safe for
// concurrent use.
type Skewed struct {
	base   Clock
	offset atomic.Int64 // nanoseconds added to base.Now()
}

// NewSkewed returns a clock reading base plus offset 0.
func NewSkewed(base Clock) *Skewed { return &Skewed{base: base} }

// Step moves the clock's readings by d (negative: back).
func (s *Skewed) Step(d time.Duration) { s.offset.Add(int64(d)) }

// Offset returns how far the readings are from the underlying clock.
func (s *Skewed) Offset() time.Duration { return time.Duration(s.offset.Load()) }

// Now implements Clock.
func (s *Skewed) Now() time.Time { return s.base.Now().Add(s.Offset()) }

// Since implements Clock: Now().Sub(t), so a step between t and now shows
// in it.
func (s *Skewed) Since(t time.Time) time.Duration { return s.Now().Sub(t) }

// NewTimer implements Clock.
func (s *Skewed) NewTimer(d time.Duration) Timer { return s.base.NewTimer(d) }

// NewTicker implements Clock.
func (s *Skewed) NewTicker(d time.Duration) Ticker { return s.base.NewTicker(d) }

// AfterFunc implements Clock.
func (s *Skewed) AfterFunc(d time.Duration, f func()) Timer { return s.base.AfterFunc(d, f) }
