package ring

import (
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestHolder(t *testing.T) {
	var h Holder
	if h.Load() != nil {
		t.Fatal("zero Holder is not empty")
	}
	r1 := mustNew(t, DefaultConfig(), nodes(3))
	r2 := mustNew(t, DefaultConfig(), nodes(4))
	h.Store(r1)
	if h.Load() != r1 {
		t.Fatal("Load after Store returned another ring")
	}
	if h.CompareAndSwap(r2, r2) || h.Load() != r1 {
		t.Fatal("CompareAndSwap succeeded with a stale old ring")
	}
	if !h.CompareAndSwap(r1, r2) || h.Load() != r2 {
		t.Fatal("CompareAndSwap failed with the current ring")
	}
	if NewHolder(r1).Load() != r1 {
		t.Fatal("NewHolder does not hold its ring")
	}
}

// Readers racing a writer always see a whole ring, old or new (run with
// -race).
func TestHolderConcurrent(t *testing.T) {
	rings := []*Ring{mustNew(t, DefaultConfig(), nodes(3)), mustNew(t, DefaultConfig(), nodes(5))}
	h := NewHolder(rings[0])
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			dst := make([]NodeID, 0, 5)
			for i := range 2000 {
				r := h.Load()
				var err error
				dst, err = r.AppendPreferenceList(dst[:0], []byte{byte(i)}, 3)
				if err != nil || (len(dst) != 3 && len(dst) != 5) {
					t.Errorf("lookup on a published ring: %q, %v", dst, err)
					return
				}
			}
		})
	}
	for i := range 2000 {
		h.Store(rings[i%2])
	}
	wg.Wait()
}
