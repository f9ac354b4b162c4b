package handoff

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/store"
)

// The transfer tests run in synctest bubbles on the real clock: time is
// simulated, and it moves only when every goroutine of the bubble is
// blocked, so a backoff or a rate-limit wait passes at once and exactly.

// xferConfig is a small test configuration: 4 partitions, small batches,
// no rate limit.
func xferConfig() TransferConfig {
	cfg := DefaultConfig().Transfers
	cfg.Partitions = 4
	cfg.MaxKeys = 7
	cfg.BatchBytes = 1 << 20
	cfg.BytesPerSecond = 0
	return cfg
}

// xferRig is a Transfers over a fake local store, pulling from fake
// sources n1 and n2 that hold the same data.
type xferRig struct {
	t     *testing.T
	cfg   TransferConfig
	local *xferFakeStore
	src   *xferFakeSource
	data  *xferData
	tr    *Transfers

	mu       sync.Mutex
	finished map[int]int // partition -> successful Finish calls
	finishes map[int]int // partition -> Finish calls
	// finishErr, when set, fails Finish for the partitions it returns an
	// error for.
	finishErr func(p int, n int) error
}

func newXferRig(t *testing.T, n int, mutate func(*TransferConfig)) *xferRig {
	t.Helper()
	cfg := xferConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	x := &xferRig{t: t, cfg: cfg, local: newXferFakeStore(), finished: map[int]int{}, finishes: map[int]int{}}
	remote := newXferFakeStore()
	x.data = newXferData(t, cfg, remote, n)
	x.src = newXferFakeSource(cfg)
	x.src.add("n1", remote)
	x.src.add("n2", remote)
	x.tr = x.open()
	return x
}

// open builds and starts a Transfers over the rig's local store; the
// test's cleanup closes it.
func (x *xferRig) open() *Transfers {
	x.t.Helper()
	cfg := x.cfg
	if cfg.Finish == nil {
		cfg.Finish = x.finish
	}
	tr, err := NewTransfers(cfg, x.local, x.src, clock.Real(), zerolog.Nop())
	if err != nil {
		x.t.Fatal(err)
	}
	tr.Start()
	x.t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func (x *xferRig) finish(ctx context.Context, p int, sources []string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.finishes[p]++
	if x.finishErr != nil {
		if err := x.finishErr(p, x.finishes[p]); err != nil {
			return err
		}
	}
	x.finished[p]++
	return nil
}

func (x *xferRig) finishCalls(p int) (calls, ok int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.finishes[p], x.finished[p]
}

// status returns partition p's status.
func status(t *testing.T, tr *Transfers, p int) Status {
	t.Helper()
	for _, s := range tr.Progress() {
		if s.Partition == p {
			return s
		}
	}
	t.Fatalf("partition %d not in progress %+v", p, tr.Progress())
	return Status{}
}

// gains returns gains of partitions ps from sources.
func gains(sources []string, ps ...int) []Gain {
	var out []Gain
	for _, p := range ps {
		out = append(out, Gain{Partition: p, Sources: sources})
	}
	return out
}

// scansFor is how many scans n records take in batches of batch: the
// last batch is the one that finds no row after it.
func scansFor(n, batch int) int { return max(1, (n+batch-1)/batch) }

// firstScans counts partition p's scans from its start.
func firstScans(calls []xferCall) int {
	n := 0
	for _, c := range calls {
		if !c.req.After.Started && c.err == nil {
			n++
		}
	}
	return n
}

func TestTransfersStreamPartitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newXferRig(t, 400, nil)
		if !x.tr.Done(0) {
			t.Fatal("nothing to do is not done")
		}
		x.tr.Set(7, gains([]string{"n1"}, 1, 3), nil)
		if x.tr.Done(7) {
			t.Fatal("done before any work")
		}
		synctest.Wait()
		if !x.tr.Done(7) || x.tr.Done(8) {
			t.Fatalf("Done(7) = %v, Done(8) = %v; progress %+v", x.tr.Done(7), x.tr.Done(8), x.tr.Progress())
		}
		x.data.check(t, x.local, nil, 1, 3)
		var keys, bytes int
		for _, p := range []int{1, 3} {
			s := status(t, x.tr, p)
			want := len(x.data.keys[p])
			if s.State != StateDone || s.Source != "n1" || s.Keys != int64(want) || s.Bytes != int64(x.data.bytes(p)) || s.Started.IsZero() {
				t.Errorf("partition %d: %+v, want done with %d keys from n1", p, s, want)
			}
			calls := x.src.served(p)
			if wantCalls := scansFor(want, x.cfg.MaxKeys); len(calls) != wantCalls {
				t.Errorf("partition %d: %d scans for %d keys in batches of %d", p, len(calls), want, x.cfg.MaxKeys)
			}
			if n, ok := x.finishCalls(p); n != 1 || ok != 1 {
				t.Errorf("partition %d: Finish called %d times", p, n)
			}
			keys += want
			bytes += x.data.bytes(p)
		}
		m := x.tr.Metrics()
		if m.Partitions != 2 || m.PartitionsDone != 2 || m.Keys != uint64(keys) || m.Merged != uint64(keys) || m.Bytes != uint64(bytes) || m.ScanErrors != 0 {
			t.Fatalf("metrics %+v, want %d keys, %d bytes", m, keys, bytes)
		}
	})
}

// A source that fails is skipped for the next one; when all fail the
// partition waits RetryMin and tries again.
func TestTransfersSourceFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newXferRig(t, 200, nil)
		boom := errors.New("connection refused")
		x.src.setDown("n1", boom)
		x.tr.Set(1, gains([]string{"n1", "n2"}, 2), nil)
		synctest.Wait()
		if !x.tr.Done(1) {
			t.Fatalf("not done: %+v", x.tr.Progress())
		}
		x.data.check(t, x.local, nil, 2)
		if s := status(t, x.tr, 2); s.Source != "n2" {
			t.Fatalf("streamed from %q, want n2", s.Source)
		}
		// n1 was tried once: the source that answered is asked first
		// after that.
		down := 0
		for _, c := range x.src.served(2) {
			if c.node == "n1" {
				down++
			}
		}
		if m := x.tr.Metrics(); down != 1 || m.ScanErrors != 1 {
			t.Fatalf("n1 asked %d times, %d scan errors; want 1 and 1", down, m.ScanErrors)
		}

		// Every source down: the partition fails and is retried.
		x.src.setDown("n2", boom)
		start := time.Now()
		x.tr.Set(2, gains([]string{"n1", "n2"}, 0), nil)
		synctest.Wait()
		s := status(t, x.tr, 0)
		if s.State != StateFailed || s.Error == "" || x.tr.Metrics().PartitionsFailed != 1 {
			t.Fatalf("status %+v, want failed with an error", s)
		}
		time.Sleep(x.cfg.RetryMin) // the first retry: fails again
		synctest.Wait()
		if got := len(x.src.served(0)); got != 4 {
			t.Fatalf("%d scans after one retry, want 4", got)
		}
		x.src.setDown("n1", nil)
		time.Sleep(2 * x.cfg.RetryMin) // the backoff doubled
		synctest.Wait()
		if !x.tr.Done(2) {
			t.Fatalf("not done after the sources came back: %+v", x.tr.Progress())
		}
		if took := time.Since(start); took != 3*x.cfg.RetryMin {
			t.Fatalf("done after %v, want %v", took, 3*x.cfg.RetryMin)
		}
		if s := status(t, x.tr, 0); s.State != StateDone || s.Source != "n1" || s.Error == "" {
			t.Fatalf("status %+v, want done from n1, the last error kept", s)
		}
		x.data.check(t, x.local, nil, 0, 2)
	})
}

// liar answers for node liar with its records reversed.
type liar struct{ Source }

func (l liar) Scan(ctx context.Context, node string, req *ScanRequest) (*ScanResponse, error) {
	if node != "liar" {
		return l.Source.Scan(ctx, node, req)
	}
	resp, err := l.Source.Scan(ctx, "n1", req)
	if err == nil {
		slices.Reverse(resp.Records)
	}
	return resp, err
}

// A source that breaks the protocol is failed over, and nothing it sent is
// merged.
func TestTransfersBadResponseFailsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newXferRig(t, 200, nil)
		cfg := x.cfg
		cfg.Finish = nil
		tr, err := NewTransfers(cfg, x.local, liar{x.src}, clock.Real(), zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		tr.Start()
		defer tr.Close()
		tr.Set(1, gains([]string{"liar", "n2"}, 1), nil)
		synctest.Wait()
		if !tr.Done(1) {
			t.Fatalf("not done: %+v", tr.Progress())
		}
		x.data.check(t, x.local, nil, 1)
		if m := tr.Metrics(); m.ScanErrors != 1 || m.Merged != uint64(len(x.data.keys[1])) {
			t.Fatalf("metrics %+v", m)
		}
	})
}

// The byte rate limit holds on simulated time.
func TestTransfersRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate, burst = 20_000.0, 2_000.0
		x := newXferRig(t, 1000, func(c *TransferConfig) {
			c.BytesPerSecond, c.ByteBurst = rate, burst
			c.Parallel = 4
		})
		start := time.Now()
		x.tr.Set(1, gains([]string{"n1"}, 0, 1, 2, 3), nil)
		for !x.tr.Done(1) {
			time.Sleep(time.Millisecond)
		}
		took := time.Since(start)
		total := float64(x.tr.Metrics().Bytes)
		least := time.Duration((total - burst) / rate * float64(time.Second))
		t.Logf("%.0f bytes at %.0f B/s with a burst of %.0f: %v", total, rate, burst, took)
		if took < least || took > least+100*time.Millisecond {
			t.Fatalf("took %v, want about %v", took, least)
		}
		x.data.check(t, x.local, nil, 0, 1, 2, 3)
	})
}

// A new plan that still gains a partition keeps its progress: the stream
// goes on from its cursor, with the new sources.
func TestTransfersSetKeepsProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newXferRig(t, 400, func(c *TransferConfig) { c.Parallel = 1 })
		gate := make(chan struct{})
		var mu sync.Mutex
		calls := 0
		x.src.hook = func(ctx context.Context, node string, req *ScanRequest) error {
			mu.Lock()
			calls++
			n := calls
			mu.Unlock()
			if n == 4 { // partition 1's fourth batch waits
				select {
				case <-gate:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		}
		x.tr.Set(1, gains([]string{"n1"}, 1), nil)
		synctest.Wait()
		if s := status(t, x.tr, 1); s.State != StateStreaming || s.Keys != int64(3*x.cfg.MaxKeys) {
			t.Fatalf("status %+v, want streaming after 3 batches", s)
		}
		// The membership changes again: partition 1 is still gained
		// (now from n2), partition 2 is new.
		x.tr.Set(2, append(gains([]string{"n2"}, 1), gains([]string{"n1"}, 2)...), nil)
		close(gate)
		synctest.Wait()
		if !x.tr.Done(2) || x.tr.Done(1) {
			t.Fatalf("Done(2) = %v, Done(1) = %v", x.tr.Done(2), x.tr.Done(1))
		}
		x.data.check(t, x.local, nil, 1, 2)
		served := x.src.served(1)
		if n := firstScans(served); n != 1 {
			t.Fatalf("partition 1 started %d times, want once", n)
		}
		if want := scansFor(len(x.data.keys[1]), x.cfg.MaxKeys); len(served) != want {
			t.Fatalf("partition 1: %d scans, want %d", len(served), want)
		}
		if last := served[len(served)-1]; last.node != "n2" {
			t.Fatalf("partition 1 ended on %s, want the new source n2", last.node)
		}
	})
}

// A partition no longer gained is dropped with its persisted progress;
// gained again later, it starts over.
func TestTransfersSetDrops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newXferRig(t, 200, nil)
		x.tr.Set(1, gains([]string{"n1"}, 1, 2), nil)
		synctest.Wait()
		if b, err := x.local.GetMeta(progressMeta(2)); err != nil || len(b) == 0 {
			t.Fatalf("partition 2's progress: %v, %d bytes", err, len(b))
		}
		x.tr.Set(2, gains([]string{"n1"}, 1), nil)
		if got := x.tr.Progress(); len(got) != 1 || got[0].Partition != 1 || got[0].State != StateDone {
			t.Fatalf("progress %+v, want partition 1 done only", got)
		}
		if b, err := x.local.GetMeta(progressMeta(2)); err != nil || len(b) != 0 {
			t.Fatalf("dropped partition 2's progress: %v, %d bytes; want cleared", err, len(b))
		}
		if !x.tr.Done(2) {
			t.Fatal("plan 2 not done")
		}
		x.tr.Set(3, gains([]string{"n1"}, 1, 2), nil)
		synctest.Wait()
		if n := firstScans(x.src.served(2)); n != 2 {
			t.Fatalf("partition 2 started %d times, want twice", n)
		}
		if _, ok := x.finishCalls(1); ok != 1 {
			t.Fatalf("partition 1 finished %d times, want once", ok)
		}
		x.tr.Set(0, nil, nil)
		if !x.tr.Done(0) || len(x.tr.Progress()) != 0 {
			t.Fatalf("no gains: Done(0) = %v, progress %+v", x.tr.Done(0), x.tr.Progress())
		}
	})
}

// Stopped mid-partition, a new Transfers over the same store resumes from
// the last persisted cursor; a finished partition is not streamed again.
func TestTransfersResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newXferRig(t, 400, func(c *TransferConfig) { c.Parallel = 1 })
		var mu sync.Mutex
		calls, stopAt := 0, 5
		x.src.hook = func(ctx context.Context, node string, req *ScanRequest) error {
			mu.Lock()
			calls++
			n := calls
			mu.Unlock()
			if n == stopAt {
				<-ctx.Done() // the process stops during this scan
				return ctx.Err()
			}
			return nil
		}
		x.tr.Set(1, gains([]string{"n1"}, 3), nil)
		synctest.Wait()
		before := status(t, x.tr, 3)
		if before.Keys != int64(4*x.cfg.MaxKeys) {
			t.Fatalf("status %+v, want 4 batches in", before)
		}
		if err := x.tr.Close(); err != nil {
			t.Fatal(err)
		}

		y := x.open()
		y.Set(1, gains([]string{"n1"}, 3), nil)
		synctest.Wait()
		if !y.Done(1) {
			t.Fatalf("not done after the restart: %+v", y.Progress())
		}
		x.data.check(t, x.local, nil, 3)
		served := x.src.served(3)
		if n := firstScans(served); n != 1 {
			t.Fatalf("partition 3 started %d times, want once", n)
		}
		got := 0
		for _, c := range served {
			got += c.bytes
		}
		if got != x.data.bytes(3) {
			t.Fatalf("%d bytes served for a partition of %d: not resumed", got, x.data.bytes(3))
		}
		if s := status(t, y, 3); s.Keys != int64(len(x.data.keys[3])) || s.Bytes != int64(x.data.bytes(3)) {
			t.Fatalf("status after resume %+v: the figures should carry over", s)
		}

		// Done is persisted: the same plan needs no scan and no Finish.
		scans := len(served)
		if err := y.Close(); err != nil {
			t.Fatal(err)
		}
		z := x.open()
		z.Set(1, gains([]string{"n1"}, 3), nil)
		synctest.Wait()
		if !z.Done(1) || len(x.src.served(3)) != scans {
			t.Fatalf("done %v after %d more scans", z.Done(1), len(x.src.served(3))-scans)
		}
		if n, _ := x.finishCalls(3); n != 1 {
			t.Fatalf("Finish called %d times, want once", n)
		}
		// Under another plan a done partition is finished again (it may
		// have been lost and regained meanwhile), but not streamed.
		if err := z.Close(); err != nil {
			t.Fatal(err)
		}
		w := x.open()
		w.Set(2, gains([]string{"n1"}, 3), nil)
		synctest.Wait()
		if n, _ := x.finishCalls(3); !w.Done(2) || n != 2 || len(x.src.served(3)) != scans {
			t.Fatalf("done %v, %d Finish calls, %d more scans", w.Done(2), n, len(x.src.served(3))-scans)
		}
	})
}

// A failed Finish is retried after the backoff, without streaming again.
func TestTransfersFinishRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newXferRig(t, 100, nil)
		x.finishErr = func(p, n int) error {
			if n == 1 {
				return errors.New("merkle exchange with n1 failed")
			}
			return nil
		}
		x.tr.Set(1, gains([]string{"n1"}, 0), nil)
		synctest.Wait()
		s := status(t, x.tr, 0)
		if s.State != StateFailed || s.Error == "" || x.tr.Metrics().FinishErrors != 1 {
			t.Fatalf("status %+v, metrics %+v; want failed in Finish", s, x.tr.Metrics())
		}
		scans := len(x.src.served(0))
		time.Sleep(x.cfg.RetryMin)
		synctest.Wait()
		if !x.tr.Done(1) {
			t.Fatalf("not done after the retry: %+v", x.tr.Progress())
		}
		if n, ok := x.finishCalls(0); n != 2 || ok != 1 || len(x.src.served(0)) != scans {
			t.Fatalf("Finish called %d times (%d ok), %d scans after the first try", n, ok, len(x.src.served(0))-scans)
		}
	})
}

// Records whose key or set does not decode are counted and skipped; keys
// this node does not keep are skipped, not merged.
func TestTransfersUndecodableAndKeep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newXferRig(t, 300, nil)
		remote := x.src.nodes["n1"].(*xferFakeStore)
		lo, _ := x.cfg.PartitionRange(1)
		remote.put(lo, []byte{0xff}, store.EncodeSet(hintSet(t, "n9", "bad key"))) // a length prefix that does not parse
		remote.put(lo+1, store.EncodeKey([]byte("b"), []byte("garbage0")), []byte{0x01, 0xc1})
		kept := 0
		keep := func(k []byte) bool {
			_, key, err := store.DecodeKey(k)
			return err == nil && key[len(key)-1]%2 == 0
		}
		for _, k := range x.data.keys[1] {
			if keep(k) {
				kept++
			}
		}
		x.tr.Set(1, gains([]string{"n1"}, 1), keep)
		synctest.Wait()
		if !x.tr.Done(1) {
			t.Fatalf("not done: %+v", x.tr.Progress())
		}
		x.data.check(t, x.local, keep, 1)
		s := status(t, x.tr, 1)
		all := len(x.data.keys[1])
		if s.Undecodable != 2 || s.Skipped != int64(all-kept) || s.Keys != int64(all+2) {
			t.Fatalf("status %+v: want 2 undecodable, %d skipped, %d keys", s, all-kept, all+2)
		}
		if m := x.tr.Metrics(); m.Merged != uint64(kept) || m.Undecodable != 2 || m.Skipped != uint64(all-kept) {
			t.Fatalf("metrics %+v", m)
		}
	})
}

// A local store failure fails the attempt; the retry picks up from the
// last persisted cursor.
func TestTransfersStoreFailureRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newXferRig(t, 200, nil)
		var mu sync.Mutex
		failing := true
		merges := 0
		x.local.onMerge = func([]byte) error {
			mu.Lock()
			defer mu.Unlock()
			merges++
			if failing && merges == 10 {
				return errors.New("disk full")
			}
			return nil
		}
		x.tr.Set(1, gains([]string{"n1"}, 2), nil)
		synctest.Wait()
		if s := status(t, x.tr, 2); s.State != StateFailed || s.Keys != int64(x.cfg.MaxKeys) {
			t.Fatalf("status %+v, want failed after one batch", s)
		}
		mu.Lock()
		failing = false
		mu.Unlock()
		time.Sleep(x.cfg.RetryMin)
		synctest.Wait()
		if !x.tr.Done(1) || x.tr.Metrics().StoreErrors != 1 {
			t.Fatalf("done %v, metrics %+v", x.tr.Done(1), x.tr.Metrics())
		}
		x.data.check(t, x.local, nil, 2)
		if n := firstScans(x.src.served(2)); n != 1 {
			t.Fatalf("partition 2 started %d times, want once", n)
		}
	})
}

func TestTransfersLifecycle(t *testing.T) {
	cfg := xferConfig()
	src := newXferFakeSource(cfg)
	st := newXferFakeStore()
	for _, bad := range []struct {
		st  TransferStore
		src Source
		clk clock.Clock
	}{{nil, src, clock.NewFake()}, {st, nil, clock.NewFake()}, {st, src, nil}} {
		if _, err := NewTransfers(cfg, bad.st, bad.src, bad.clk, zerolog.Nop()); !errors.Is(err, ErrConfig) {
			t.Errorf("missing dependency: %v", err)
		}
	}
	cfg.Parallel = 0
	if _, err := NewTransfers(cfg, st, src, clock.NewFake(), zerolog.Nop()); !errors.Is(err, ErrConfig) {
		t.Errorf("bad config: %v", err)
	}
	cfg.Parallel = 2
	tr, err := NewTransfers(cfg, st, src, clock.NewFake(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	// Close without Start, twice; Start after Close runs nothing.
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	tr.Start()
	tr.Set(1, gains([]string{"n1"}, 0, 9, -1), nil) // 9 and -1 are out of range
	if got := tr.Progress(); len(got) != 1 || got[0].State != StateQueued {
		t.Fatalf("progress %+v, want partition 0 queued", got)
	}

	tr, err = NewTransfers(cfg, st, src, clock.NewFake(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	tr.Start()
	tr.Start()
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestTransferConfigValidate(t *testing.T) {
	valid := DefaultConfig().Transfers
	if err := valid.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	tests := []struct {
		name string
		mut  func(*TransferConfig)
	}{
		{"zero partitions", func(c *TransferConfig) { c.Partitions = 0 }},
		{"partitions not a power of two", func(c *TransferConfig) { c.Partitions = 100 }},
		{"too many partitions", func(c *TransferConfig) { c.Partitions = 1 << 17 }},
		{"zero parallel", func(c *TransferConfig) { c.Parallel = 0 }},
		{"negative rate", func(c *TransferConfig) { c.BytesPerSecond = -1 }},
		{"negative burst", func(c *TransferConfig) { c.ByteBurst = -1 }},
		{"zero batch bytes", func(c *TransferConfig) { c.BatchBytes = 0 }},
		{"zero max keys", func(c *TransferConfig) { c.MaxKeys = 0 }},
		{"zero serve bytes", func(c *TransferConfig) { c.ServeMaxBytes = 0 }},
		{"zero serve keys", func(c *TransferConfig) { c.ServeMaxKeys = 0 }},
		{"zero retry", func(c *TransferConfig) { c.RetryMin = 0 }},
		{"retry max below min", func(c *TransferConfig) { c.RetryMax = c.RetryMin / 2 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.mut(&c)
			if err := c.Validate(); !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate = %v, want ErrConfig", err)
			}
			whole := DefaultConfig()
			whole.Transfers = c
			if err := whole.Validate(); !errors.Is(err, ErrConfig) {
				t.Fatalf("Config.Validate = %v, want ErrConfig", err)
			}
		})
	}
	// Partition ranges tile the hash space.
	for _, q := range []int{1, 2, 256, 1 << 16} {
		c := valid
		c.Partitions = q
		var next uint64
		for p := range q {
			lo, hi := c.PartitionRange(p)
			if lo != next || hi < lo {
				t.Fatalf("Q=%d: partition %d is [%#x, %#x], want it to start at %#x", q, p, lo, hi, next)
			}
			next = hi + 1
		}
		if next != 0 {
			t.Fatalf("Q=%d: the last partition ends at %#x", q, next-1)
		}
	}
}
