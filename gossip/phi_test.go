package gossip

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/quorumkv/quorumkv/internal/clock"
)

// flips records OnChange calls.
type flipLog struct {
	mu  sync.Mutex
	got []flip
}

func (l *flipLog) record(peer string, available bool) {
	l.mu.Lock()
	l.got = append(l.got, flip{peer, available})
	l.mu.Unlock()
}

func (l *flipLog) list() []flip {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.got)
}

func newTestDetector(cfg DetectorConfig) (*Detector, *clock.Fake, *flipLog) {
	clk := clock.NewFake()
	d := NewDetector(cfg, clk)
	l := &flipLog{}
	d.OnChange(l.record)
	return d, clk, l
}

// steady sends n heartbeats from peer, interval apart, ending at the
// current time.
func steady(d *Detector, clk *clock.Fake, peer string, n int, interval time.Duration) {
	for i := 0; i < n; i++ {
		if i > 0 {
			clk.Advance(interval)
		}
		d.Heartbeat(peer)
	}
}

func TestPhiValues(t *testing.T) {
	// Reference values: -log10 of the standard normal upper tail Q(z).
	const (
		phiMean = 0.30103  // Q(0) = 0.5
		phiZ1   = 0.79955  // Q(1) = 0.158655
		phiZ2   = 1.64302  // Q(2) = 0.0227501
		phiZ3   = 2.86970  // Q(3) = 0.0013499
		phiZ5   = 6.54265  // Q(5) = 2.8665e-7
		phiZ10  = 23.11805 // Q(10) = 7.6199e-24
	)
	ms := time.Millisecond
	for _, tc := range []struct {
		name     string
		pause    time.Duration
		minStd   time.Duration
		window   int
		jittered bool // alternate 0.5 s and 1.5 s instead of steady 1 s
		elapsed  time.Duration
		want     float64
	}{
		{"just after heartbeat", 0, 100 * ms, 1000, false, 0, 0},
		{"at the mean", 0, 100 * ms, 1000, false, time.Second, phiMean},
		{"mean + 1 min stddev", 0, 100 * ms, 1000, false, 1100 * ms, phiZ1},
		{"mean + 2 min stddev", 0, 100 * ms, 1000, false, 1200 * ms, phiZ2},
		{"mean + 3 min stddev", 0, 100 * ms, 1000, false, 1300 * ms, phiZ3},
		{"mean + 5 min stddev", 0, 100 * ms, 1000, false, 1500 * ms, phiZ5},
		{"mean + 10 min stddev", 0, 100 * ms, 1000, false, 2000 * ms, phiZ10},
		{"pause shifts the mean", 500 * ms, 100 * ms, 1000, false, 1500 * ms, phiMean},
		{"pause then 3 stddev", 500 * ms, 100 * ms, 1000, false, 1800 * ms, phiZ3},
		{"observed stddev used", 0, ms, 100, true, 1500 * ms, phiZ1},
		{"observed stddev, 2", 0, ms, 100, true, 2000 * ms, phiZ2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultDetectorConfig()
			cfg.AcceptablePause, cfg.MinStdDev, cfg.WindowSize = tc.pause, tc.minStd, tc.window
			d, clk, _ := newTestDetector(cfg)
			if tc.jittered {
				// 200 intervals alternating 0.5 s / 1.5 s: the seeds are
				// evicted, mean 1 s, stddev 0.5 s.
				d.Heartbeat("p")
				for i := 0; i < 200; i++ {
					clk.Advance(time.Duration(500+1000*(i%2)) * ms)
					d.Heartbeat("p")
				}
			} else {
				// Steady 1 s heartbeats; the seeds (0.75 s, 1.25 s) keep
				// the mean at exactly 1 s.
				steady(d, clk, "p", 200, time.Second)
			}
			clk.Advance(tc.elapsed)
			if got := d.Phi("p"); math.Abs(got-tc.want) > 1e-3 {
				t.Fatalf("phi = %.5f, want %.5f", got, tc.want)
			}
		})
	}
}

func TestPhiUnknownAndRemovedPeers(t *testing.T) {
	d, clk, log := newTestDetector(DefaultDetectorConfig())
	if d.Phi("ghost") != 0 || !d.Available("ghost") {
		t.Fatal("an unknown peer must have phi 0 and be available")
	}
	steady(d, clk, "p", 10, time.Second)
	clk.Advance(time.Hour)
	if d.Available("p") {
		t.Fatal("silent peer still available")
	}
	d.Remove("p")
	if d.Phi("p") != 0 || !d.Available("p") || len(d.Snapshot()) != 0 {
		t.Fatal("Remove did not forget the peer")
	}
	if got := log.list(); len(got) != 1 {
		t.Fatalf("flips %v, want one suspicion", got)
	}
}

// A crashed peer that was heartbeating every second is suspected exactly
// when the model predicts, within the documented bound of 1 s + X,
// X = AcceptablePause + 5.612·MinStdDev = 1.061 s with the defaults.
func TestCrashedPeerSuspectedWithinBound(t *testing.T) {
	cfg := DefaultDetectorConfig()
	bound := cfg.DetectionTime(time.Second)
	if want := 2061 * time.Millisecond; bound < want || bound > want+time.Millisecond {
		t.Fatalf("DetectionTime(1s) = %v, documented 2.061s", bound)
	}
	d, clk, log := newTestDetector(cfg)
	steady(d, clk, "p", 100, time.Second)
	last := clk.Now()

	const step = 5 * time.Millisecond
	var suspectedAfter time.Duration
	for clk.Since(last) < time.Minute {
		clk.Advance(step)
		d.Check()
		if !d.Available("p") {
			suspectedAfter = clk.Since(last)
			break
		}
	}
	t.Logf("suspected %v after the last heartbeat (bound %v)", suspectedAfter, bound)
	if suspectedAfter == 0 || suspectedAfter > bound+step {
		t.Fatalf("suspected after %v, bound %v", suspectedAfter, bound)
	}
	if suspectedAfter < bound-step {
		t.Fatalf("suspected after %v, earlier than the model's %v", suspectedAfter, bound)
	}
	if got := log.list(); !slices.Equal(got, []flip{{"p", false}}) {
		t.Fatalf("OnChange calls %v, want one suspicion", got)
	}
	snap := d.Snapshot()
	if len(snap) != 1 || !snap[0].Suspected || snap[0].Phi < cfg.Threshold ||
		snap[0].Samples != 99 || snap[0].MeanInterval != time.Second || !snap[0].LastHeartbeat.Equal(last) {
		t.Fatalf("snapshot %+v", snap)
	}
}

// A peer whose heartbeats jitter by ±50% is never suspected.
func TestJitteryPeerNeverSuspected(t *testing.T) {
	d, clk, log := newTestDetector(DefaultDetectorConfig())
	rng := rand.New(rand.NewPCG(2026, 1))
	d.Heartbeat("p")
	maxPhi := 0.0
	for i := 0; i < 10000; i++ {
		interval := time.Duration((0.5 + rng.Float64()) * float64(time.Second))
		clk.Advance(interval)
		maxPhi = max(maxPhi, d.Phi("p"))
		if !d.Available("p") { // just before the heartbeat: phi at its peak
			t.Fatalf("suspected at interval %d (%v, phi %.2f)", i, interval, d.Phi("p"))
		}
		d.Heartbeat("p")
	}
	t.Logf("max phi over 10000 jittery intervals: %.3f", maxPhi)
	if got := log.list(); len(got) != 0 {
		t.Fatalf("OnChange calls %v", got)
	}
	if s := d.Snapshot()[0]; s.Samples != 1000 || s.MeanInterval < 950*time.Millisecond || s.MeanInterval > 1050*time.Millisecond {
		t.Fatalf("window %+v, want 1000 samples around 1 s", s)
	}
}

// A suspected peer is trusted again at its third timely heartbeat, without
// flapping, and stays trusted while heartbeats continue.
func TestRecoveredPeerTrustedAgain(t *testing.T) {
	cfg := DefaultDetectorConfig()
	d, clk, log := newTestDetector(cfg)
	steady(d, clk, "p", 100, time.Second)
	clk.Advance(10 * time.Second) // crash
	if d.Available("p") {
		t.Fatal("not suspected after 10 s of silence")
	}

	// beat waits extra beyond the 1 s rhythm, sends a heartbeat, then checks
	// availability every 250 ms through the following second, which brings
	// the clock to the next heartbeat of the rhythm.
	beat := func(extra time.Duration, want bool) {
		t.Helper()
		clk.Advance(extra)
		d.Heartbeat("p")
		for at := time.Duration(0); ; at += 250 * time.Millisecond {
			if got := d.Available("p"); got != want {
				t.Fatalf("%v after a heartbeat: available = %v, want %v (flips %v)", at, got, want, log.list())
			}
			if at == time.Second {
				return
			}
			clk.Advance(250 * time.Millisecond)
		}
	}
	beat(0, false) // 1st heartbeat ends the silence
	beat(0, false) // 2nd
	beat(0, true)  // 3rd: trusted
	for i := 0; i < 1000; i++ {
		beat(0, true)
	}
	if got := log.list(); !slices.Equal(got, []flip{{"p", false}, {"p", true}}) {
		t.Fatalf("OnChange calls %v, want suspicion then one recovery", got)
	}
	// The silence did not enter the window: the mean is still 1 s and a
	// second crash is detected as fast as the first.
	if s := d.Snapshot()[0]; s.MeanInterval != time.Second {
		t.Fatalf("mean %v after recovery, want 1s", s.MeanInterval)
	}
	last := clk.Now()
	for d.Available("p") {
		clk.Advance(5 * time.Millisecond)
	}
	if took := clk.Since(last); took > cfg.DetectionTime(time.Second)+5*time.Millisecond {
		t.Fatalf("second crash detected after %v", took)
	}

	// A late heartbeat during recovery restarts the count.
	beat(0, false) // 1 (late: ends the silence)
	beat(0, false) // 2
	beat(5*time.Second, false)
	beat(0, false) // 2 after the late one
	beat(0, true)  // 3
	want := []flip{{"p", false}, {"p", true}, {"p", false}, {"p", true}}
	if got := log.list(); !slices.Equal(got, want) {
		t.Fatalf("OnChange calls %v, want %v", got, want)
	}
	if m := d.Metrics(); m.Peers != 1 || m.Suspected != 0 || m.Suspicions != 2 || m.Recoveries != 2 || m.Heartbeats != 100+1008 {
		t.Fatalf("metrics %+v", m)
	}
}

// A peer whose heartbeat rhythm slows for good (its interval went from 1 s
// to 3 s) is suspected, then learnt: after a few late heartbeats in a row
// their interval enters the window and the peer is trusted again.
func TestSlowerRhythmIsLearnt(t *testing.T) {
	d, clk, log := newTestDetector(DefaultDetectorConfig())
	steady(d, clk, "p", 100, time.Second)
	for i := 0; i < 30 && !(len(log.list()) == 2 && d.Available("p")); i++ {
		clk.Advance(3 * time.Second)
		d.Heartbeat("p")
	}
	if got := log.list(); !slices.Equal(got, []flip{{"p", false}, {"p", true}}) || !d.Available("p") {
		t.Fatalf("after 30 heartbeats 3 s apart: flips %v, available %v; want suspected, then trusted", got, d.Available("p"))
	}
}

// Suspicion that nobody polled for is still noticed when the late heartbeat
// arrives, so the outcome does not depend on polling.
func TestLateHeartbeatWithoutPolling(t *testing.T) {
	d, clk, log := newTestDetector(DefaultDetectorConfig())
	steady(d, clk, "p", 50, time.Second)
	clk.Advance(30 * time.Second)
	d.Heartbeat("p")
	if d.Available("p") {
		t.Fatal("trusted right after a 30 s silence")
	}
	if got := log.list(); !slices.Equal(got, []flip{{"p", false}}) {
		t.Fatalf("flips %v", got)
	}
}

func TestDetectorConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*DetectorConfig)
		ok   bool
	}{
		{"default", func(*DetectorConfig) {}, true},
		{"zero threshold", func(c *DetectorConfig) { c.Threshold = 0 }, false},
		{"NaN threshold", func(c *DetectorConfig) { c.Threshold = math.NaN() }, false},
		{"infinite threshold", func(c *DetectorConfig) { c.Threshold = math.Inf(1) }, false},
		{"window 1", func(c *DetectorConfig) { c.WindowSize = 1 }, false},
		{"zero min stddev", func(c *DetectorConfig) { c.MinStdDev = 0 }, false},
		{"negative pause", func(c *DetectorConfig) { c.AcceptablePause = -1 }, false},
		{"zero pause", func(c *DetectorConfig) { c.AcceptablePause = 0 }, true},
		{"zero estimate", func(c *DetectorConfig) { c.FirstHeartbeatEstimate = 0 }, false},
		{"zero recovery", func(c *DetectorConfig) { c.RecoveryHeartbeats = 0 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultDetectorConfig()
			tc.edit(&c)
			err := c.Validate()
			if tc.ok != (err == nil) || err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	defer func() {
		if recover() == nil {
			t.Fatal("NewDetector accepted an invalid config")
		}
	}()
	NewDetector(DetectorConfig{}, clock.NewFake())
}

// phi never decreases as silence grows, and is never negative.
func TestPhiMonotoneProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		mean := rapid.Float64Range(0.001, 100).Draw(t, "mean")
		std := rapid.Float64Range(0.001, 50).Draw(t, "std")
		a := rapid.Float64Range(0, 1000).Draw(t, "a")
		b := rapid.Float64Range(0, 1000).Draw(t, "b")
		if a > b {
			a, b = b, a
		}
		pa, pb := phi(a, mean, std), phi(b, mean, std)
		if pa < 0 || pb < 0 || math.IsNaN(pa) || math.IsNaN(pb) || pa > pb {
			t.Fatalf("phi(%v)=%v, phi(%v)=%v (mean %v, std %v)", a, pa, b, pb, mean, std)
		}
	})
}

// Whatever the history, a detector's phi only grows between heartbeats,
// and a peer is suspected exactly when phi has reached the threshold.
func TestDetectorProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d, clk, _ := newTestDetector(DefaultDetectorConfig())
		steps := rapid.SliceOfN(rapid.Int64Range(1, 5000), 1, 100).Draw(t, "gaps ms")
		d.Heartbeat("p")
		for i, gap := range steps {
			before := d.Phi("p")
			clk.Advance(time.Duration(gap) * time.Millisecond)
			after := d.Phi("p")
			if after < before {
				t.Fatalf("step %d: phi fell from %v to %v without a heartbeat", i, before, after)
			}
			if after >= 8 && d.Available("p") {
				t.Fatalf("step %d: phi %v but available", i, after)
			}
			d.Heartbeat("p")
		}
	})
}

func BenchmarkPhi(b *testing.B) {
	d, clk, _ := newTestDetector(DefaultDetectorConfig())
	rng := rand.New(rand.NewPCG(1, 1))
	d.Heartbeat("p")
	for i := 0; i < 2000; i++ {
		clk.Advance(time.Duration((0.5 + rng.Float64()) * float64(time.Second)))
		d.Heartbeat("p")
	}
	clk.Advance(800 * time.Millisecond)
	b.ReportAllocs()
	for b.Loop() {
		_ = d.Phi("p")
	}
}
