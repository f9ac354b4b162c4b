package clock

import (
	"sync"
	"testing"
	"time"
)

func TestHLC(t *testing.T) {
	f := NewFake()
	h := NewHLC(f)
	a := h.Now()
	if a != Epoch.UnixNano() {
		t.Fatalf("first reading %d, want the physical time %d", a, Epoch.UnixNano())
	}
	// The wall clock stands still: readings still grow.
	if b := h.Now(); b != a+1 {
		t.Fatalf("second reading %d, want %d", b, a+1)
	}
	// A timestamp from a node whose clock runs an hour ahead.
	ahead := Epoch.Add(time.Hour).UnixNano()
	h.Observe(ahead)
	if c := h.Now(); c != ahead+1 {
		t.Fatalf("after observing the future: %d, want %d", c, ahead+1)
	}
	// Observing the past changes nothing.
	h.Observe(a)
	if c := h.Now(); c != ahead+2 {
		t.Fatalf("after observing the past: %d, want %d", c, ahead+2)
	}
	// Physical time catching up takes over again.
	f.Advance(2 * time.Hour)
	if c := h.Now(); c != f.Now().UnixNano() {
		t.Fatalf("after the wall clock passed: %d, want %d", c, f.Now().UnixNano())
	}
}

// Concurrent readings are all distinct.
func TestHLCConcurrentReadingsAreUnique(t *testing.T) {
	h := NewHLC(NewFake())
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				ts := h.Now()
				mu.Lock()
				if seen[ts] {
					t.Errorf("reading %d repeated", ts)
				}
				seen[ts] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func TestSkewed(t *testing.T) {
	f := NewFake()
	s := NewSkewed(f)
	s.Step(-time.Minute)
	if got := s.Now(); !got.Equal(Epoch.Add(-time.Minute)) {
		t.Fatalf("after a step back: %v", got)
	}
	tm := s.NewTimer(time.Second)
	s.Step(time.Hour) // a step does not fire timers
	select {
	case <-tm.C():
		t.Fatal("timer fired on a step")
	default:
	}
	f.Advance(time.Second)
	select {
	case <-tm.C():
	default:
		t.Fatal("timer did not fire after its duration")
	}
	if s.Offset() != time.Hour-time.Minute {
		t.Fatalf("offset %v", s.Offset())
	}
}
