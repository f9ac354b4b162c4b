package handoff

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/quorumkv/quorumkv/internal/clock"
)

func TestBucket(t *testing.T) {
	t0 := clock.Epoch
	tests := []struct {
		name        string
		rate, burst float64
		at          []time.Duration // when each reservation is made
		n           []float64
		wait        []time.Duration
	}{
		{"unlimited", 0, 0, []time.Duration{0, 0}, []float64{1e9, 1e9}, []time.Duration{0, 0}},
		{"burst then rate", 10, 2, []time.Duration{0, 0, 0, 0}, []float64{1, 1, 1, 1},
			[]time.Duration{0, 0, 100 * time.Millisecond, 200 * time.Millisecond}},
		{"refills over time", 10, 2, []time.Duration{0, 0, time.Second}, []float64{2, 0, 2},
			[]time.Duration{0, 0, 0}},
		{"refill capped at burst", 10, 2, []time.Duration{0, time.Hour}, []float64{2, 3},
			[]time.Duration{0, 100 * time.Millisecond}},
		{"larger than burst waits for debt", 100, 10, []time.Duration{0}, []float64{60},
			[]time.Duration{500 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBucket(tt.rate, tt.burst, t0)
			for i := range tt.at {
				if got := b.reserve(t0.Add(tt.at[i]), tt.n[i]); got != tt.wait[i] {
					t.Fatalf("reservation %d: wait %v, want %v", i, got, tt.wait[i])
				}
			}
		})
	}
}

// Property: tokens granted by any instant never exceed burst + rate×elapsed,
// grants come in reservation order, and nobody waits longer than the debt
// ahead of it needs.
func TestBucketProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		rate := rapid.Float64Range(0.5, 1e6).Draw(rt, "rate")
		burst := rapid.Float64Range(1, 1e6).Draw(rt, "burst")
		t0 := clock.Epoch
		b := newBucket(rate, burst, t0)
		now := t0
		type grant struct {
			at time.Time
			n  float64
		}
		var grants []grant
		var last time.Time
		for i, steps := 0, rapid.IntRange(1, 100).Draw(rt, "steps"); i < steps; i++ {
			now = now.Add(time.Duration(rapid.Int64Range(0, int64(time.Second)).Draw(rt, "gap")))
			n := rapid.Float64Range(0, 2*burst).Draw(rt, "n")
			// An independent model of the tokens there are now.
			before := burst - math.Max(0, b.tat.Sub(now).Seconds())*rate
			w := b.reserve(now, n)
			at := now.Add(w)
			if at.Before(last) {
				rt.Fatalf("grant %d at %v before the previous at %v", i, at, last)
			}
			last = at
			// Each reservation rounds its cost up by under 1ns, and the
			// burst's worth of time is rounded down by under 1ns.
			if need := math.Max(0, n-before) / rate; w.Seconds() > need+float64(i+2)*1e-9 {
				rt.Fatalf("waited %v, the debt needs only %vs", w, need)
			}
			grants = append(grants, grant{at, n})
		}
		for _, g := range grants {
			var sum float64
			for _, o := range grants {
				if !o.at.After(g.at) {
					sum += o.n
				}
			}
			if allowed := burst + g.at.Sub(t0).Seconds()*rate; sum > allowed*(1+1e-9)+1e-6 {
				rt.Fatalf("by %v granted %v tokens, more than %v", g.at.Sub(t0), sum, allowed)
			}
		}
	})
}

// A waiter cancelled by Close gives its tokens back and returns promptly.
func TestHintLimiterCancel(t *testing.T) {
	clk := clock.NewFake()
	cfg := DefaultConfig().Hints
	cfg.HintsPerSecond, cfg.HintBurst, cfg.BytesPerSecond = 1, 1, 0
	l := newHintLimiter(clk, cfg)
	if err := l.wait(context.Background(), 1, 10); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan time.Time, 1)
	l.onWait = func(d time.Time) { waiting <- d }
	done := make(chan error)
	go func() { done <- l.wait(ctx, 1, 10) }()
	if d := <-waiting; d != clock.Epoch.Add(time.Second) {
		t.Fatalf("deadline %v", d)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("wait = %v", err)
	}
	if clk.Pending() != 0 {
		t.Fatalf("cancelled wait left %d timers", clk.Pending())
	}
	// The refund leaves the bucket as if the cancelled wait never was:
	// a new reservation after one second goes straight through.
	clk.Advance(time.Second)
	l.onWait = func(time.Time) { t.Error("waited after refund") }
	if err := l.wait(context.Background(), 1, 10); err != nil {
		t.Fatal(err)
	}
}
