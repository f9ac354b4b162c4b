package clock

import (
	"sort"
	"sync"
	"time"
)

// Fake is a manually driven clock for tests. The zero value is not usable;
// call NewFake. It is safe for concurrent use.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers []*fakeTimer
}

// Epoch is the instant a Fake clock starts at.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// NewFake returns a Fake clock at Epoch.
func NewFake() *Fake { return &Fake{now: Epoch} }

// Now implements Clock.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Since implements Clock.
func (f *Fake) Since(t time.Time) time.Duration { return f.Now().Sub(t) }

// NewTimer implements Clock.
func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{f: f, ch: make(chan time.Time, 1)}
	f.schedule(t, d, 0)
	return t
}

// AfterFunc implements Clock.
func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	t := &fakeTimer{f: f, fn: fn}
	f.schedule(t, d, 0)
	return t
}

// NewTicker implements Clock.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive ticker interval")
	}
	t := &fakeTimer{f: f, ch: make(chan time.Time, 1)}
	f.schedule(t, d, d)
	return fakeTicker{t}
}

type fakeTicker struct{ t *fakeTimer }

func (k fakeTicker) C() <-chan time.Time { return k.t.ch }
func (k fakeTicker) Stop()               { k.t.Stop() }

// Advance moves the clock forward by d, firing every timer whose deadline is
// reached, in deadline order. Channel sends never block: like time.Ticker, a
// tick is dropped when the previous one was not received.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	target := f.now.Add(d)
	f.mu.Unlock()
	f.advanceTo(target)
}

// Set moves the clock to t, which may not be in the past.
func (f *Fake) Set(t time.Time) { f.advanceTo(t) }

// Pending returns how many timers are waiting to fire.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

func (f *Fake) advanceTo(target time.Time) {
	for {
		f.mu.Lock()
		if len(f.timers) == 0 || f.timers[0].when.After(target) {
			if target.After(f.now) {
				f.now = target
			}
			f.mu.Unlock()
			return
		}
		t := f.timers[0]
		f.timers = f.timers[1:]
		if t.when.After(f.now) {
			f.now = t.when
		}
		now := f.now
		if t.period > 0 {
			t.when = now.Add(t.period)
			f.insertLocked(t)
		} else {
			t.active = false
		}
		f.mu.Unlock()
		t.fire(now)
	}
}

func (f *Fake) schedule(t *fakeTimer, d, period time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t.when = f.now.Add(d)
	t.period = period
	t.active = true
	f.insertLocked(t)
}

func (f *Fake) insertLocked(t *fakeTimer) {
	f.seq++
	t.seq = f.seq
	f.timers = append(f.timers, t)
	sort.SliceStable(f.timers, func(i, j int) bool {
		if f.timers[i].when.Equal(f.timers[j].when) {
			return f.timers[i].seq < f.timers[j].seq
		}
		return f.timers[i].when.Before(f.timers[j].when)
	})
}

func (f *Fake) removeLocked(t *fakeTimer) bool {
	for i, x := range f.timers {
		if x == t {
			f.timers = append(f.timers[:i], f.timers[i+1:]...)
			return true
		}
	}
	return false
}

type fakeTimer struct {
	f      *Fake
	ch     chan time.Time
	fn     func()
	when   time.Time
	period time.Duration
	seq    uint64
	active bool
}

func (t *fakeTimer) fire(now time.Time) {
	if t.fn != nil {
		go t.fn()
		return
	}
	select {
	case t.ch <- now:
	default:
	}
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	was := t.active
	t.active = false
	t.f.removeLocked(t)
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.f.mu.Lock()
	was := t.active
	t.f.removeLocked(t)
	t.when = t.f.now.Add(d)
	t.active = true
	t.f.insertLocked(t)
	t.f.mu.Unlock()
	return was
}
