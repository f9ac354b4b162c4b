package bench

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
)

type opTimes struct {
	op                       string
	intended, started, ended time.Time
}

// observed returns a recorder that keeps every operation's times.
func observed(start time.Time) (*recorder, func() []opTimes) {
	rec := newRecorder(start, time.Second)
	var mu sync.Mutex
	var got []opTimes
	rec.observe = func(op string, intended, started, ended time.Time, _ error) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, opTimes{op, intended, started, ended})
	}
	return rec, func() []opTimes {
		mu.Lock()
		defer mu.Unlock()
		return append([]opTimes(nil), got...)
	}
}

// fakeStep returns a step that takes d of fake time.
func fakeStep(fc *clock.Fake, d time.Duration) func(context.Context, int) (stepFunc, func()) {
	return func(context.Context, int) (stepFunc, func()) {
		return func(context.Context) (string, error) {
			fc.Advance(d)
			return "OP", nil
		}, func() {}
	}
}

// An open loop that falls behind keeps its schedule: each operation's
// latency runs from its slot on the schedule, so the backlog a slow server
// causes shows up in the latencies (no coordinated omission).
func TestOpenLoopLatencyFromIntendedStart(t *testing.T) {
	fc := clock.NewFake()
	start := fc.Now()
	rec, ops := observed(start)
	// Due every 1ms, served in 10ms by one thread.
	spec := loopSpec{clock: fc, threads: 1, ops: 20, target: 1000}
	runLoop(context.Background(), spec, start, rec, fakeStep(fc, 10*time.Millisecond))

	got := ops()
	if len(got) != 20 {
		t.Fatalf("%d ops, want 20", len(got))
	}
	for i, o := range got {
		wantIntended := start.Add(time.Duration(i) * time.Millisecond)
		wantStarted := start.Add(time.Duration(i) * 10 * time.Millisecond)
		if !o.intended.Equal(wantIntended) || !o.started.Equal(wantStarted) {
			t.Fatalf("op %d: intended %v started %v, want %v and %v", i,
				o.intended.Sub(start), o.started.Sub(start), wantIntended.Sub(start), wantStarted.Sub(start))
		}
		// Latency 9i+10 ms: the 10ms service time plus the backlog.
		if lat, want := o.ended.Sub(o.intended), time.Duration(9*i+10)*time.Millisecond; lat != want {
			t.Fatalf("op %d: latency %v, want %v", i, lat, want)
		}
	}
	// The recorder's histograms hold the corrected latencies, not the 10ms
	// service times.
	res := &Result{}
	rec.finish(fc.Now())
	rec.summarize(res, fc.Now().Sub(start))
	// HdrHistogram keeps three significant digits.
	if l := res.Total.Latency; !hdrNear(l.Max, 181_000) {
		t.Fatalf("max latency %dus, want 181000 within 0.1%% (op 19: 9*19+10 ms)", l.Max)
	}
	if s := res.Total.Service; !hdrNear(s.Max, 10_000) || !hdrNear(s.P50, 10_000) {
		t.Fatalf("service time %+v, want 10ms throughout", s)
	}
}

// A closed loop with the same slow server measures service time only.
func TestClosedLoopLatencyFromActualStart(t *testing.T) {
	fc := clock.NewFake()
	start := fc.Now()
	rec, ops := observed(start)
	runLoop(context.Background(), loopSpec{clock: fc, threads: 1, ops: 5}, start, rec, fakeStep(fc, 10*time.Millisecond))
	for i, o := range ops() {
		if !o.intended.Equal(o.started) || o.ended.Sub(o.started) != 10*time.Millisecond {
			t.Fatalf("op %d: %+v", i, o)
		}
	}
}

// driveClock advances fc whenever a worker waits on a timer, one step at a
// time, until done is closed. While an operation runs no timer is pending,
// so the clock only moves under the operations' own control.
func driveClock(fc *clock.Fake, step time.Duration, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		default:
		}
		if fc.Pending() > 0 {
			fc.Advance(step)
		} else {
			runtime.Gosched()
		}
	}
}

// An open loop ahead of schedule waits for each slot: operations start at
// their intended time and their latency is their service time.
func TestOpenLoopPacing(t *testing.T) {
	fc := clock.NewFake()
	start := fc.Now()
	rec, ops := observed(start)
	spec := loopSpec{clock: fc, threads: 1, ops: 6, target: 100} // every 10ms
	done := make(chan struct{})
	go func() {
		defer close(done)
		runLoop(context.Background(), spec, start, rec, fakeStep(fc, 2*time.Millisecond))
	}()
	driveClock(fc, time.Millisecond, done)
	got := ops()
	if len(got) != 6 {
		t.Fatalf("%d ops, want 6", len(got))
	}
	for i, o := range got {
		want := start.Add(time.Duration(i) * 10 * time.Millisecond)
		if !o.intended.Equal(want) || !o.started.Equal(want) || o.ended.Sub(o.intended) != 2*time.Millisecond {
			t.Fatalf("op %d: intended %v started %v ended %v", i, o.intended.Sub(start), o.started.Sub(start), o.ended.Sub(start))
		}
	}
}

func TestLoopDurationLimit(t *testing.T) {
	t.Run("closed", func(t *testing.T) {
		fc := clock.NewFake()
		start := fc.Now()
		rec, ops := observed(start)
		spec := loopSpec{clock: fc, threads: 1, duration: time.Second}
		runLoop(context.Background(), spec, start, rec, fakeStep(fc, 100*time.Millisecond))
		if n := len(ops()); n != 10 {
			t.Fatalf("%d ops in 1s of 100ms ops, want 10", n)
		}
	})
	t.Run("open", func(t *testing.T) {
		fc := clock.NewFake()
		start := fc.Now()
		rec, ops := observed(start)
		// 50 ops/s for 1s is 50 slots, the last due at 980ms.
		spec := loopSpec{clock: fc, threads: 2, duration: time.Second, target: 50}
		done := make(chan struct{})
		go func() {
			defer close(done)
			runLoop(context.Background(), spec, start, rec, fakeStep(fc, 0))
		}()
		driveClock(fc, time.Millisecond, done)
		got := ops()
		if len(got) != 50 {
			t.Fatalf("%d ops, want 50", len(got))
		}
		for _, o := range got {
			if !o.intended.Before(start.Add(time.Second)) {
				t.Fatalf("op intended at %v, past the duration", o.intended.Sub(start))
			}
		}
	})
}

// An open loop that cannot keep up still stops at its duration: slots due
// before the deadline but not yet started when it passes are not run, so
// the phase's wall time stays capped (YCSB's maxexecutiontime).
func TestOpenLoopBehindStopsAtDuration(t *testing.T) {
	fc := clock.NewFake()
	start := fc.Now()
	rec, ops := observed(start)
	// 1,000 ops/s for 100 ms is 100 slots; one thread serves one per 10 ms.
	spec := loopSpec{clock: fc, threads: 1, duration: 100 * time.Millisecond, target: 1000}
	runLoop(context.Background(), spec, start, rec, fakeStep(fc, 10*time.Millisecond))
	got := ops()
	if len(got) != 10 {
		t.Fatalf("%d ops, want the 10 that started within the 100 ms", len(got))
	}
	if ran := fc.Now().Sub(start); ran != spec.duration {
		t.Fatalf("the loop ran for %v, want %v", ran, spec.duration)
	}
}

// Operations cut short by cancelling the run (Ctrl-C) are not recorded as
// the system's errors.
func TestLoopCancelRecordsNoErrors(t *testing.T) {
	start := time.Now()
	rec, ops := observed(start)
	ctx, cancel := context.WithCancel(context.Background())
	var inFlight sync.WaitGroup
	inFlight.Add(4)
	go func() { inFlight.Wait(); cancel() }() // every thread is inside a step
	spec := loopSpec{clock: clock.Real(), threads: 4}
	runLoop(ctx, spec, start, rec, func(context.Context, int) (stepFunc, func()) {
		var once sync.Once
		return func(ctx context.Context) (string, error) {
			once.Do(inFlight.Done)
			<-ctx.Done()
			return "OP", ctx.Err()
		}, func() {}
	})
	if n := len(ops()); n != 0 {
		t.Fatalf("%d operations recorded for a cancelled run, want 0", n)
	}
}

func TestLoopOpsLimitAcrossThreads(t *testing.T) {
	var calls atomic.Int64
	var workers, cleanups atomic.Int64
	start := time.Now()
	rec, ops := observed(start)
	spec := loopSpec{clock: clock.Real(), threads: 7, ops: 1000}
	runLoop(context.Background(), spec, start, rec, func(context.Context, int) (stepFunc, func()) {
		workers.Add(1)
		return func(context.Context) (string, error) {
				calls.Add(1)
				return "OP", nil
			}, func() {
				cleanups.Add(1)
			}
	})
	if calls.Load() != 1000 || len(ops()) != 1000 {
		t.Fatalf("%d calls, %d recorded, want 1000", calls.Load(), len(ops()))
	}
	if workers.Load() != 7 || cleanups.Load() != 7 {
		t.Fatalf("%d workers, %d cleanups, want 7", workers.Load(), cleanups.Load())
	}
}

func TestLoopStopsOnCancel(t *testing.T) {
	fc := clock.NewFake()
	start := fc.Now()
	rec, ops := observed(start)
	ctx, cancel := context.WithCancel(context.Background())
	// 1 op/s: the second op waits a second that never comes.
	spec := loopSpec{clock: fc, threads: 1, target: 1}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runLoop(ctx, spec, start, rec, fakeStep(fc, 0))
	}()
	for fc.Pending() == 0 {
		runtime.Gosched()
	}
	cancel()
	<-done
	if n := len(ops()); n != 1 {
		t.Fatalf("%d ops, want 1", n)
	}
}

// hdrNear reports whether an HdrHistogram value (the highest value
// equivalent to what was recorded, at three significant digits) stands for
// want.
func hdrNear(got, want int64) bool { return got >= want && got <= want+want/1000+1 }
