package antientropy

import (
	"context"
	"sync"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
)

// byteBucket is a token bucket over bytes. Calls are charged after the
// fact (a reply's size is known only once it arrived), so the bucket may go
// into debt; wait blocks until it is out of debt. Over any long window the
// bytes moved stay within rate × window + burst + one call.
type byteBucket struct {
	clk   clock.Clock
	rate  float64 // bytes per second; 0 = unlimited
	burst float64

	mu     sync.Mutex // guards the fields below
	tokens float64
	last   time.Time
	waited time.Duration // total time callers were held back
}

func newByteBucket(clk clock.Clock, rate, burst int64) *byteBucket {
	return &byteBucket{clk: clk, rate: float64(rate), burst: float64(burst), tokens: float64(burst), last: clk.Now()}
}

func (b *byteBucket) refillLocked() {
	now := b.clk.Now()
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
	}
	b.last = now
}

// charge takes n bytes from the bucket.
func (b *byteBucket) charge(n int) {
	if b.rate == 0 {
		return
	}
	b.mu.Lock()
	b.refillLocked()
	b.tokens -= float64(n)
	b.mu.Unlock()
}

// wait blocks until the bucket is not in debt, or ctx ends.
func (b *byteBucket) wait(ctx context.Context) error {
	if b.rate == 0 {
		return ctx.Err()
	}
	for {
		b.mu.Lock()
		b.refillLocked()
		if b.tokens >= 0 {
			b.mu.Unlock()
			return ctx.Err()
		}
		d := time.Duration(-b.tokens / b.rate * float64(time.Second))
		d = max(d, time.Millisecond)
		b.waited += d
		b.mu.Unlock()
		t := b.clk.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C():
		}
	}
}

func (b *byteBucket) waitedTotal() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waited
}
