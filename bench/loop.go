package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
)

// loopSpec says how many operations to run, for how long and how fast.
type loopSpec struct {
	clock    clock.Clock
	threads  int
	ops      int64         // stop after this many; 0 = no limit
	duration time.Duration // start nothing after start+duration; 0 = no limit
	target   float64       // open-loop ops/s; 0 = closed loop
}

// stepFunc runs one operation and names it.
type stepFunc func(ctx context.Context) (op string, err error)

// schedule hands out operation slots. In an open loop slot i is due at
// start + i/target, whoever runs it and whenever earlier slots end; in a
// closed loop a slot is due when a thread takes it.
type schedule struct {
	spec  loopSpec
	start time.Time
	next  atomic.Int64
}

// take returns the next slot's intended start, or ok=false when the limits
// are reached.
func (s *schedule) take() (intended time.Time, ok bool) {
	i := s.next.Add(1) - 1
	if s.spec.ops > 0 && i >= s.spec.ops {
		return time.Time{}, false
	}
	if s.spec.target > 0 {
		intended = s.start.Add(time.Duration(float64(i) * float64(time.Second) / s.spec.target))
	} else {
		intended = s.spec.clock.Now()
	}
	if s.spec.duration > 0 {
		// Neither a slot due after the deadline nor, in an open loop
		// that fell behind, one still due before it once the deadline
		// has passed: the phase's wall time stays capped.
		end := s.start.Add(s.spec.duration)
		if !intended.Before(end) || !s.spec.clock.Now().Before(end) {
			return time.Time{}, false
		}
	}
	return intended, true
}

// runLoop runs operations on spec.threads workers from start until the
// limits are reached or ctx ends, and records each in rec. newWorker runs
// once in each worker's goroutine and returns its step and a cleanup. It
// returns when every worker has returned.
func runLoop(ctx context.Context, spec loopSpec, start time.Time, rec *recorder,
	newWorker func(ctx context.Context, id int) (stepFunc, func())) {
	sched := &schedule{spec: spec, start: start}
	var wg sync.WaitGroup
	for id := range spec.threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			step, cleanup := newWorker(ctx, id)
			defer cleanup()
			for ctx.Err() == nil {
				intended, ok := sched.take()
				if !ok {
					return
				}
				if !sleepUntil(ctx, spec.clock, intended) {
					return
				}
				started := spec.clock.Now()
				op, err := step(ctx)
				if err != nil && ctx.Err() != nil {
					return // cut short by the interrupt: not the system's error
				}
				rec.record(op, intended, started, spec.clock.Now(), err)
			}
		}()
	}
	wg.Wait()
}

// sleepUntil waits for the clock to reach t; false if ctx ended first.
func sleepUntil(ctx context.Context, c clock.Clock, t time.Time) bool {
	d := t.Sub(c.Now())
	if d <= 0 {
		return true
	}
	timer := c.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C():
		return true
	case <-ctx.Done():
		return false
	}
}
