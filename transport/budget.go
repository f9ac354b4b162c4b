package transport

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// largeCeiling is how much of a byte budget of limit frames over
// SmallFrameSize may use together: all but an eighth.
func largeCeiling(limit int64) int64 { return limit - limit/8 }

// byteBudget is the shared budget of inbound frame bytes in flight
// (TCPConfig.MaxInflightBytes). Taking and returning bytes is an atomic
// compare-and-swap; only a reader that must wait takes the mutex. It is
// safe for concurrent use.
type byteBudget struct {
	limit   int64        // every frame together
	large   int64        // frames over SmallFrameSize together
	used    atomic.Int64 // bytes taken, all frames
	usedBig atomic.Int64 // bytes taken by frames over SmallFrameSize
	waiters atomic.Int32 // readers in acquire's slow path

	mu   sync.Mutex    // guards wake
	wake chan struct{} // closed (and cleared) by release while waiters > 0
}

func newByteBudget(limit int64) *byteBudget {
	return &byteBudget{limit: limit, large: largeCeiling(limit)}
}

// tryAcquire takes n bytes if they fit.
func (b *byteBudget) tryAcquire(n int64) bool {
	big := n > SmallFrameSize
	if big && !reserve(&b.usedBig, n, b.large) {
		return false
	}
	if !reserve(&b.used, n, b.limit) {
		if big {
			b.usedBig.Add(-n)
		}
		return false
	}
	return true
}

// reserve adds n to v unless that takes it past limit.
func reserve(v *atomic.Int64, n, limit int64) bool {
	for {
		cur := v.Load()
		if cur+n > limit {
			return false
		}
		if v.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// acquire takes n bytes, waiting until they fit, deadline passes
// (context.DeadlineExceeded) or ctx ends. It adds one to waits when it
// starts waiting. n must fit the budget at all (Validate sees to it).
func (b *byteBudget) acquire(ctx context.Context, n int64, deadline time.Time, waits *atomic.Uint64) error {
	if b.tryAcquire(n) {
		return nil
	}
	waits.Add(1)
	b.waiters.Add(1)
	defer b.waiters.Add(-1)
	var timer *time.Timer
	for {
		b.mu.Lock()
		if b.tryAcquire(n) { // under mu: a release now wakes the channel made below
			b.mu.Unlock()
			stopTimer(timer)
			return nil
		}
		if b.wake == nil {
			b.wake = make(chan struct{})
		}
		wake := b.wake
		b.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(time.Until(deadline))
		}
		select {
		case <-wake:
		case <-timer.C:
			return context.DeadlineExceeded
		case <-ctx.Done():
			stopTimer(timer)
			return ctx.Err()
		}
	}
}

// release returns n bytes and wakes the waiting readers, if any.
func (b *byteBudget) release(n int64) {
	if n > SmallFrameSize {
		b.usedBig.Add(-n)
	}
	b.used.Add(-n)
	if b.waiters.Load() == 0 {
		return
	}
	b.mu.Lock()
	if b.wake != nil {
		close(b.wake)
		b.wake = nil
	}
	b.mu.Unlock()
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

// handlerSlots caps the handlers running at once (TCPConfig.MaxHandlers).
// It is safe for concurrent use.
type handlerSlots chan struct{}

// acquire takes a slot, waiting while all are taken until ctx ends. It
// adds one to waits when it starts waiting.
func (s handlerSlots) acquire(ctx context.Context, waits *atomic.Uint64) error {
	select {
	case s <- struct{}{}:
		return nil
	default:
	}
	waits.Add(1)
	select {
	case s <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s handlerSlots) release() { <-s }
