package version

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrImplausible means a context or set names a counter, or a write time,
// further ahead than any node could have issued by now: it was forged (or
// a clock is years off). Accepting one would let it freeze the key: every
// later write must issue a counter above it, and past MaxCounter none can.
var ErrImplausible = errors.New("version: implausible version")

// Slack is how far past the receiving node's clock, in microseconds, a
// counter may be and still be accepted: 2^48 µs, almost nine years.
//
// A node's counters start at its clock in microseconds when its store is
// first opened and grow by one per issued dot, plus one reservation of
// 2^20 per restart (store.Store.NextCounter). So a counter of node X is at
// most X's first-open time + the dots X issued + 2^20 × its restarts. Its
// first-open time was at most X's clock now, which is at most the
// receiver's clock + their skew. The counter passes the receiver's clock
// by more than Slack only if X sustained more than a million dots a
// second for years on end, restarted 2^28 times, or its clock ran nine
// years ahead of the receiver's. Nothing real comes near, and the bound
// stays 2^11 times below MaxCounter (see CounterBound), so no accepted
// context can bring a key near exhaustion.
const Slack uint64 = 1 << 48

// maxCounterBound caps CounterBound whatever the clock says: the counters
// above it are left for the writes that follow a plausible context.
const maxCounterBound = MaxCounter / 2

// writeTimeSlack is Slack for write times, in nanoseconds. A write time is
// a hybrid logical clock reading (clock.HLC): the issuer's clock, raised
// to the latest write time it has seen, so a real one is never further
// ahead of the receiver than the fastest clock in the cluster.
const writeTimeSlack = int64(Slack) * 1000

// CounterBound returns the highest counter a node may plausibly have
// issued when the receiver's clock reads now: now in microseconds plus
// Slack, never above MaxCounter/2.
func CounterBound(now time.Time) uint64 {
	us := uint64(max(now.UnixMicro(), 0))
	return min(us, maxCounterBound-Slack) + Slack
}

// WriteTimeBound returns the latest write time, in Unix nanoseconds, a
// node may plausibly have stamped when the receiver's clock reads now. It
// leaves room below math.MaxInt64, so a clock raised to it never wraps.
func WriteTimeBound(now time.Time) int64 {
	ns := max(now.UnixNano(), 0)
	return min(ns, math.MaxInt64/2) + writeTimeSlack
}

// Plausible returns an error wrapping ErrImplausible when the context
// names a counter above CounterBound(now). Contexts from clients and
// other nodes are checked with it before anything is stored.
func (c Context) Plausible(now time.Time) error {
	bound := CounterBound(now)
	for n, v := range c.VV {
		if v > bound {
			return implausible(Dot{Node: n, Counter: v}, bound)
		}
	}
	for _, d := range c.Cloud {
		if d.Counter > bound {
			return implausible(d, bound)
		}
	}
	return nil
}

// Plausible returns an error wrapping ErrImplausible when the set's
// context or one of its siblings names a counter above CounterBound(now),
// or a sibling's write time is past WriteTimeBound(now): a clock raised to
// it (clock.HLC) would stamp every later write after it.
func (s Set) Plausible(now time.Time) error {
	if err := s.Context.Plausible(now); err != nil {
		return err
	}
	bound, tbound := CounterBound(now), WriteTimeBound(now)
	for _, sib := range s.Siblings {
		if sib.Dot.Counter > bound {
			return implausible(sib.Dot, bound)
		}
		if sib.WriteTime > tbound {
			return fmt.Errorf("%w: %s written at %d ns, past %d", ErrImplausible, sib.Dot, sib.WriteTime, tbound)
		}
	}
	return nil
}

func implausible(d Dot, bound uint64) error {
	return fmt.Errorf("%w: counter %d of %s is past %d, more than any node could have issued by now", ErrImplausible, d.Counter, d.Node, bound)
}
