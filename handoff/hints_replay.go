package handoff

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/quorumkv/quorumkv/version"
)

// errHintBatchFull stops a ScanHints once a batch is collected.
var errHintBatchFull = errors.New("handoff: hint batch full")

// hintEntry is one hint read from the store, owned by the replay.
type hintEntry struct {
	k    []byte
	set  version.Set
	size int64
}

// loop runs a round every Interval and on Kick until Close.
func (h *Hints) loop() {
	defer h.wg.Done()
	defer h.ticker.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-h.ticker.C():
		case <-h.kick:
		}
		h.round()
		if h.hooks.roundDone != nil {
			h.hooks.roundDone()
		}
	}
}

// round starts a pass for every owner that has hints, is trusted and is
// not being replayed, up to MaxConcurrentOwners passes at once. Owners left
// out are picked up by a later round.
func (h *Hints) round() {
	owners := h.st.HintOwners()
	slices.Sort(owners)
	for _, owner := range owners {
		if h.ctx.Err() != nil {
			return
		}
		if !h.cfg.Available(owner) {
			continue
		}
		h.mu.Lock()
		if h.replaying[owner] || len(h.replaying) >= h.cfg.MaxConcurrentOwners {
			h.mu.Unlock()
			continue
		}
		h.replaying[owner] = true
		h.mu.Unlock()
		h.wg.Add(1)
		go h.pass(owner)
	}
}

// pass replays owner's hints batch by batch until none is left, the owner
// is no longer trusted, a batch fails or makes no progress, or Close.
func (h *Hints) pass(owner string) {
	defer h.wg.Done()
	total := 0
	var err error
	defer func() {
		failed := err != nil && h.ctx.Err() == nil
		h.mu.Lock()
		delete(h.replaying, owner)
		h.countLocked(owner, func(c *hintCounters) { c.passes++ })
		oc := h.owners[owner]
		wasFailing := oc.failing
		oc.failing = failed
		h.mu.Unlock()
		switch {
		case failed && !wasFailing:
			h.log.Warn().Err(err).Str("owner", owner).Int("replayed", total).Msg("hint replay failed; retrying every interval")
		case failed:
			h.log.Debug().Err(err).Str("owner", owner).Int("replayed", total).Msg("hint replay failed again")
		case total > 0 || wasFailing:
			h.log.Info().Str("owner", owner).Int("replayed", total).Msg("hints replayed")
		}
		if h.hooks.passDone != nil {
			h.hooks.passDone(owner, total, err)
		}
	}()
	for h.ctx.Err() == nil && h.cfg.Available(owner) {
		var batch []hintEntry
		batch, err = h.readBatch(owner)
		if err != nil || len(batch) == 0 {
			return
		}
		var deleted int
		deleted, err = h.deliverBatch(owner, batch)
		total += deleted
		if err != nil {
			return
		}
		if deleted == 0 {
			// Every hint of the batch changed while it was delivered
			// (or the store keeps refusing the delete). Leave the rest
			// to the next round rather than spinning.
			return
		}
	}
}

// readBatch reads up to BatchSize of owner's hints. It rescans from the
// start each time: replayed hints are gone, and the ones that changed
// during their delivery come first again, as they should.
func (h *Hints) readBatch(owner string) ([]hintEntry, error) {
	batch := make([]hintEntry, 0, h.cfg.BatchSize)
	err := h.st.ScanHints(owner, func(k []byte, set version.Set) error {
		k = bytes.Clone(k)
		set = set.Clone()
		batch = append(batch, hintEntry{k: k, set: set, size: hintSize(owner, k, set)})
		if len(batch) >= h.cfg.BatchSize {
			return errHintBatchFull
		}
		return nil
	})
	if err != nil && !errors.Is(err, errHintBatchFull) {
		return nil, err
	}
	return batch, nil
}

// deliverBatch delivers a batch with up to DeliverConcurrency calls in
// flight and deletes each acknowledged hint. The first failure cancels the
// rest of the batch. It returns how many hints were deleted.
func (h *Hints) deliverBatch(owner string, batch []hintEntry) (int, error) {
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex // guards deleted and firstErr
		deleted  int
		firstErr error
	)
	sem := make(chan struct{}, h.cfg.DeliverConcurrency)
	for _, e := range batch {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ok, err := h.replayHint(ctx, owner, e)
			mu.Lock()
			defer mu.Unlock()
			if ok {
				deleted++
			}
			if err != nil && firstErr == nil {
				firstErr = err
				cancel()
			}
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = h.ctx.Err()
	}
	return deleted, firstErr
}

// replayHint waits for the rate limiter, delivers one hint and deletes it
// if it is unchanged. It reports whether the hint was deleted.
func (h *Hints) replayHint(ctx context.Context, owner string, e hintEntry) (bool, error) {
	if err := h.lim.wait(ctx, e.size); err != nil {
		return false, err
	}
	if err := h.cfg.Deliver(ctx, owner, e.k, e.set); err != nil {
		if ctx.Err() == nil { // not a cancellation by Close or a sibling failure
			h.count(owner, func(c *hintCounters) { c.replayFailures++ })
		}
		return false, err
	}
	h.count(owner, func(c *hintCounters) { c.delivered++ })
	// The owner has the set now: delete the hint even if ctx is done.
	ok, err := h.st.DeleteHint(owner, e.k, e.set)
	switch {
	case err != nil:
		h.count(owner, func(c *hintCounters) { c.replayFailures++ })
		return false, err
	case ok:
		h.count(owner, func(c *hintCounters) { c.replayed++ })
	default:
		// Merged with a newer write during delivery: kept, and replayed
		// again by a later batch.
		h.count(owner, func(c *hintCounters) { c.superseded++ })
	}
	return ok, nil
}
