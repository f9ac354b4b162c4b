package clock

import (
	"testing"
	"time"
)

func TestFakeTimersFireInOrder(t *testing.T) {
	f := NewFake()
	a := f.NewTimer(2 * time.Second)
	b := f.NewTimer(time.Second)
	f.Advance(1500 * time.Millisecond)
	select {
	case got := <-b.C():
		if want := Epoch.Add(time.Second); !got.Equal(want) {
			t.Fatalf("b fired at %v, want %v", got, want)
		}
	default:
		t.Fatal("b did not fire")
	}
	select {
	case <-a.C():
		t.Fatal("a fired early")
	default:
	}
	if !a.Stop() {
		t.Fatal("Stop on a pending timer returned false")
	}
	f.Advance(time.Hour)
	select {
	case <-a.C():
		t.Fatal("stopped timer fired")
	default:
	}
	if got, want := f.Now(), Epoch.Add(time.Hour+1500*time.Millisecond); !got.Equal(want) {
		t.Fatalf("Now = %v, want %v", got, want)
	}
}

func TestFakeTickerAndAfterFunc(t *testing.T) {
	f := NewFake()
	tk := f.NewTicker(time.Second)
	done := make(chan struct{})
	f.AfterFunc(3*time.Second, func() { close(done) })
	ticks := 0
	for i := 0; i < 3; i++ {
		f.Advance(time.Second)
		select {
		case <-tk.C():
			ticks++
		default:
		}
	}
	if ticks != 3 {
		t.Fatalf("ticks = %d, want 3", ticks)
	}
	<-done
	tk.Stop()
	if f.Pending() != 0 {
		t.Fatalf("pending = %d after stop, want 0", f.Pending())
	}
}
