package store

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/version"
	"github.com/rs/zerolog"
)

func TestConfigValidate(t *testing.T) {
	ok := testConfig(vfs.NewMem())
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := []struct {
		name string
		mut  func(*Config)
	}{
		{"no dir", func(c *Config) { c.Dir = "" }},
		{"no hash", func(c *Config) { c.Hash = nil }},
		{"no clock", func(c *Config) { c.Clock = nil }},
		{"zero cache", func(c *Config) { c.CacheSize = 0 }},
		{"tiny memtable", func(c *Config) { c.MemTableSize = 1024 }},
		{"huge memtable", func(c *Config) { c.MemTableSize = 8 << 30 }},
		{"no stripes", func(c *Config) { c.LockStripes = 0 }},
		{"negative reopen backoff", func(c *Config) { c.ReopenBackoff = -time.Second }},
		{"reopen max below backoff", func(c *Config) { c.ReopenMaxBackoff = c.ReopenBackoff / 2 }},
		{"negative headroom", func(c *Config) { c.ReopenHeadroom = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mut(&c)
			if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
			}
			if _, err := Open(c, zerolog.Nop()); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Open = %v, want ErrInvalidConfig", err)
			}
		})
	}
	d := DefaultConfig()
	if !d.Sync || d.LockStripes != 1024 || d.Hash == nil || d.Clock == nil {
		t.Fatalf("DefaultConfig = %+v", d)
	}
}

func TestGetAbsent(t *testing.T) {
	s := openTest(t, vfs.NewMem(), nil)
	set, err := s.Get(tk("nope"))
	if err != nil || !set.IsEmpty() {
		t.Fatalf("Get(absent) = %+v, %v", set, err)
	}
	if _, err := s.Get([]byte{0x80}); !errors.Is(err, ErrBadKey) {
		t.Fatalf("Get(bad key) = %v, want ErrBadKey", err)
	}
}

func TestUpdateAndGet(t *testing.T) {
	s := openTest(t, vfs.NewMem(), nil)
	k := tk("k")
	got, changed, err := s.Update(k, write("n1", "v1"))
	if err != nil || !changed || !slices.Equal(values(got), []string{"v1"}) {
		t.Fatalf("Update = %v, %v, %v", values(got), changed, err)
	}
	read, err := s.Get(k)
	if err != nil || !read.Equal(got) {
		t.Fatalf("Get = %+v, %v; want %+v", read, err, got)
	}
	// A second write with the read context supersedes the first.
	got, _, err = s.Update(k, write("n1", "v2"))
	if err != nil || !slices.Equal(values(got), []string{"v2"}) || got.Siblings[0].Dot.Counter != 2 {
		t.Fatalf("second Update = %+v, %v", got, err)
	}
	m := s.Metrics()
	if m.Updates != 2 || m.Writes != 2 || m.Gets != 1 || m.Unchanged != 0 {
		t.Fatalf("metrics = %+v", m)
	}
}

func TestUpdateUnchangedWritesNothing(t *testing.T) {
	s := openTest(t, vfs.NewMem(), nil)
	k := tk("k")
	first, _, err := s.Update(k, write("n1", "v"))
	if err != nil {
		t.Fatal(err)
	}
	commits := s.Metrics().Commits
	syncs := s.Metrics().WALSyncs
	for i := 0; i < 5; i++ {
		got, changed, err := s.Update(k, func(cur version.Set) (version.Set, error) { return cur, nil })
		if err != nil || changed || !got.Equal(first) {
			t.Fatalf("no-op Update = %+v, %v, %v", got, changed, err)
		}
		// Merging what is already there is a no-op too (idempotent retry).
		if _, changed, err := s.Merge(k, first); err != nil || changed {
			t.Fatalf("repeated Merge changed=%v err=%v", changed, err)
		}
	}
	m := s.Metrics()
	if m.Commits != commits || m.WALSyncs != syncs || m.Unchanged != 10 || m.Writes != 1 {
		t.Fatalf("no-op updates wrote: %+v (commits before %d, syncs before %d)", m, commits, syncs)
	}
	// Absent key, empty result: nothing written either.
	if _, changed, err := s.Update(tk("other"), func(cur version.Set) (version.Set, error) { return cur, nil }); err != nil || changed {
		t.Fatalf("empty Update on absent key: changed=%v err=%v", changed, err)
	}
	if s.Metrics().Commits != commits {
		t.Fatal("empty update on an absent key committed")
	}
}

func TestUpdateErrorWritesNothing(t *testing.T) {
	s := openTest(t, vfs.NewMem(), nil)
	k := tk("k")
	if _, _, err := s.Update(k, write("n1", "v")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	_, changed, err := s.Update(k, func(cur version.Set) (version.Set, error) {
		if _, err := cur.Update(version.Write{Node: "n1", Value: []byte("lost")}); err != nil {
			return cur, err
		}
		return cur, boom
	})
	if !errors.Is(err, boom) || changed {
		t.Fatalf("Update = changed %v, %v; want boom", changed, err)
	}
	if got, _ := s.Get(k); !slices.Equal(values(got), []string{"v"}) {
		t.Fatalf("after failed update: %v", values(got))
	}
	// version errors pass through too.
	_, _, err = s.Update(k, func(cur version.Set) (version.Set, error) {
		_, err := cur.Update(version.Write{Node: "n1", Value: []byte("x"), MaxSiblings: 1})
		return cur, err
	})
	if !errors.Is(err, version.ErrTooManySiblings) {
		t.Fatalf("Update = %v, want ErrTooManySiblings", err)
	}
}

func TestUpdateEmptyResultDeletes(t *testing.T) {
	var events []WriteEvent
	s := openTest(t, vfs.NewMem(), func(c *Config) {
		c.OnWrite = func(e WriteEvent) { events = append(events, e) }
	})
	k := tk("k")
	if _, _, err := s.Update(k, write("n1", "v")); err != nil {
		t.Fatal(err)
	}
	_, changed, err := s.Update(k, func(version.Set) (version.Set, error) { return version.Set{}, nil })
	if err != nil || !changed {
		t.Fatalf("delete: changed=%v err=%v", changed, err)
	}
	n := 0
	if err := s.Scan(0, math.MaxUint64, func(uint64, []byte, []byte) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("rows after delete: %d, %v", n, err)
	}
	if len(events) != 2 || events[1].New != nil || events[1].Old == nil {
		t.Fatalf("events = %+v", events)
	}
}

func TestUpdatePanicPropagates(t *testing.T) {
	s := openTest(t, vfs.NewMem(), nil)
	k := tk("k")
	func() {
		defer func() {
			if r := recover(); r != "user bug" {
				t.Fatalf("recovered %v, want the caller's panic", r)
			}
		}()
		_, _, _ = s.Update(k, func(version.Set) (version.Set, error) { panic("user bug") })
	}()
	// The key's lock was released and the store is still healthy.
	if _, _, err := s.Update(k, write("n1", "v")); err != nil {
		t.Fatalf("Update after a panicking fn: %v", err)
	}
	if s.Metrics().Failed {
		t.Fatal("a caller panic failed the store")
	}
}

func TestOnWriteEvents(t *testing.T) {
	var events []WriteEvent
	s := openTest(t, vfs.NewMem(), func(c *Config) {
		c.OnWrite = func(e WriteEvent) { events = append(events, e) }
	})
	k := tk("k")
	s1, _, _ := s.Update(k, write("n1", "a"))
	s2, _, _ := s.Update(k, write("n1", "b"))
	_, _, _ = s.Update(k, func(cur version.Set) (version.Set, error) { return cur, nil }) // unchanged: no event
	if len(events) != 2 {
		t.Fatalf("%d events, want 2", len(events))
	}
	h := s.cfg.Hash(k)
	want := []WriteEvent{
		{Hash: h, Key: k, Old: nil, New: EncodeSet(s1)},
		{Hash: h, Key: k, Old: EncodeSet(s1), New: EncodeSet(s2)},
	}
	for i, e := range events {
		w := want[i]
		if e.Hash != w.Hash || !bytes.Equal(e.Key, w.Key) || !bytes.Equal(e.Old, w.Old) || !bytes.Equal(e.New, w.New) ||
			(e.Old == nil) != (w.Old == nil) {
			t.Fatalf("event %d = %+v, want %+v", i, e, w)
		}
	}
}

func TestMerge(t *testing.T) {
	s := openTest(t, vfs.NewMem(), nil)
	k := tk("k")
	// Two replicas accept concurrent writes; merging keeps both.
	var a, b version.Set
	if _, err := a.Update(version.Write{Node: "n1", Value: []byte("a"), WriteTime: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Update(version.Write{Node: "n2", Value: []byte("b"), WriteTime: 20}); err != nil {
		t.Fatal(err)
	}
	got, changed, err := s.Merge(k, a)
	if err != nil || !changed || !got.Equal(a) {
		t.Fatalf("Merge(a) = %+v, %v, %v", got, changed, err)
	}
	got, changed, err = s.Merge(k, b)
	if err != nil || !changed || !slices.Equal(values(got), []string{"a", "b"}) {
		t.Fatalf("Merge(b) = %v, %v, %v", values(got), changed, err)
	}
	if !got.Equal(version.Sync(a, b)) {
		t.Fatal("merge result is not version.Sync")
	}
	// Merge never resolves, whatever the bucket: concurrent siblings are
	// kept, and reads of a last-write-wins bucket resolve what they return.
	lk := tk("other")
	if _, _, err := s.Merge(lk, b); err != nil {
		t.Fatal(err)
	}
	got, _, err = s.Merge(lk, a)
	if err != nil || !slices.Equal(values(got), []string{"a", "b"}) {
		t.Fatalf("merge in the other order = %v, %v", values(got), err)
	}
	stored, _ := s.Get(lk)
	if !stored.Equal(got) || !stored.Equal(version.Sync(a, b)) {
		t.Fatal("the merge result is not stored, or depends on the order")
	}
	if m := s.Metrics(); m.Merges != 4 || m.Writes != 4 {
		t.Fatalf("metrics = %+v", m)
	}
}

// idHash makes a key's hash the number in its name: tk("17") hashes to 17.
func idHash(k []byte) uint64 {
	_, key, err := DecodeKey(k)
	if err != nil {
		panic(err)
	}
	n, err := strconv.ParseUint(string(key), 10, 64)
	if err != nil {
		panic(err)
	}
	return n
}

func TestScanRanges(t *testing.T) {
	s := openTest(t, vfs.NewMem(), func(c *Config) { c.Hash = idHash })
	hashes := []uint64{0, 1, 5, 6, 100, 1 << 40, math.MaxUint64 - 1, math.MaxUint64}
	want := map[uint64][]byte{}
	for _, h := range hashes {
		set, _, err := s.Update(tk(strconv.FormatUint(h, 10)), write("n1", fmt.Sprint(h)))
		if err != nil {
			t.Fatal(err)
		}
		want[h] = EncodeSet(set)
	}
	// Hints and meta rows never show up in a data scan.
	if err := addHint(s, "n2", tk("3"), version.Set{Context: version.Context{VV: map[string]uint64{"x": 1}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutMeta("id", []byte("n1")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		lo, hi uint64
		want   []uint64
	}{
		{0, math.MaxUint64, hashes},
		{1, 5, []uint64{1, 5}},
		{2, 4, nil},
		{5, 5, []uint64{5}},
		{6, 1 << 40, []uint64{6, 100, 1 << 40}},
		{math.MaxUint64, math.MaxUint64, []uint64{math.MaxUint64}},
		{math.MaxUint64 - 1, math.MaxUint64, []uint64{math.MaxUint64 - 1, math.MaxUint64}},
		{0, 0, []uint64{0}},
		{7, 6, nil}, // empty range
	}
	for _, tt := range tests {
		var got []uint64
		err := s.Scan(tt.lo, tt.hi, func(h uint64, k []byte, setBytes []byte) error {
			if idHash(k) != h {
				t.Errorf("row key %q under hash %d", k, h)
			}
			if !bytes.Equal(setBytes, want[h]) {
				t.Errorf("hash %d: set bytes differ", h)
			}
			got = append(got, h)
			return nil
		})
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Scan(%d, %d) = %v, %v; want %v", tt.lo, tt.hi, got, err, tt.want)
		}
	}
	stop := errors.New("stop")
	n := 0
	err := s.Scan(0, math.MaxUint64, func(uint64, []byte, []byte) error { n++; return stop })
	if err != stop || n != 1 {
		t.Fatalf("Scan with failing fn = %v after %d rows", err, n)
	}
}

func TestScanCallbackMayWrite(t *testing.T) {
	s := openTest(t, vfs.NewMem(), nil)
	for i := 0; i < 20; i++ {
		if _, _, err := s.Update(tk(fmt.Sprint(i)), write("n1", "v")); err != nil {
			t.Fatal(err)
		}
	}
	// Scan reads a snapshot: rows written by the callback are not visited.
	n := 0
	err := s.Scan(0, math.MaxUint64, func(_ uint64, k []byte, _ []byte) error {
		n++
		_, _, err := s.Update(append(bytes.Clone(k), 'x'), write("n1", "new"))
		return err
	})
	if err != nil || n != 20 {
		t.Fatalf("Scan = %v after %d rows", err, n)
	}
}

func TestCorruptRecord(t *testing.T) {
	s := openTest(t, vfs.NewMem(), nil)
	k := tk("k")
	if _, _, err := s.Update(k, write("n1", "v")); err != nil {
		t.Fatal(err)
	}
	row := dataRow(s.cfg.Hash(k), k)
	for _, tt := range []struct {
		name   string
		val    []byte
		format bool
	}{
		{"garbage", []byte{recordFormat, 0xc1}, false},
		{"future format", []byte{7, 1, 2, 3}, true},
		{"bad set", encodeRecord(record{Set: []byte{setFormat, 0x01}}), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.db.Set(row, tt.val, pebble.Sync); err != nil {
				t.Fatal(err)
			}
			// The row cache still holds the good record, as it would
			// until eviction or a restart if the disk went bad under it.
			// Forget it, so that the reads below see the disk.
			s.rows.drop(s.cfg.Hash(k), row)
			check := func(op string, err error) {
				t.Helper()
				var ce *CorruptError
				if !errors.As(err, &ce) || !bytes.Equal(ce.Key, k) || !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s error = %v, want CorruptError for %q", op, err, k)
				}
				var fe *FormatError
				if errors.As(err, &fe) != tt.format {
					t.Fatalf("%s error = %v, FormatError expected: %v", op, err, tt.format)
				}
				if ce.Healable() == tt.format {
					t.Fatalf("%s error = %v: Healable %v for a FormatError %v", op, err, ce.Healable(), tt.format)
				}
			}
			_, err := s.Get(k)
			check("Get", err)
			// Update issues dots and needs the record's history: it never
			// heals.
			_, _, err = s.Update(k, write("n1", "w"))
			check("Update", err)
			// Scan skips a row whose framing does not decode and counts
			// it; it hands out set bytes undecoded.
			skipped := s.Metrics().Skipped
			var seen [][]byte
			if err := s.Scan(0, math.MaxUint64, func(_ uint64, key, set []byte) error {
				seen = append(seen, bytes.Clone(set))
				return nil
			}); err != nil {
				t.Fatalf("Scan: %v", err)
			}
			badFraming := tt.name != "bad set"
			if wantSeen := !badFraming; (len(seen) == 1) != wantSeen {
				t.Fatalf("Scan handed out %d rows, want the row: %v", len(seen), wantSeen)
			}
			if got := s.Metrics().Skipped - skipped; got != map[bool]uint64{true: 1, false: 0}[badFraming] {
				t.Fatalf("Scan skipped %d rows", got)
			}
			// A future format is left alone by Merge, too.
			if tt.format {
				_, _, err = s.Merge(k, mustSet(t, "n2", "x"))
				check("Merge", err)
				raw, closer, err := s.db.Get(row)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(raw, tt.val) {
					t.Fatalf("Merge overwrote a newer format: %x", raw)
				}
				_ = closer.Close()
			}
		})
	}
	if s.Metrics().Errors == 0 {
		t.Fatal("corrupt records not counted as errors")
	}
	if s.ActorEpoch() != 0 || s.Metrics().Quarantined != 0 {
		t.Fatalf("nothing was healed, yet epoch %d, quarantined %d", s.ActorEpoch(), s.Metrics().Quarantined)
	}
}

// A row every scan skips (here one in a newer format, which nothing
// replaces) is counted each time, but logged only a few times a minute:
// anti-entropy scans every partition each round.
func TestSkippedRowLogIsSampled(t *testing.T) {
	var logs bytes.Buffer
	s, err := Open(testConfig(vfs.NewMem()), zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	k := tk("k")
	if err := s.db.Set(dataRow(s.cfg.Hash(k), k), []byte{7, 1, 2, 3}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	const scans = 3 * skipLogBurst
	for range scans {
		if err := s.Scan(0, math.MaxUint64, func(uint64, []byte, []byte) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Metrics().Skipped; got != scans {
		t.Fatalf("Skipped = %d, want %d", got, scans)
	}
	if got := bytes.Count(logs.Bytes(), []byte("skipping a row that does not decode")); got != skipLogBurst {
		t.Fatalf("%d skip lines logged in %d scans, want %d", got, scans, skipLogBurst)
	}
}

func mustSet(t *testing.T, node, value string) version.Set {
	t.Helper()
	var set version.Set
	if _, err := set.Update(version.Write{Node: node, Value: []byte(value), WriteTime: 1}); err != nil {
		t.Fatal(err)
	}
	return set
}

// A merge replaces a corrupt record with the incoming set, quarantines the
// old bytes, advances the actor epoch (durably, in the same batch), and
// keeps write events consistent with what Scan hands out.
func TestMergeHealsCorruptRecord(t *testing.T) {
	for _, tt := range []struct {
		name string
		val  []byte
	}{
		{"bad framing", []byte{recordFormat, 0xc1}},
		{"bad set", encodeRecord(record{Set: []byte{setFormat, 0x01}})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := vfs.NewMem()
			// digest is the XOR of hash(k ‖ set) over the records, kept
			// from write events as anti-entropy keeps its Merkle leaves.
			var digest uint64
			h := func(k, set []byte) uint64 {
				if set == nil {
					return 0
				}
				return xxhash.Sum64(append(bytes.Clone(k), set...))
			}
			onWrite := func(ev WriteEvent) { digest ^= h(ev.Key, ev.Old) ^ h(ev.Key, ev.New) }
			s := openTest(t, fs, func(c *Config) { c.OnWrite = onWrite })
			k, other := tk("k"), tk("other")
			for _, key := range [][]byte{k, other} {
				if _, _, err := s.Update(key, write("n1", "v")); err != nil {
					t.Fatal(err)
				}
			}
			hash := s.cfg.Hash(k)
			row := dataRow(hash, k)
			// The disk goes bad under the record: no write event, so the
			// digest still counts the good bytes; rebuild it from Scan, as
			// anti-entropy rebuilds a tree at start.
			if err := s.db.Set(row, tt.val, pebble.Sync); err != nil {
				t.Fatal(err)
			}
			s.rows.drop(hash, row)
			scanDigest := func() uint64 {
				var d uint64
				if err := s.Scan(0, math.MaxUint64, func(_ uint64, key, set []byte) error {
					d ^= h(key, set)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				return d
			}
			digest = scanDigest()

			in := mustSet(t, "n2", "from a peer")
			got, changed, err := s.Merge(k, in)
			if err != nil || !changed || !got.Equal(in) {
				t.Fatalf("Merge = %v, %v, %v; want the incoming set", got.Dots(), changed, err)
			}
			if set, err := s.Get(k); err != nil || !set.Equal(in) {
				t.Fatalf("Get after heal = %v, %v", set.Dots(), err)
			}
			if digest != scanDigest() {
				t.Fatal("write events and Scan disagree after the heal")
			}
			var q []Quarantined
			if err := s.ScanQuarantine(func(x Quarantined) error {
				x.Key, x.Raw = bytes.Clone(x.Key), bytes.Clone(x.Raw)
				q = append(q, x)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(q) != 1 || !bytes.Equal(q[0].Key, k) || !bytes.Equal(q[0].Raw, tt.val) {
				t.Fatalf("quarantine holds %+v, want the raw bytes of %q", q, k)
			}
			if s.ActorEpoch() != 1 || s.Metrics().Quarantined != 1 {
				t.Fatalf("epoch %d, quarantined %d; want 1 and 1", s.ActorEpoch(), s.Metrics().Quarantined)
			}
			// A healthy key merges as before: no quarantine, no new epoch.
			if _, _, err := s.Merge(other, in); err != nil || s.ActorEpoch() != 1 {
				t.Fatalf("healthy merge: %v, epoch %d", err, s.ActorEpoch())
			}
			// The epoch survives a restart.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s2 := openTest(t, fs, nil)
			if s2.ActorEpoch() != 1 {
				t.Fatalf("epoch after reopen = %d, want 1", s2.ActorEpoch())
			}
		})
	}
}

func TestHints(t *testing.T) {
	fs := vfs.NewMem()
	s := openTest(t, fs, nil)
	k1, k2 := tk("k1"), tk("k2")
	var a, b version.Set
	_, _ = a.Update(version.Write{Node: "n1", Value: []byte("a")})
	_, _ = b.Update(version.Write{Node: "n3", Value: []byte("b")})

	for _, bad := range []string{"", "x\x00y"} {
		if err := addHint(s, bad, k1, a); !errors.Is(err, ErrBadOwner) {
			t.Fatalf("AddHint(%q) = %v", bad, err)
		}
		if err := s.ScanHints(bad, func([]byte, version.Set) error { return nil }); !errors.Is(err, ErrBadOwner) {
			t.Fatalf("ScanHints(%q) = %v", bad, err)
		}
	}
	if err := addHint(s, "n2", k1, version.Set{}); err != nil || s.HintBytes("n2") != 0 {
		t.Fatalf("empty hint stored: %v, %d bytes", err, s.HintBytes("n2"))
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(addHint(s, "n2", k1, a))
	must(addHint(s, "n2", k1, b)) // merges
	must(addHint(s, "n2", k2, a))
	must(addHint(s, "n4", k1, b))
	must(addHint(s, "n4", k1, b)) // identical: no change

	// Hint reads one owner's hint for one key, separate from data.
	if got, err := s.Hint("n2", k1); err != nil || !got.Equal(version.Sync(a, b)) {
		t.Fatalf("Hint(n2, k1) = %+v, %v; want the merge of both hints", got, err)
	}
	if got, err := s.Hint("n4", k2); err != nil || !got.IsEmpty() {
		t.Fatalf("Hint(n4, k2) = %+v, %v; want none", got, err)
	}
	if got, err := s.Get(k1); err != nil || !got.IsEmpty() {
		t.Fatalf("a hint shows as data: Get = %+v, %v", got, err)
	}
	if _, err := s.Hint("", k1); !errors.Is(err, ErrBadOwner) {
		t.Fatalf("Hint(\"\") = %v", err)
	}

	if got := s.HintOwners(); !slices.Equal(got, []string{"n2", "n4"}) {
		t.Fatalf("HintOwners = %v", got)
	}
	scan := func(owner string) map[string]version.Set {
		out := map[string]version.Set{}
		must(s.ScanHints(owner, func(k []byte, set version.Set) error {
			out[string(k)] = set
			return nil
		}))
		return out
	}
	got := scan("n2")
	if len(got) != 2 || !got[string(k1)].Equal(version.Sync(a, b)) || !got[string(k2)].Equal(a) {
		t.Fatalf("ScanHints(n2) = %+v", got)
	}
	if got := scan("n4"); len(got) != 1 || !got[string(k1)].Equal(b) {
		t.Fatalf("ScanHints(n4) = %+v", got)
	}
	if got := scan("n9"); len(got) != 0 {
		t.Fatalf("ScanHints(n9) = %+v", got)
	}
	// An owner that is a prefix of another sees only its own hints.
	must(addHint(s, "n", k2, b))
	if got := scan("n"); len(got) != 1 || !got[string(k2)].Equal(b) {
		t.Fatalf("ScanHints(n) = %+v", got)
	}

	// Byte accounting matches the rows, and survives a reopen.
	wantBytes := func(owner string) int64 {
		var n int64
		must(s.ScanHints(owner, func(k []byte, set version.Set) error {
			n += int64(len(hintRow(owner, s.cfg.Hash(k), k)) + len(encodeRecord(record{Set: EncodeSet(set)})))
			return nil
		}))
		return n
	}
	for _, o := range []string{"n", "n2", "n4"} {
		if got, want := s.HintBytes(o), wantBytes(o); got != want || got == 0 {
			t.Fatalf("HintBytes(%s) = %d, want %d", o, got, want)
		}
		if got, want := s.HintCount(o), int64(len(scan(o))); got != want {
			t.Fatalf("HintCount(%s) = %d, want %d", o, got, want)
		}
	}
	total := s.HintBytes("n") + s.HintBytes("n2") + s.HintBytes("n4")
	if m := s.Metrics(); m.HintBytes != total || m.HintsAdded != 4 {
		t.Fatalf("metrics hint bytes %d (want %d), added %d", m.HintBytes, total, m.HintsAdded)
	}

	// DeleteHint only deletes what was replayed.
	if ok, err := s.DeleteHint("n2", k1, a); err != nil || ok {
		t.Fatalf("DeleteHint(stale) = %v, %v", ok, err)
	}
	if ok, err := s.DeleteHint("n2", k1, version.Sync(a, b)); err != nil || !ok {
		t.Fatalf("DeleteHint(current) = %v, %v", ok, err)
	}
	if ok, err := s.DeleteHint("n2", k1, version.Sync(a, b)); err != nil || ok {
		t.Fatalf("DeleteHint(gone) = %v, %v", ok, err)
	}
	if got := scan("n2"); len(got) != 1 {
		t.Fatalf("after delete: %+v", got)
	}
	// Deleting during a scan (the replay loop) works.
	must(s.ScanHints("n4", func(k []byte, set version.Set) error {
		ok, err := s.DeleteHint("n4", k, set)
		if !ok {
			return fmt.Errorf("not deleted: %v", err)
		}
		return err
	}))
	if s.HintBytes("n4") != 0 || s.HintCount("n4") != 0 || slices.Contains(s.HintOwners(), "n4") {
		t.Fatalf("n4 still has %d bytes, %d hints", s.HintBytes("n4"), s.HintCount("n4"))
	}
	if s.HintCount("n2") != 1 {
		t.Fatalf("HintCount(n2) = %d after deleting one of two", s.HintCount("n2"))
	}

	before := map[string]int64{"n": s.HintBytes("n"), "n2": s.HintBytes("n2")}
	must(s.Close())
	s2 := openTest(t, fs, nil)
	for o, n := range before {
		if got := s2.HintBytes(o); got != n {
			t.Fatalf("after reopen HintBytes(%s) = %d, want %d", o, got, n)
		}
		if got := s2.HintCount(o); got != 1 {
			t.Fatalf("after reopen HintCount(%s) = %d, want 1", o, got)
		}
	}
	if got := s2.HintOwners(); !slices.Equal(got, []string{"n", "n2"}) {
		t.Fatalf("after reopen HintOwners = %v", got)
	}
}

func TestMeta(t *testing.T) {
	fs := vfs.NewMem()
	s := openTest(t, fs, nil)
	if _, err := s.GetMeta("id"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetMeta(absent) = %v", err)
	}
	if err := s.PutMeta("id", []byte("node-1")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutMeta("empty", nil); err != nil {
		t.Fatal(err)
	}
	v, err := s.GetMeta("id")
	if err != nil || string(v) != "node-1" {
		t.Fatalf("GetMeta = %q, %v", v, err)
	}
	v[0] = 'X' // a copy
	if v, _ := s.GetMeta("id"); string(v) != "node-1" {
		t.Fatal("GetMeta returned pebble's buffer")
	}
	if v, err := s.GetMeta("empty"); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("GetMeta(empty) = %v, %v", v, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, fs, nil)
	if v, err := s2.GetMeta("id"); err != nil || string(v) != "node-1" {
		t.Fatalf("after reopen GetMeta = %q, %v", v, err)
	}
}

func tombstone(t *testing.T, s *Store, k []byte) version.Set {
	t.Helper()
	set, _, err := s.Update(k, func(cur version.Set) (version.Set, error) {
		_, err := cur.Update(version.Write{Node: "n1", Context: cur.Context, Deleted: true, WriteTime: 5})
		return cur, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestReap(t *testing.T) {
	var mu sync.Mutex
	var events []WriteEvent
	s := openTest(t, vfs.NewMem(), func(c *Config) {
		c.OnWrite = func(e WriteEvent) { mu.Lock(); events = append(events, e); mu.Unlock() }
	})
	t0 := clock.Epoch
	live, dead, raced := tk("live"), tk("dead"), tk("raced")
	liveSet, _, _ := s.Update(live, write("n1", "v"))
	if _, _, err := s.Update(dead, write("n1", "v")); err != nil {
		t.Fatal(err)
	}
	deadSet := tombstone(t, s, dead)
	racedSet := tombstone(t, s, raced)

	if err := s.MarkReapable(tk("absent"), deadSet, t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("MarkReapable(absent) = %v", err)
	}
	if err := s.MarkReapable(live, liveSet, t0); !errors.Is(err, ErrNotTombstone) {
		t.Fatalf("MarkReapable(live) = %v", err)
	}
	if err := s.MarkReapable(dead, racedSet, t0); !errors.Is(err, ErrChanged) {
		t.Fatalf("MarkReapable(wrong expect) = %v", err)
	}
	if err := s.MarkReapable(dead, deadSet, time.Unix(0, 0)); err == nil {
		t.Fatal("MarkReapable accepted the zero instant")
	}
	if err := s.MarkReapable(dead, deadSet, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkReapable(dead, deadSet, t0.Add(2*time.Hour)); err != nil { // moves the mark
		t.Fatal(err)
	}
	if err := s.MarkReapable(raced, racedSet, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Marking does not change the canonical set bytes (ReapAfter is local).
	if got, _ := s.Get(dead); !bytes.Equal(EncodeSet(got), EncodeSet(deadSet)) {
		t.Fatal("marking changed the set")
	}
	// A write after marking resets ReapAfter: raced must survive.
	racedNew, _, err := s.Update(raced, write("n2", "back"))
	if err != nil {
		t.Fatal(err)
	}
	events = nil

	if n, err := s.Reap(t0.Add(time.Hour+time.Minute), 0); err != nil || n != 0 {
		t.Fatalf("Reap before dead's deadline = %d, %v", n, err)
	}
	if n, err := s.Reap(t0.Add(2*time.Hour), 0); err != nil || n != 1 {
		t.Fatalf("Reap at deadline = %d, %v", n, err)
	}
	if got, _ := s.Get(dead); len(got.Siblings) != 0 || !got.Context.Equal(deadSet.Context) {
		t.Fatalf("dead not reaped to its context: %+v", got)
	}
	if got, _ := s.Get(raced); !got.Equal(racedNew) {
		t.Fatalf("raced lost: %+v", got)
	}
	if got, _ := s.Get(live); !got.Equal(liveSet) {
		t.Fatal("live changed")
	}
	if len(events) != 1 || !bytes.Equal(events[0].Key, dead) || events[0].New != nil || !bytes.Equal(events[0].Old, EncodeSet(deadSet)) {
		t.Fatalf("reap events = %+v", events)
	}
	if m := s.Metrics(); m.Reaped != 1 || m.Marked != 3 {
		t.Fatalf("metrics = %+v", m)
	}
	// The index holds nothing stale now.
	if n, err := s.Reap(t0.Add(1000*time.Hour), 0); err != nil || n != 0 {
		t.Fatalf("second Reap = %d, %v", n, err)
	}
	indexRows := 0
	it, _ := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixReap}, UpperBound: []byte{prefixReap + 1}})
	for ok := it.First(); ok; ok = it.Next() {
		indexRows++
	}
	_ = it.Close()
	if indexRows != 0 {
		t.Fatalf("%d reap index rows left", indexRows)
	}
}

// One marked record that no longer decodes (corrupt, or in a newer format
// after a downgrade), or a bad index key, does not stop the reaping of the
// others: its index entry is dropped and counted, and the record kept.
func TestReapSkipsBadRecords(t *testing.T) {
	t0 := clock.Epoch
	for _, tt := range []struct {
		name string
		val  func(after int64) []byte
	}{
		{"bad framing", func(int64) []byte { return []byte{recordFormat, 0xc1} }},
		{"bad set", func(after int64) []byte {
			return encodeRecord(record{Set: []byte{setFormat, 0x01}, ReapAfter: after})
		}},
		{"newer format", func(int64) []byte { return []byte{7, 1, 2, 3} }},
		{"bad index key", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, vfs.NewMem(), func(c *Config) { c.RowCacheSize = 0 })
			var keys [][]byte
			for i := range 5 {
				k := tk(fmt.Sprint(i))
				keys = append(keys, k)
				if err := s.MarkReapable(k, tombstone(t, s, k), t0.Add(time.Duration(i)*time.Second)); err != nil {
					t.Fatal(err)
				}
			}
			bad := dataRow(s.cfg.Hash(keys[0]), keys[0]) // the first one due
			var badVal []byte
			if tt.val == nil {
				// An index key too short to parse, sorted before every other.
				if err := s.db.Set([]byte{prefixReap, 0}, nil, pebble.Sync); err != nil {
					t.Fatal(err)
				}
			} else {
				badVal = tt.val(t0.UnixNano())
				if err := s.db.Set(bad, badVal, pebble.Sync); err != nil {
					t.Fatal(err)
				}
			}
			errs := s.Metrics().Errors
			n, err := s.Reap(t0.Add(time.Hour), 0)
			want := 4
			if tt.val == nil {
				want = 5
			}
			if err != nil || n != want {
				t.Fatalf("Reap = %d, %v; want %d reaped past the bad entry", n, err, want)
			}
			if s.Metrics().Skipped != 1 || s.Metrics().Errors-errs != 1 {
				t.Fatalf("Skipped = %d, errors +%d; want the bad entry counted once in each", s.Metrics().Skipped, s.Metrics().Errors-errs)
			}
			if n, err := s.Reap(t0.Add(time.Hour), 0); err != nil || n != 0 || s.Metrics().Skipped != 1 {
				t.Fatalf("second Reap = %d, %v, skipped %d: the bad entry should be gone", n, err, s.Metrics().Skipped)
			}
			if badVal != nil {
				raw, closer, err := s.db.Get(bad)
				if err != nil {
					t.Fatalf("the bad record was deleted: %v", err)
				}
				if !bytes.Equal(raw, badVal) {
					t.Fatalf("the bad record changed: %x", raw)
				}
				_ = closer.Close()
			}
		})
	}
}

func TestReapLimit(t *testing.T) {
	s := openTest(t, vfs.NewMem(), nil)
	t0 := clock.Epoch
	for i := 0; i < 10; i++ {
		k := tk(fmt.Sprint(i))
		set := tombstone(t, s, k)
		if err := s.MarkReapable(k, set, t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	// Limit caps each call; the earliest deadlines go first.
	if n, err := s.Reap(t0.Add(time.Hour), 4); err != nil || n != 4 {
		t.Fatalf("Reap(limit 4) = %d, %v", n, err)
	}
	for i := 0; i < 10; i++ {
		got, _ := s.Get(tk(fmt.Sprint(i)))
		if reaped := len(got.Siblings) == 0; reaped != (i < 4) {
			t.Fatalf("key %d reaped=%v", i, reaped)
		}
	}
	if n, err := s.Reap(t0.Add(time.Hour), 0); err != nil || n != 6 {
		t.Fatalf("Reap(rest) = %d, %v", n, err)
	}
}

func TestCloseIdempotentAndRefuses(t *testing.T) {
	s := openTest(t, vfs.NewMem(), nil)
	if _, _, err := s.Update(tk("k"), write("n1", "v")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	k := tk("k")
	checks := map[string]error{}
	_, checks["Get"] = s.Get(k)
	_, _, checks["Update"] = s.Update(k, write("n1", "v"))
	_, _, checks["Merge"] = s.Merge(k, version.Set{})
	checks["Scan"] = s.Scan(0, 1, nil)
	checks["MarkReapable"] = s.MarkReapable(k, version.Set{}, clock.Epoch)
	_, checks["Reap"] = s.Reap(clock.Epoch, 0)
	checks["AddHint"] = addHint(s, "n2", k, version.Set{Context: version.Context{VV: map[string]uint64{"a": 1}}})
	checks["ScanHints"] = s.ScanHints("n2", nil)
	_, checks["DeleteHint"] = s.DeleteHint("n2", k, version.Set{})
	checks["PutMeta"] = s.PutMeta("x", nil)
	_, checks["GetMeta"] = s.GetMeta("x")
	for op, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", op, err)
		}
	}
	if m := s.Metrics(); m.Writes != 1 || m.DiskUsage != 0 {
		t.Fatalf("Metrics after Close = %+v", m)
	}
}

func TestCloseWaitsForInFlight(t *testing.T) {
	s := openTest(t, vfs.NewMem(), nil)
	entered, release := make(chan struct{}), make(chan struct{})
	updated := make(chan error, 1)
	go func() {
		_, _, err := s.Update(tk("k"), func(cur version.Set) (version.Set, error) {
			close(entered)
			<-release
			return write("n1", "v")(cur)
		})
		updated <- err
	}()
	<-entered
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	// Close must not finish while the update is inside fn. New operations
	// are refused as soon as Close has begun.
	for !s.closing.Load() {
		runtime.Gosched()
	}
	if _, err := s.Get(tk("other")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get during Close = %v, want ErrClosed", err)
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v while an update was in flight", err)
	default:
	}
	close(release)
	if err := <-updated; err != nil {
		t.Fatalf("in-flight update failed: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close = %v", err)
	}
}

func TestMetricsPebble(t *testing.T) {
	s := openTest(t, vfs.NewMem(), nil)
	opened := s.Metrics().Commits // Open records the store's incarnation
	for i := 0; i < 100; i++ {
		if _, _, err := s.Update(tk(fmt.Sprint(i)), write("n1", "value")); err != nil {
			t.Fatal(err)
		}
	}
	m := s.Metrics()
	if m.DiskUsage == 0 || m.MemTableBytes == 0 || m.Writes != 100 || m.Commits-opened != 100 || m.BytesWritten == 0 {
		t.Fatalf("metrics = %+v", m)
	}
	if m.WALSyncs < 100 {
		t.Fatalf("WALSyncs = %d for 100 sequential synced writes", m.WALSyncs)
	}
}

// Concurrent heals of different keys each advance the epoch: none is lost
// and the stored epoch ends at the published one.
func TestConcurrentHealsAdvanceEpoch(t *testing.T) {
	fs := vfs.NewMem()
	s := openTest(t, fs, nil)
	const n = 16
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = tk(fmt.Sprintf("k%02d", i))
		if _, _, err := s.Update(keys[i], write("n1", "v")); err != nil {
			t.Fatal(err)
		}
		hash := s.cfg.Hash(keys[i])
		if err := s.db.Set(dataRow(hash, keys[i]), []byte{recordFormat, 0xc1}, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		s.rows.drop(hash, dataRow(hash, keys[i]))
	}
	in := mustSet(t, "n2", "healed")
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := s.Merge(k, in); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := s.ActorEpoch(); got != n {
		t.Fatalf("epoch %d after %d heals", got, n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := openTest(t, fs, nil).ActorEpoch(); got != n {
		t.Fatalf("stored epoch %d after %d heals", got, n)
	}
}

// addHint is AddHint without a budget, for tests that only need the hint
// stored.
func addHint(s *Store, owner string, k []byte, set version.Set) error {
	_, err := s.AddHint(owner, k, set, 0, 0)
	return err
}

// The incarnation is fixed at the first open and kept by later ones; a
// store made anew (a lost disk) gets another.
func TestIncarnation(t *testing.T) {
	fs := vfs.NewMem()
	clk := clock.NewFake()
	s := openTest(t, fs, func(c *Config) { c.Clock = clk })
	first := s.Incarnation()
	if first != uint64(clk.Now().UnixMicro()) {
		t.Fatalf("incarnation %d, want the clock in microseconds", first)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	s = openTest(t, fs, func(c *Config) { c.Clock = clk })
	if got := s.Incarnation(); got != first {
		t.Fatalf("reopened: incarnation %d, want %d", got, first)
	}
	wiped := openTest(t, vfs.NewMem(), func(c *Config) { c.Clock = clk })
	if wiped.Incarnation() == first {
		t.Fatal("a new store took the old incarnation")
	}
}
