package gopool

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/quorumkv/quorumkv/internal/clock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newPool(t *testing.T, idle time.Duration) *Pool {
	t.Helper()
	p, err := New(Config{IdleTimeout: idle, Clock: clock.Real()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg Config
		ok  bool
	}{
		{DefaultConfig(), true},
		{Config{IdleTimeout: time.Millisecond, Clock: clock.NewFake()}, true},
		{Config{IdleTimeout: time.Millisecond}, false}, // no clock
		{Config{}, false},
		{Config{IdleTimeout: -time.Second, Clock: clock.Real()}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tc.cfg, err, tc.ok)
		}
		if _, err := New(tc.cfg); (err == nil) != tc.ok {
			t.Errorf("New(%+v) = %v, want ok=%v", tc.cfg, err, tc.ok)
		}
	}
}

// Sequential tasks reuse one worker: the second task finds the first
// task's worker idle.
func TestReusesIdleWorker(t *testing.T) {
	p := newPool(t, time.Minute)
	for i := 0; i < 100; i++ {
		if i > 0 {
			waitIdle(t, p)
		}
		done := make(chan struct{})
		if err := p.Go(func() { close(done) }); err != nil {
			t.Fatal(err)
		}
		<-done
	}
	// Idle counts a worker just before it blocks on the task channel, so a
	// hand-off can rarely miss it by a few instructions and start another.
	if got := p.Started(); got > 3 {
		t.Fatalf("started %d workers for 100 sequential tasks, want 1 (at most 3)", got)
	}
}

// waitIdle waits until a worker is parked on the task channel.
func waitIdle(t *testing.T, p *Pool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for p.Idle() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no worker became idle")
		}
		runtime.Gosched()
	}
}

// Go never waits for a free worker: tasks that block each other all run.
func TestNoConcurrencyLimit(t *testing.T) {
	p := newPool(t, time.Minute)
	const n = 50
	var wg sync.WaitGroup
	wg.Add(n)
	release := make(chan struct{})
	var running atomic.Int32
	for i := 0; i < n; i++ {
		if err := p.Go(func() {
			defer wg.Done()
			running.Add(1)
			<-release
		}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for running.Load() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := running.Load(); got != n {
		t.Fatalf("%d of %d blocking tasks running", got, n)
	}
	if got := p.Started(); got != n {
		t.Fatalf("started %d workers, want %d", got, n)
	}
	close(release)
	wg.Wait()
}

func TestCloseWaitsForRunningTasks(t *testing.T) {
	p, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var finished atomic.Bool
	if err := p.Go(func() {
		close(started)
		time.Sleep(50 * time.Millisecond)
		finished.Store(true)
	}); err != nil {
		t.Fatal(err)
	}
	<-started
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Fatal("Close returned before the running task finished")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ran := false
	if err := p.Go(func() { ran = true }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Go after Close = %v, want ErrClosed", err)
	}
	if ran {
		t.Fatal("task ran after Close")
	}
}

// An idle worker stays through IdleTimeout of fake time and exits after
// it; the next task then starts a new worker.
func TestIdleWorkerExits(t *testing.T) {
	clk := clock.NewFake()
	p, err := New(Config{IdleTimeout: time.Second, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	run := func() {
		t.Helper()
		done := make(chan struct{})
		if err := p.Go(func() { close(done) }); err != nil {
			t.Fatal(err)
		}
		<-done
		waitIdle(t, p)
	}
	run()
	clk.Advance(time.Second - time.Millisecond)
	run()
	if got := p.Started(); got != 1 {
		t.Fatalf("started %d workers, want 1: the worker left before its idle timeout", got)
	}
	clk.Advance(time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for p.Idle() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the idle worker did not exit after its timeout")
		}
		runtime.Gosched()
	}
	run()
	if got := p.Started(); got != 2 {
		t.Fatalf("started %d workers, want 2 (the first exited when idle)", got)
	}
}

// deep recurses to grow the stack of the goroutine that runs it.
//
//go:noinline
func deep(n int) int {
	var pad [256]byte
	pad[n%256] = byte(n)
	if n == 0 {
		return int(pad[0])
	}
	return deep(n-1) + int(pad[n%256])
}

// BenchmarkDeepTask compares a fresh goroutine per task with the pool, for
// a task that needs about 64 KiB of stack.
func BenchmarkDeepTask(b *testing.B) {
	b.Run("go", func(b *testing.B) {
		var wg sync.WaitGroup
		for i := 0; i < b.N; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); deep(200) }()
			wg.Wait()
		}
	})
	b.Run("pool", func(b *testing.B) {
		p, err := New(DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		var wg sync.WaitGroup
		for i := 0; i < b.N; i++ {
			wg.Add(1)
			_ = p.Go(func() { defer wg.Done(); deep(200) })
			wg.Wait()
		}
	})
}
