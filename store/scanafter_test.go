package store

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/quorumkv/quorumkv/version"
)

// TestScanAfterResumes scans a range in small steps, each resuming after
// the last row the previous one saw, and checks that the steps together
// see every row once, in order, including rows that share a hash.
func TestScanAfterResumes(t *testing.T) {
	// A hash of few values, so that many keys share one.
	hash := func(k []byte) uint64 { return uint64(len(k) % 3) }
	s := openTest(t, vfs.NewMem(), func(c *Config) { c.Hash = hash })
	var all [][]byte
	for i := range 40 {
		k := tk(fmt.Sprintf("k%0*d", i%5+1, i))
		if _, _, err := s.Update(k, write("n1", "v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Scan(0, 2, func(_ uint64, k, _ []byte) error {
		all = append(all, bytes.Clone(k))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(all) != 40 {
		t.Fatalf("full scan saw %d rows", len(all))
	}
	var got [][]byte
	var lastHash uint64
	var lastKey []byte
	stop := errors.New("batch full")
	for step := 0; ; step++ {
		n := 0
		fn := func(h uint64, k, _ []byte) error {
			if n == 7 {
				return stop
			}
			n++
			got = append(got, bytes.Clone(k))
			lastHash, lastKey = h, bytes.Clone(k)
			return nil
		}
		var err error
		if step == 0 {
			err = s.Scan(0, 2, fn)
		} else {
			err = s.ScanAfter(0, 2, lastHash, lastKey, fn)
		}
		if err == nil {
			break
		}
		if err != stop {
			t.Fatal(err)
		}
	}
	if len(got) != len(all) {
		t.Fatalf("resumed scans saw %d rows, want %d", len(got), len(all))
	}
	for i := range all {
		if !bytes.Equal(got[i], all[i]) {
			t.Fatalf("row %d: %q, want %q", i, got[i], all[i])
		}
	}
	// The last row: nothing after it.
	if err := s.ScanAfter(0, 2, lastHash, lastKey, func(uint64, []byte, []byte) error {
		t.Fatal("a row after the last")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// A resume point outside the range is refused.
	if err := s.ScanAfter(1, 2, 0, nil, func(uint64, []byte, []byte) error { return nil }); !errors.Is(err, ErrBadKey) {
		t.Fatalf("resume outside the range = %v", err)
	}
}

// TestDiscardUnsyncedThenSync drops records without syncing each, then
// makes the drops durable with Sync: a crash after Sync keeps them dropped.
func TestDiscardUnsyncedThenSync(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s := openTest(t, fs, func(c *Config) { c.Sync = true })
	var sets []version.Set
	for i := range 10 {
		set, _, err := s.Update(tk(fmt.Sprint(i)), write("n1", "v"))
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, set)
	}
	// A record that changed since it was read is kept.
	if ok, err := s.DiscardUnsynced(tk("0"), version.Set{}); ok || err != nil {
		t.Fatalf("DiscardUnsynced with a stale set = %v, %v", ok, err)
	}
	for i := range 10 {
		if ok, err := s.DiscardUnsynced(tk(fmt.Sprint(i)), sets[i]); !ok || err != nil {
			t.Fatalf("DiscardUnsynced(%d) = %v, %v", i, ok, err)
		}
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, crashed, func(c *Config) { c.Sync = true })
	n := 0
	if err := s2.Scan(0, ^uint64(0), func(uint64, []byte, []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d discarded records came back after a crash that followed Sync", n)
	}
	if err := s2.CompactRange(0, ^uint64(0)); err != nil {
		t.Fatal(err)
	}
}

// Dropping a partition's rows and compacting its range gives the space
// back: what a node does with the partitions it no longer replicates.
func TestDiscardThenCompactReclaimsSpace(t *testing.T) {
	s := openTest(t, vfs.NewMem(), nil)
	tables := func() int64 {
		var n int64
		for _, l := range s.db.Metrics().Levels {
			n += l.TablesSize
		}
		return n
	}
	for i := range 20000 {
		if _, _, err := s.Update(tk(fmt.Sprint("key-", i)), write("n1", fmt.Sprint("value-", i, "-0123456789abcdef0123456789abcdef"))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CompactRange(0, ^uint64(0)); err != nil {
		t.Fatal(err)
	}
	before := tables()
	// Drop the first half of the hash space, as 128 of 256 partitions.
	lo, hi := uint64(0), ^uint64(0)>>1
	type row struct {
		k   []byte
		set version.Set
	}
	var rows []row
	if err := s.Scan(lo, hi, func(_ uint64, k, set []byte) error {
		ds, err := DecodeSet(set)
		rows = append(rows, row{bytes.Clone(k), ds})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if ok, err := s.DiscardUnsynced(r.k, r.set); !ok || err != nil {
			t.Fatalf("discard: %v %v", ok, err)
		}
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	for p := uint64(0); p < 128; p++ {
		if err := s.CompactRange(p<<56, p<<56+(1<<56-1)); err != nil {
			t.Fatal(err)
		}
	}
	after := tables()
	t.Logf("%d of 20000 rows dropped: tables %d -> %d bytes", len(rows), before, after)
	if len(rows) < 8000 || after > before*7/10 {
		t.Fatalf("dropped %d rows; tables %d -> %d bytes, want at most 70%%", len(rows), before, after)
	}
}
