package store

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/quorumkv/quorumkv/version"
	"github.com/rs/zerolog"
)

// A corrupt hint neither stops the replay of the others nor stays forever:
// AddHint replaces it and ScanHints drops it, both keeping its bytes in the
// quarantine under its owner. One in a newer format is left alone by both.
func TestCorruptHint(t *testing.T) {
	for _, tt := range []struct {
		name   string
		val    []byte
		format bool
	}{
		{"bad framing", []byte{recordFormat, 0xc1}, false},
		{"bad set", encodeRecord(record{Set: []byte{setFormat, 0x01}}), false},
		{"future format", []byte{7, 1, 2, 3}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			fs := vfs.NewMem()
			s := openTest(t, fs, nil)
			good, added, scanned := tk("good"), tk("added"), tk("scanned")
			a, b := mustSet(t, "n1", "a"), mustSet(t, "n3", "b")
			for _, k := range [][]byte{good, added, scanned} {
				must(addHint(s, "n2", k, a))
			}
			// The disk goes bad under two hints; the restart recounts the
			// hint bytes from what is stored.
			for _, k := range [][]byte{added, scanned} {
				must(s.db.Set(hintRow("n2", s.cfg.Hash(k), k), tt.val, pebble.Sync))
			}
			must(s.Close())
			s = openTest(t, fs, nil)
			rowSize := func(k []byte) int64 {
				row := hintRow("n2", s.cfg.Hash(k), k)
				v, closer, err := s.db.Get(row)
				must(err)
				defer closer.Close()
				return int64(len(row) + len(v))
			}
			if got, want := s.HintBytes("n2"), rowSize(good)+rowSize(added)+rowSize(scanned); got != want {
				t.Fatalf("HintBytes after reopen = %d, want %d", got, want)
			}
			checkCorrupt := func(op string, err error) {
				t.Helper()
				var ce *CorruptError
				var fe *FormatError
				if !errors.As(err, &ce) || errors.As(err, &fe) != tt.format {
					t.Fatalf("%s = %v, want a CorruptError (newer format: %v)", op, err, tt.format)
				}
			}
			_, err := s.Hint("n2", added)
			checkCorrupt("Hint", err)

			// AddHint replaces the corrupt hint by the incoming set alone.
			err = addHint(s, "n2", added, b)
			if tt.format {
				checkCorrupt("AddHint", err)
			} else {
				must(err)
				if got, err := s.Hint("n2", added); err != nil || !got.Equal(b) {
					t.Fatalf("Hint after the replacing AddHint = %v, %v; want %v", got.Dots(), err, b.Dots())
				}
			}

			// ScanHints hands out the good hints, and drops the corrupt one.
			skipped := s.Metrics().Skipped
			var seen []string
			must(s.ScanHints("n2", func(k []byte, _ version.Set) error {
				seen = append(seen, string(k))
				return nil
			}))
			want := []string{string(good), string(added)}
			if tt.format {
				want = []string{string(good)}
			}
			if !sameStrings(seen, want) {
				t.Fatalf("ScanHints visited %q, want %q", seen, want)
			}
			wantSkipped := uint64(1)
			if tt.format {
				wantSkipped = 2 // added and scanned are both still there
			}
			if got := s.Metrics().Skipped - skipped; got != wantSkipped {
				t.Fatalf("ScanHints skipped %d hints, want %d", got, wantSkipped)
			}

			var q []Quarantined
			must(s.ScanQuarantine(func(x Quarantined) error {
				x.Key, x.Raw = bytes.Clone(x.Key), bytes.Clone(x.Raw)
				q = append(q, x)
				return nil
			}))
			if s.ActorEpoch() != 0 {
				t.Fatalf("actor epoch %d: quarantining a hint must not change it", s.ActorEpoch())
			}
			if tt.format {
				if len(q) != 0 || s.HintCount("n2") != 3 || s.Metrics().Quarantined != 0 {
					t.Fatalf("a newer format was touched: quarantine %+v, %d hints", q, s.HintCount("n2"))
				}
				for _, k := range [][]byte{added, scanned} {
					raw, closer, err := s.db.Get(hintRow("n2", s.cfg.Hash(k), k))
					must(err)
					if !bytes.Equal(raw, tt.val) {
						t.Fatalf("hint %q overwritten: %x", k, raw)
					}
					_ = closer.Close()
				}
				return
			}
			if len(q) != 2 || s.Metrics().Quarantined != 2 {
				t.Fatalf("quarantine holds %d records (metric %d), want 2", len(q), s.Metrics().Quarantined)
			}
			for _, x := range q {
				if x.Owner != "n2" || !bytes.Equal(x.Raw, tt.val) || (!bytes.Equal(x.Key, added) && !bytes.Equal(x.Key, scanned)) {
					t.Fatalf("quarantined %+v, want the raw bytes of a hint for n2", x)
				}
			}
			if got, err := s.Hint("n2", scanned); err != nil || !got.IsEmpty() {
				t.Fatalf("Hint of the dropped hint = %v, %v; want none", got.Dots(), err)
			}
			if got, want := s.HintBytes("n2"), rowSize(good)+rowSize(added); s.HintCount("n2") != 2 || got != want {
				t.Fatalf("%d hints of %d bytes, want 2 of %d", s.HintCount("n2"), got, want)
			}
			// The counts survive a restart: they match what is stored.
			must(s.Close())
			s = openTest(t, fs, nil)
			if got, want := s.HintBytes("n2"), rowSize(good)+rowSize(added); s.HintCount("n2") != 2 || got != want {
				t.Fatalf("after reopen %d hints of %d bytes, want 2 of %d", s.HintCount("n2"), got, want)
			}
		})
	}
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		if seen[x]--; seen[x] < 0 {
			return false
		}
	}
	return true
}

// A pebble panic while ScanHints drops a corrupt hint is the store's
// failure (ErrFailed), like any pebble panic inside a Store method, not a
// panic of the caller's callback.
func TestScanHintsDropPanicFailsTheStore(t *testing.T) {
	s := openTest(t, vfs.NewMem(), nil)
	a := mustSet(t, "n1", "a")
	var keys [][]byte
	for i := range 20 {
		k := tk(fmt.Sprint(i))
		keys = append(keys, k)
		if err := addHint(s, "n2", k, a); err != nil {
			t.Fatal(err)
		}
	}
	// Every hint but the first in scan order gets set bytes that do not
	// decode, so the scan calls the caller once, then drops hints.
	first := true
	if err := s.ScanHints("n2", func(k []byte, _ version.Set) error {
		if first {
			first = false
			return nil
		}
		return s.db.Set(hintRow("n2", s.cfg.Hash(k), k), encodeRecord(record{Set: []byte{setFormat, 0x01}}), pebble.NoSync)
	}); err != nil {
		t.Fatal(err)
	}
	// A closed pebble panics on every call: it stands in for pebble
	// failing while the drop commits.
	dead, err := pebble.Open("dead", &pebble.Options{FS: vfs.NewMem(), Logger: pebbleLogger{log: zerolog.Nop()}})
	if err != nil {
		t.Fatal(err)
	}
	_ = dead.Close()
	live := s.db
	defer func() { s.db = live }()
	err = func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic escaped ScanHints: %v", p)
			}
		}()
		return s.ScanHints("n2", func([]byte, version.Set) error {
			s.db = dead // after the first hint, pebble "fails"
			return nil
		})
	}()
	s.db = live
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("ScanHints = %v, want ErrFailed", err)
	}
	// The panic wedged the store, so its Close leaves pebble open (see
	// Store.Close); the real pebble is fine here and is closed by hand.
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
}

// A heal does not hold the epoch lock through OnWrite: an OnWrite that
// merges another key (allowed, on another stripe) whose record is corrupt
// too heals that one as well, instead of deadlocking on the epoch lock.
func TestHealOnWriteMayHealAnotherKey(t *testing.T) {
	var s *Store
	var first, second []byte
	var once sync.Once
	var armed atomic.Bool // set once both records are corrupt
	onWriteErr := make(chan error, 1)
	s = openTest(t, vfs.NewMem(), func(c *Config) {
		c.RowCacheSize = 0
		c.OnWrite = func(ev WriteEvent) {
			if armed.Load() && bytes.Equal(ev.Key, first) {
				once.Do(func() {
					_, _, err := s.Merge(second, mustSet(t, "n3", "y"))
					onWriteErr <- err
				})
			}
		}
	})
	first = tk("first")
	for i := 0; ; i++ { // a key on another stripe than first
		second = tk(fmt.Sprint("second", i))
		if s.stripe(s.cfg.Hash(second)) != s.stripe(s.cfg.Hash(first)) {
			break
		}
	}
	for _, k := range [][]byte{first, second} {
		if _, _, err := s.Update(k, write("n1", "v")); err != nil {
			t.Fatal(err)
		}
		if err := s.db.Set(dataRow(s.cfg.Hash(k), k), []byte{recordFormat, 0xc1}, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	armed.Store(true)
	done := make(chan error, 1)
	go func() { _, _, err := s.Merge(first, mustSet(t, "n2", "x")); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the heal of first deadlocked: its OnWrite's heal of second waits for the epoch lock")
	}
	if err := <-onWriteErr; err != nil {
		t.Fatal(err)
	}
	if s.ActorEpoch() != 2 || s.Metrics().Quarantined != 2 {
		t.Fatalf("epoch %d, quarantined %d; want 2 and 2", s.ActorEpoch(), s.Metrics().Quarantined)
	}
}

// Two quarantines of one row at the same clock reading (the test clock
// stands still) keep both copies.
func TestQuarantineKeepsEveryCopy(t *testing.T) {
	s := openTest(t, vfs.NewMem(), nil)
	k := tk("k")
	row := hintRow("n2", s.cfg.Hash(k), k)
	for i := range 2 {
		if err := s.db.Set(row, []byte{recordFormat, 0xc1, byte(i)}, pebble.Sync); err != nil {
			t.Fatal(err)
		}
		if err := addHint(s, "n2", k, mustSet(t, "n1", fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	var raws [][]byte
	if err := s.ScanQuarantine(func(q Quarantined) error {
		raws = append(raws, bytes.Clone(q.Raw))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(raws) != 2 || raws[0][2] != 0 || raws[1][2] != 1 || s.Metrics().Quarantined != 2 {
		t.Fatalf("quarantine holds %x (metric %d), want both copies in order", raws, s.Metrics().Quarantined)
	}
}
