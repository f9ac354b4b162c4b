package store

import (
	"fmt"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/quorumkv/quorumkv/version"
)

func TestConcurrentUpdatesOfOneKeyAreSerialized(t *testing.T) {
	s := openTest(t, vfs.NewMem(), func(c *Config) { c.Sync = false })
	k := tk("counter")
	const goroutines, increments = 50, 20
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < increments; i++ {
				if _, _, err := s.Update(k, increment); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := counterValue(t, s, k); got != goroutines*increments {
		t.Fatalf("counter = %d, want %d (lost updates)", got, goroutines*increments)
	}
	set, _ := s.Get(k)
	// Every increment superseded the previous one and issued the next dot.
	if d := set.Siblings[0].Dot; d != (version.Dot{Node: "n1", Counter: goroutines * increments}) {
		t.Fatalf("final dot %v", d)
	}
}

func TestDifferentKeysDoNotBlock(t *testing.T) {
	s := openTest(t, vfs.NewMem(), nil)
	k1 := tk("a")
	h1 := s.cfg.Hash(k1)
	// Find a key on another stripe and one on the same stripe.
	var other, same []byte
	for i := 0; other == nil || same == nil; i++ {
		k := tk(fmt.Sprint(i))
		h := s.cfg.Hash(k)
		if s.stripe(h) == s.stripe(h1) {
			if same == nil && h != h1 {
				same = k
			}
		} else if other == nil {
			other = k
		}
	}
	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, _, err := s.Update(k1, func(cur version.Set) (version.Set, error) {
			close(inside)
			<-release
			return write("n1", "slow")(cur)
		})
		done <- err
	}()
	<-inside
	// While k1's update is inside fn, its stripe is held ...
	if s.stripe(h1).TryLock() {
		t.Fatal("k1's stripe lock is not held during fn")
	}
	if s.stripe(s.cfg.Hash(same)).TryLock() {
		t.Fatal("a key on the same stripe could lock it")
	}
	// ... and an update of a key on another stripe completes, durably.
	if _, _, err := s.Update(other, write("n1", "fast")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(other); len(got.Siblings) != 1 {
		t.Fatal("other key not written")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentMergesConverge(t *testing.T) {
	s := openTest(t, vfs.NewMem(), func(c *Config) { c.Sync = false })
	k := tk("k")
	// Eight replicas each hold a history of writes; merging them all in any
	// interleaving must give their join.
	const replicas, writes = 8, 25
	sets := make([][]version.Set, replicas)
	var want version.Set
	for r := 0; r < replicas; r++ {
		var cur version.Set
		for i := 0; i < writes; i++ {
			if _, err := cur.Update(version.Write{Node: fmt.Sprintf("n%d", r), Context: cur.Context,
				Value: []byte(fmt.Sprint(i)), WriteTime: int64(i)}); err != nil {
				t.Fatal(err)
			}
			sets[r] = append(sets[r], cur.Clone())
		}
		want = version.Sync(want, cur)
	}
	var wg sync.WaitGroup
	for r := 0; r < replicas; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, set := range sets[r] {
				if _, _, err := s.Merge(k, set); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got, err := s.Get(k)
	if err != nil || !got.Equal(want) {
		t.Fatalf("merged = %+v, %v\nwant %+v", got, err, want)
	}
	if len(got.Siblings) != replicas {
		t.Fatalf("%d siblings, want %d", len(got.Siblings), replicas)
	}
}
