package store

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/quorumkv/quorumkv/version"
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
				must(s.AddHint("n2", k, a))
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
			err = s.AddHint("n2", added, b)
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
