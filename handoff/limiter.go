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

// limiter rate-limits on one or more token buckets at once, on the
// injected clock: hint replay charges a hint and its bytes, transfers
// charge received bytes.
type limiter struct {
	clk clock.Clock
	// onWait, when set (tests), is called with the deadline after the
	// wait timer is armed and before blocking on it.
	onWait func(deadline time.Time)

	mu      sync.Mutex // guards the buckets
	buckets []bucket
}

func newLimiter(clk clock.Clock, buckets ...bucket) *limiter {
	return &limiter{clk: clk, buckets: buckets}
}

// newHintLimiter returns replay's limiter: one bucket of hints, one of
// bytes; wait(ctx, 1, size) charges a hint.
func newHintLimiter(clk clock.Clock, cfg HintConfig) *limiter {
	now := clk.Now()
	return newLimiter(clk,
		newBucket(cfg.HintsPerSecond, cfg.hintBurst(), now),
		newBucket(cfg.BytesPerSecond, cfg.byteBurst(), now))
}

// wait takes n[i] tokens from bucket i and blocks until all of them may be
// used, or ctx is done; a cancelled wait gives its tokens back.
func (l *limiter) wait(ctx context.Context, n ...float64) error {
	l.mu.Lock()
	now := l.clk.Now()
	var d time.Duration
	for i := range l.buckets {
		d = max(d, l.buckets[i].reserve(now, n[i]))
	}
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
		for i := range l.buckets {
			l.buckets[i].refund(n[i])
		}
		l.mu.Unlock()
		return ctx.Err()
	}
}
