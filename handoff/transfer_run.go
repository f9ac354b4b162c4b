package handoff

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/store"
)

// errDropped ends an attempt whose partition is no longer gained.
var errDropped = errors.New("handoff: partition no longer gained")

// errNoSources fails an attempt at a partition gained without sources.
var errNoSources = errors.New("handoff: no sources for the partition")

// worker runs attempts at ready partitions until Close.
func (t *Transfers) worker() {
	defer t.wg.Done()
	for {
		ps, ctx, ok := t.next()
		if !ok {
			return
		}
		t.attempt(ctx, ps)
	}
}

// next claims the first ready partition, in Set's order: one queued, or
// failed and past its backoff. It waits for one until Close, and reports
// false then.
func (t *Transfers) next() (*partition, context.Context, bool) {
	for {
		t.mu.Lock()
		if t.ctx.Err() != nil {
			t.mu.Unlock()
			return nil, nil, false
		}
		now := t.clk.Now()
		var pick *partition
		var wakeAt time.Time // the earliest backoff that ends
		ready := 0
		for _, p := range t.mu.order {
			ps := t.mu.parts[p]
			if ps.running {
				continue
			}
			switch ps.status.State {
			case StateQueued:
			case StateFailed:
				if now.Before(ps.notBefore) {
					if wakeAt.IsZero() || ps.notBefore.Before(wakeAt) {
						wakeAt = ps.notBefore
					}
					continue
				}
			default:
				continue
			}
			if pick == nil {
				pick = ps
			}
			ready++
		}
		if pick != nil {
			ctx, cancel := context.WithCancel(t.ctx)
			pick.running, pick.cancel = true, cancel
			t.mu.Unlock()
			if ready > 1 {
				t.signal() // another idle worker can take the next one
			}
			return pick, ctx, true
		}
		t.mu.Unlock()
		var (
			tm      clock.Timer
			timeout <-chan time.Time
		)
		if !wakeAt.IsZero() {
			tm = t.clk.NewTimer(wakeAt.Sub(now))
			timeout = tm.C()
		}
		select {
		case <-t.wake:
		case <-timeout:
		case <-t.ctx.Done():
		}
		if tm != nil {
			tm.Stop()
		}
	}
}

// attempt moves a claimed partition as far as it goes: load its
// progress, stream the rest, run Finish. A failure sets it to wait for a
// retry; a cancellation (Close, or Set dropping it) leaves it as it is.
func (t *Transfers) attempt(ctx context.Context, ps *partition) {
	defer func() {
		t.mu.Lock()
		ps.running = false
		ps.cancel()
		t.mu.Unlock()
		t.signal() // a partition may be ready again, or another one
	}()
	err := t.load(ps)
	if err == nil {
		err = t.stream(ctx, ps)
	}
	if err == nil {
		err = t.finish(ctx, ps)
	}
	if err != nil && ctx.Err() == nil && !errors.Is(err, errDropped) {
		t.fail(ps, err)
	}
}

// update applies f to ps's state if ps is still gained and stamps it.
func (t *Transfers) update(ps *partition, f func(ps *partition)) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.parts[ps.p] != ps {
		return false
	}
	f(ps)
	ps.status.Updated = t.clk.Now()
	if ps.status.Started.IsZero() {
		ps.status.Started = ps.status.Updated
	}
	return true
}

// load reads ps's persisted progress, once. A Done of the current plan
// makes the partition done; a Done of another plan only skips the stream
// (Finish runs again). Progress that does not decode is logged and
// ignored: the stream starts over, which merging makes harmless.
func (t *Transfers) load(ps *partition) error {
	t.mu.Lock()
	loaded := ps.loaded
	t.mu.Unlock()
	if loaded {
		return nil
	}
	b, err := t.st.GetMeta(progressMeta(ps.p))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.count(func(c *transferCounters) { c.storeErrors++ })
		return fmt.Errorf("read progress: %w", err)
	}
	pr, err := decodeProgress(b)
	if err != nil {
		t.log.Warn().Err(err).Int("partition", ps.p).Msg("unreadable transfer progress; streaming the partition again")
		pr = progress{}
	}
	if !t.update(ps, func(ps *partition) {
		ps.loaded = true
		ps.persisted = len(b) > 0
		ps.cursor, ps.streamed = pr.After, pr.Streamed
		s := &ps.status
		s.Keys, s.Bytes, s.Skipped, s.Undecodable = pr.Keys, pr.Bytes, pr.Skipped, pr.Undecodable
		if pr.Done && pr.Plan == t.mu.plan {
			s.State = StateDone
		}
	}) {
		return errDropped
	}
	return nil
}

// stream pulls ps's batches after its cursor until the source says Done.
func (t *Transfers) stream(ctx context.Context, ps *partition) error {
	lo, hi := t.cfg.PartitionRange(ps.p)
	for {
		var (
			req     = &ScanRequest{Partition: ps.p, MaxBytes: t.cfg.BatchBytes, MaxKeys: t.cfg.MaxKeys}
			sources []string
			first   int
			keep    func([]byte) bool
			skip    bool
		)
		if !t.update(ps, func(ps *partition) {
			if ps.streamed || ps.status.State == StateDone {
				skip = true
				return
			}
			ps.status.State = StateStreaming
			req.After = ps.cursor
			sources, first, keep = ps.sources, ps.next, t.mu.keep
		}) {
			return errDropped
		}
		if skip {
			return nil
		}
		resp, used, err := t.scan(ctx, ps, sources, first, req, lo, hi)
		if err != nil {
			return err
		}
		var b batch
		if err := t.mergeBatch(resp.Records, keep, &b); err != nil {
			return err
		}
		next := req.After
		if n := len(resp.Records); n > 0 {
			last := resp.Records[n-1]
			next = Cursor{Started: true, Hash: last.Hash, Key: bytes.Clone(last.Key)}
		}
		if err := t.persist(ps, func(pr *progress) {
			pr.After, pr.Streamed = next, resp.Done
			pr.Keys += b.keys
			pr.Bytes += b.bytes
			pr.Skipped += b.skipped
			pr.Undecodable += b.undecodable
		}); err != nil {
			return err
		}
		t.update(ps, func(ps *partition) {
			ps.cursor, ps.streamed = next, resp.Done
			ps.next, ps.failures = used, 0
			s := &ps.status
			s.Keys += b.keys
			s.Bytes += b.bytes
			s.Skipped += b.skipped
			s.Undecodable += b.undecodable
		})
		t.count(func(c *transferCounters) {
			c.keys += uint64(b.keys)
			c.bytes += uint64(b.bytes)
			c.merged += uint64(b.merged)
			c.skipped += uint64(b.skipped)
			c.undecodable += uint64(b.undecodable)
		})
		// Charge the batch before asking for the next one (or running
		// Finish, which moves data too).
		if err := t.lim.wait(ctx, float64(b.bytes)); err != nil {
			return err
		}
		if resp.Done {
			return nil
		}
	}
}

// batch counts one batch's records.
type batch struct {
	keys, bytes, merged, skipped, undecodable int64
}

// mergeBatch merges the records this node keeps into the store. A record
// whose key or set does not decode is counted and skipped; a store
// failure stops the batch (the records merged so far are merged again by
// the retry, harmlessly).
func (t *Transfers) mergeBatch(recs []Record, keep func([]byte) bool, b *batch) error {
	for _, r := range recs {
		b.keys++
		b.bytes += int64(recordSize(r.Key, r.Set))
		if _, _, err := store.DecodeKey(r.Key); err != nil {
			b.undecodable++
			continue
		}
		if keep != nil && !keep(r.Key) {
			b.skipped++
			continue
		}
		set, err := store.DecodeSet(r.Set)
		if err != nil {
			b.undecodable++
			continue
		}
		if _, _, err := t.st.Merge(r.Key, set); err != nil {
			t.count(func(c *transferCounters) { c.storeErrors++ })
			return fmt.Errorf("merge: %w", err)
		}
		b.merged++
	}
	return nil
}

// scan asks ps's sources for req in turn, from sources[first], and
// returns the first answer that keeps the protocol, with its source's
// index.
func (t *Transfers) scan(ctx context.Context, ps *partition, sources []string, first int, req *ScanRequest, lo, hi uint64) (*ScanResponse, int, error) {
	if len(sources) == 0 {
		return nil, 0, errNoSources
	}
	var errs []error
	for i := range sources {
		idx := (first + i) % len(sources)
		node := sources[idx]
		t.update(ps, func(ps *partition) { ps.status.Source = node })
		resp, err := t.src.Scan(ctx, node, req)
		if err == nil {
			err = checkResponse(req, resp, lo, hi)
		}
		t.count(func(c *transferCounters) { c.scans++ })
		if err == nil {
			return resp, idx, nil
		}
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		t.count(func(c *transferCounters) { c.scanErrors++ })
		t.log.Debug().Err(err).Int("partition", ps.p).Str("source", node).Msg("scan failed; trying the next source")
		errs = append(errs, fmt.Errorf("%s: %w", node, err))
	}
	return nil, 0, fmt.Errorf("every source failed: %w", errors.Join(errs...))
}

// checkResponse checks that resp keeps the protocol for req: records in
// the partition, strictly after the cursor and each other, within the key
// budget, and progress unless Done.
func checkResponse(req *ScanRequest, resp *ScanResponse, lo, hi uint64) error {
	if resp == nil {
		return fmt.Errorf("%w: no response", ErrBadResponse)
	}
	if len(resp.Records) > req.MaxKeys {
		return fmt.Errorf("%w: %d records for a budget of %d", ErrBadResponse, len(resp.Records), req.MaxKeys)
	}
	if len(resp.Records) == 0 && !resp.Done {
		return fmt.Errorf("%w: no records and not done", ErrBadResponse)
	}
	prev := req.After
	for _, r := range resp.Records {
		if r.Hash < lo || r.Hash > hi {
			return fmt.Errorf("%w: record hash %#x outside the partition", ErrBadResponse, r.Hash)
		}
		if !prev.before(r.Hash, r.Key) {
			return fmt.Errorf("%w: record (%#x, %x) out of order", ErrBadResponse, r.Hash, r.Key)
		}
		prev = Cursor{Started: true, Hash: r.Hash, Key: r.Key}
	}
	return nil
}

// persist writes ps's progress, as f changes it from the in-memory state,
// if ps is still gained. It runs after the batch's merges returned, so the
// cursor is never durable before the records it covers.
func (t *Transfers) persist(ps *partition, f func(pr *progress)) error {
	t.metaMu.Lock()
	defer t.metaMu.Unlock()
	var pr progress
	if !t.update(ps, func(ps *partition) {
		s := ps.status
		pr = progress{
			Plan: t.mu.plan, After: ps.cursor, Streamed: ps.streamed, Done: s.State == StateDone,
			Keys: s.Keys, Bytes: s.Bytes, Skipped: s.Skipped, Undecodable: s.Undecodable,
		}
		f(&pr)
		ps.persisted = true
	}) {
		return errDropped
	}
	if err := t.st.PutMeta(progressMeta(ps.p), encodeProgress(pr)); err != nil {
		t.count(func(c *transferCounters) { c.storeErrors++ })
		return fmt.Errorf("write progress: %w", err)
	}
	return nil
}

// finish runs Finish on a streamed partition and marks it done.
func (t *Transfers) finish(ctx context.Context, ps *partition) error {
	var sources []string
	skip := false
	if !t.update(ps, func(ps *partition) {
		if ps.status.State == StateDone {
			skip = true
			return
		}
		ps.status.State = StateFinishing
		sources = ps.sources
	}) {
		return errDropped
	}
	if skip {
		return nil
	}
	if t.cfg.Finish != nil {
		if err := t.cfg.Finish(ctx, ps.p, sources); err != nil {
			if ctx.Err() == nil {
				t.count(func(c *transferCounters) { c.finishErrors++ })
			}
			return fmt.Errorf("finish: %w", err)
		}
	}
	if err := t.persist(ps, func(pr *progress) { pr.Done = true }); err != nil {
		return err
	}
	var keys int64
	t.update(ps, func(ps *partition) {
		ps.status.State = StateDone
		ps.failures = 0
		keys = ps.status.Keys
	})
	t.log.Info().Int("partition", ps.p).Int64("keys", keys).Msg("partition transferred")
	return nil
}

// fail records a failed attempt: the partition waits RetryMin, doubled
// for every further failure in a row, up to RetryMax.
func (t *Transfers) fail(ps *partition, err error) {
	var failures int
	var wait time.Duration
	if !t.update(ps, func(ps *partition) {
		ps.failures++
		failures = ps.failures
		wait = t.cfg.RetryMin
		for i := 1; i < ps.failures && wait < t.cfg.RetryMax; i++ {
			wait *= 2
		}
		wait = min(wait, t.cfg.RetryMax)
		ps.notBefore = t.clk.Now().Add(wait)
		ps.status.State = StateFailed
		ps.status.Error = err.Error()
	}) {
		return
	}
	ev := t.log.Debug()
	if failures == 1 {
		ev = t.log.Warn()
	}
	ev.Err(err).Int("partition", ps.p).Int("failures", failures).Dur("retry_in", wait).Msg("partition transfer failed")
}
