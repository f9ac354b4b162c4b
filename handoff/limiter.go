package handoff

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
)

// bucket is one token bucket, kept as the time its debt is paid off
// (the generic cell rate algorithm): tat is when the bucket would be full
// again, and a reservation moves tat forward by its tokens' worth of time.
// A reservation larger than what is there waits until the tokens before it
// and its own, less the burst, are paid for, so reservations are served in
// the order they are made and one larger than the burst still goes
// through. Times are integers, so grants never go backwards.
type bucket struct {
	rate  float64       // tokens per second; 0 = unlimited
	burst float64       // the most tokens the bucket holds
	tau   time.Duration // burst's worth of time
	tat   time.Time     // when the bucket is full again
}

func newBucket(rate, burst float64, now time.Time) bucket {
	b := bucket{rate: rate, burst: burst, tat: now}
	if rate > 0 {
		b.tau = bucketDuration(burst/rate, false)
	}
	return b
}

// bucketDuration converts seconds to a duration, rounding up or down and
// saturating at a century.
func bucketDuration(sec float64, up bool) time.Duration {
	const limit = 100 * 365 * 24 * time.Hour
	ns := sec * float64(time.Second)
	if up {
		ns = math.Ceil(ns)
	}
	if ns >= float64(limit) {
		return limit
	}
	return time.Duration(ns)
}

// reserve takes n tokens at now and returns how long the caller must wait
// before using them.
func (b *bucket) reserve(now time.Time, n float64) time.Duration {
	if b.rate <= 0 {
		return 0
	}
	if now.After(b.tat) {
		b.tat = now
	}
	b.tat = b.tat.Add(bucketDuration(n/b.rate, true))
	return max(0, b.tat.Sub(now)-b.tau)
}

// refund returns n tokens taken by a reservation that was not used.
func (b *bucket) refund(n float64) {
	if b.rate <= 0 {
		return
	}
	b.tat = b.tat.Add(-bucketDuration(n/b.rate, true))
}

// hintLimiter rate-limits replay on two buckets, hints and bytes, on the
// injected clock.
type hintLimiter struct {
	clk clock.Clock
	// onWait, when set (tests), is called with the deadline after the
	// wait timer is armed and before blocking on it.
	onWait func(deadline time.Time)

	mu    sync.Mutex // guards the buckets
	hints bucket
	bytes bucket
}

func newHintLimiter(clk clock.Clock, cfg HintConfig) *hintLimiter {
	now := clk.Now()
	return &hintLimiter{
		clk:   clk,
		hints: newBucket(cfg.HintsPerSecond, cfg.hintBurst(), now),
		bytes: newBucket(cfg.BytesPerSecond, cfg.byteBurst(), now),
	}
}

// wait blocks until one hint of size bytes may be sent, or ctx is done.
func (l *hintLimiter) wait(ctx context.Context, size int64) error {
	l.mu.Lock()
	now := l.clk.Now()
	d := max(l.hints.reserve(now, 1), l.bytes.reserve(now, float64(size)))
	if d <= 0 {
		l.mu.Unlock()
		return ctx.Err()
	}
	// The timer is armed under mu, at the same instant as now, so a test
	// that moves its fake clock under mu sees deadline exactly.
	t := l.clk.NewTimer(d)
	l.mu.Unlock()
	defer t.Stop()
	if l.onWait != nil {
		l.onWait(now.Add(d))
	}
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		l.hints.refund(1)
		l.bytes.refund(float64(size))
		l.mu.Unlock()
		return ctx.Err()
	}
}
