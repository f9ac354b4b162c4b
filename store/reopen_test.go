package store

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/internal/faultfs"
)

// fillUntilFailed writes until the full disk fails the store, and returns
// how many writes were acknowledged before.
func fillUntilFailed(t *testing.T, s *Store, prefix string) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		_, _, err := s.Update(tk(fmt.Sprint(prefix, i)), write("n1", "v"))
		if err == nil {
			t.Fatalf("write %d acknowledged on a full disk", i)
		}
		if errors.Is(err, ErrFailed) && errors.Is(err, syscall.ENOSPC) {
			return
		}
		t.Fatalf("write on a full disk: %v, want ErrFailed caused by ENOSPC", err)
	}
}

// checkAcked fails the test unless every key in acked reads back as v.
func checkAcked(t *testing.T, s *Store, acked []string) {
	t.Helper()
	for _, k := range acked {
		set, err := s.Get(tk(k))
		if err != nil {
			t.Fatalf("Get %s: %v", k, err)
		}
		if got := values(set); len(got) != 1 || got[0] != "v" {
			t.Fatalf("acknowledged %s reads back as %q", k, got)
		}
	}
}

// A store whose disk fills fails every operation fast, cannot reopen while
// the disk is full, and reopens with every acknowledged write once there
// is room again; it then serves reads and writes as before.
func TestReopenAfterDiskFull(t *testing.T) {
	disk := &faultfs.DiskFull{}
	s := openTest(t, disk.Wrap(vfs.NewMem()), func(c *Config) { c.ReopenBackoff = 0 })
	var acked []string
	for i := 0; i < 200; i++ {
		k := fmt.Sprint("k", i)
		if _, _, err := s.Update(tk(k), write("n1", "v")); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, k)
	}
	if stored, err := s.AddHint("n2", tk("hinted"), mustSet(t, "n1", "h"), 1<<20, 0); err != nil || !stored {
		t.Fatalf("AddHint = %v, %v", stored, err)
	}
	changed, err := s.Health()
	if err != nil {
		t.Fatalf("Health before the failure: %v", err)
	}

	disk.Set(true)
	fillUntilFailed(t, s, "full")
	select {
	case <-changed:
	default:
		t.Fatal("Health's channel not closed by the failure")
	}
	if _, err := s.Health(); !errors.Is(err, ErrFailed) {
		t.Fatalf("Health after the failure: %v", err)
	}
	if _, err := s.Get(tk("k0")); !errors.Is(err, ErrFailed) {
		t.Fatalf("Get while failed: %v", err)
	}
	// The disk is still full: the probe fails and nothing changes.
	if err := s.Reopen(); !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "probe") {
		t.Fatalf("Reopen on a full disk: %v", err)
	}
	if !s.Metrics().Failed {
		t.Fatal("store not failed after a reopen on a full disk")
	}

	disk.Set(false)
	changed, _ = s.Health()
	if err := s.Reopen(); err != nil {
		t.Fatalf("Reopen with room again: %v", err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("Health's channel not closed by the reopen")
	}
	if _, err := s.Health(); err != nil {
		t.Fatalf("Health after the reopen: %v", err)
	}
	checkAcked(t, s, acked)
	if got := s.Metrics().HintBytes; got == 0 {
		t.Fatal("hint sizes not counted again after the reopen")
	}
	if _, _, err := s.Update(tk("after"), write("n1", "v")); err != nil {
		t.Fatalf("write after the reopen: %v", err)
	}
	m := s.Metrics()
	if m.Failed || m.Failures != 1 || m.Reopens != 1 || m.DiskUsage == 0 {
		t.Fatalf("metrics after the reopen: failed %v, failures %d, reopens %d, disk usage %d", m.Failed, m.Failures, m.Reopens, m.DiskUsage)
	}
	if err := s.Reopen(); err != nil {
		t.Fatalf("Reopen of a healthy store: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Reopen(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Reopen after Close: %v", err)
	}
}

// The store reopens by itself, on its clock: not before ReopenBackoff,
// not while the disk is full, and at a later try once it has room. On
// simulated time (synctest): synctest.Wait returns once the reopen loop
// is blocked on its next timer.
func TestReopenLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		disk := &faultfs.DiskFull{}
		s := openTest(t, disk.Wrap(vfs.NewMem()), func(c *Config) { c.Clock = clock.Real() })
		if _, _, err := s.Update(tk("acked"), write("n1", "v")); err != nil {
			t.Fatal(err)
		}
		disk.Set(true)
		fillUntilFailed(t, s, "full")

		// The first try, after a second, meets the full disk.
		synctest.Wait()
		refused := disk.Refusals()
		time.Sleep(time.Second - time.Millisecond)
		synctest.Wait()
		if disk.Refusals() != refused {
			t.Fatal("a reopen was tried before ReopenBackoff")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait() // the try is done and the next one scheduled
		if disk.Refusals() == refused {
			t.Fatal("no reopen was tried after ReopenBackoff")
		}
		if _, err := s.Health(); !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "reopen") {
			t.Fatalf("after a try on a full disk: %v", err)
		}

		disk.Set(false)
		changed, _ := s.Health()
		time.Sleep(2 * time.Second) // the backoff doubled
		synctest.Wait()
		select {
		case <-changed:
		default:
			t.Fatal("the store did not reopen at the second try")
		}
		if _, err := s.Health(); err != nil {
			t.Fatalf("Health after the reopen: %v", err)
		}
		checkAcked(t, s, []string{"acked"})
	})
}

// Reopen waits for the filesystem to report ReopenHeadroom free.
func TestReopenWaitsForHeadroom(t *testing.T) {
	mem := vfs.NewMem()
	disk := &faultfs.DiskFull{}
	s := openTest(t, disk.Wrap(mem), func(c *Config) { c.ReopenBackoff, c.ReopenHeadroom = 0, 1<<20 })
	disk.Set(true)
	fillUntilFailed(t, s, "full")
	disk.Set(false)
	mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 1 << 10, TotalBytes: 1 << 30})
	if err := s.Reopen(); !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "bytes free") {
		t.Fatalf("Reopen with 1 KiB free: %v", err)
	}
	mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 1 << 30, TotalBytes: 1 << 30})
	if err := s.Reopen(); err != nil {
		t.Fatalf("Reopen with 1 GiB free: %v", err)
	}
}

// Reopen does not replace pebble under an operation still running on the
// failed instance: it refuses until the operation has returned.
func TestReopenWaitsForOperations(t *testing.T) {
	s := openTest(t, vfs.NewMem(), func(c *Config) { c.ReopenBackoff = 0 })
	if _, _, err := s.Update(tk("a"), write("n1", "v")); err != nil {
		t.Fatal(err)
	}
	var during error
	err := s.Scan(0, math.MaxUint64, func(uint64, []byte, []byte) error {
		s.fail(errors.New("test failure"))
		during = s.Reopen()
		return nil
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if !errors.Is(during, ErrFailed) || !errors.Is(during, errDraining) {
		t.Fatalf("Reopen during a Scan: %v, want errDraining", during)
	}
	if err := s.Reopen(); err != nil {
		t.Fatalf("Reopen after the Scan: %v", err)
	}
	checkAcked(t, s, []string{"a"})
}

// A scan that is running when the store fails stops at the next row with
// ErrFailed: rows read after the failure may never have been acknowledged.
func TestScanStopsAtFailure(t *testing.T) {
	s := openTest(t, vfs.NewMem(), func(c *Config) { c.ReopenBackoff = 0 })
	for i := range 10 {
		if _, _, err := s.Update(tk(fmt.Sprint("k", i)), write("n1", "v")); err != nil {
			t.Fatal(err)
		}
	}
	rows := 0
	err := s.Scan(0, math.MaxUint64, func(uint64, []byte, []byte) error {
		rows++
		s.fail(errors.New("test failure"))
		return nil
	})
	if !errors.Is(err, ErrFailed) || rows != 1 {
		t.Fatalf("Scan over a failing store: %v after %d rows, want ErrFailed after 1", err, rows)
	}
}
