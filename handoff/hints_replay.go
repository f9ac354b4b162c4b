package handoff

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/quorumkv/quorumkv/version"
)

// errHintBatchFull stops a ScanHints once a batch is collected.
var errHintBatchFull = errors.New("handoff: hint batch full")

// errNoReplicas fails the retargeting of a hint whose key has no replica
// but its old owner: the hint stays until the ring has one.
var errNoReplicas = errors.New("handoff: no replicas to retarget a hint to")

// passMode is what a pass does with an owner's hints.
type passMode int

const (
	// modeWait leaves the hints: the owner is a member and is down.
	modeWait passMode = iota
	// modeDeliver delivers the hints to their owner, which is trusted.
	modeDeliver
	// modeRetarget delivers the hints to their keys' replicas: the owner
	// is no longer a member.
	modeRetarget
	// modeRehome sends the hints to another node: this node is leaving
	// and the owner is down.
	modeRehome
)

func (m passMode) String() string {
	switch m {
	case modeDeliver:
		return "deliver"
	case modeRetarget:
		return "retarget"
	case modeRehome:
		return "rehome"
	default:
		return "wait"
	}
}

// modeFor decides what to do with owner's hints now. It is asked again
// before every batch, so a pass follows the owner's changes.
func (h *Hints) modeFor(owner string) passMode {
	switch {
	case h.cfg.Member != nil && !h.cfg.Member(owner):
		return modeRetarget
	case h.cfg.Available(owner):
		return modeDeliver
	case h.cfg.Rehome != nil && h.isEvacuating():
		return modeRehome
	}
	return modeWait
}

func (h *Hints) isEvacuating() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.evacuating
}

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

// round starts a pass for every owner that has hints, is not being
// replayed and whose hints can go somewhere (modeFor), up to
// MaxConcurrentOwners passes at once. Owners left out are picked up by a
// later round.
func (h *Hints) round() {
	owners := h.st.HintOwners()
	slices.Sort(owners)
	for _, owner := range owners {
		if h.ctx.Err() != nil {
			return
		}
		if h.modeFor(owner) == modeWait {
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

// pass replays owner's hints batch by batch until none is left, they have
// nowhere to go (modeWait), a batch fails or makes no progress, or Close.
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
	for h.ctx.Err() == nil {
		mode := h.modeFor(owner)
		if mode == modeWait {
			return
		}
		var batch []hintEntry
		batch, err = h.readBatch(owner)
		if err != nil || len(batch) == 0 {
			return
		}
		var deleted int
		deleted, err = h.deliverBatch(owner, batch, h.handler(mode))
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
		k = bytes.Clone(k) // the set is ours (HintStore.ScanHints)
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

// hintHandler moves one hint of owner away and deletes it if it is
// unchanged; it reports whether it deleted the hint.
type hintHandler func(ctx context.Context, owner string, e hintEntry) (bool, error)

// handler returns the hintHandler of a mode other than modeWait.
func (h *Hints) handler(mode passMode) hintHandler {
	switch mode {
	case modeRetarget:
		return h.retargetHint
	case modeRehome:
		return h.rehomeHint
	default:
		return h.replayHint
	}
}

// deliverBatch runs handle on a batch with up to DeliverConcurrency calls
// in flight. The first failure cancels the rest of the batch. It returns
// how many hints were deleted.
func (h *Hints) deliverBatch(owner string, batch []hintEntry, handle hintHandler) (int, error) {
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
			ok, err := handle(ctx, owner, e)
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
	if err := h.lim.wait(ctx, 1, float64(e.size)); err != nil {
		return false, err
	}
	if err := h.cfg.Deliver(ctx, owner, e.k, e.set); err != nil {
		if h.keptTooLarge(owner, err) {
			return false, nil
		}
		if ctx.Err() == nil { // not a cancellation by Close or a sibling failure
			h.count(owner, func(c *hintCounters) { c.replayFailures++ })
		}
		return false, err
	}
	h.count(owner, func(c *hintCounters) { c.delivered++ })
	// The owner has the set now: delete the hint even if ctx is done.
	return h.deleteMoved(owner, e, func(c *hintCounters) { c.replayed++ })
}

// keptTooLarge reports whether a delivery failed because the receiver
// refused to merge the hint, its key's siblings being too large together
// (version.ErrTooLarge), or its versions implausible (version.ErrImplausible). Such a hint is kept and counted, and the pass goes
// on with the owner's other hints: the receiver will take it once a client
// has resolved the key, and one stuck key must not hold back the others.
func (h *Hints) keptTooLarge(owner string, err error) bool {
	if errors.Is(err, version.ErrImplausible) {
		// Only a hint stored before receivers checked versions can be
		// refused so: it is kept (never dropped silently) and passed
		// over, so that it does not hold back the owner's other hints.
		h.count(owner, func(c *hintCounters) { c.deliveriesImplausible++ })
		h.log.Warn().Str("owner", owner).Err(err).Msg("hint refused by its receiver as an implausible version; kept, and passed over")
		return true
	}
	if !errors.Is(err, version.ErrTooLarge) {
		return false
	}
	h.count(owner, func(c *hintCounters) { c.deliveriesTooLarge++ })
	h.log.Debug().Str("owner", owner).Err(err).Msg("hint refused as too large by its receiver; kept until the key is resolved")
	return true
}

// retargetHint hands a hint of owner, which is no longer a member, to every
// replica of its key: delivered to those that are available, kept here as
// a hint for the others (or, while evacuating, rehomed for them), and then
// deleted if it is unchanged. A failure leaves the hint for a later round,
// which repeats the harmless deliveries.
func (h *Hints) retargetHint(ctx context.Context, owner string, e hintEntry) (bool, error) {
	fail := func(err error) (bool, error) {
		if ctx.Err() == nil {
			h.count(owner, func(c *hintCounters) { c.replayFailures++ })
		}
		return false, err
	}
	replicas := slices.DeleteFunc(slices.Clone(h.cfg.Replicas(e.k)), func(r string) bool { return r == owner })
	slices.Sort(replicas)
	replicas = slices.Compact(replicas)
	if len(replicas) == 0 {
		return fail(fmt.Errorf("%w: %s's hint for %x", errNoReplicas, owner, e.k))
	}
	rehome := h.cfg.Rehome != nil && h.isEvacuating()
	for _, r := range replicas {
		switch {
		case h.cfg.Available(r):
			if err := h.lim.wait(ctx, 1, float64(e.size)); err != nil {
				return false, err
			}
			if err := h.cfg.Deliver(ctx, r, e.k, e.set); err != nil {
				if h.keptTooLarge(owner, err) {
					return false, nil
				}
				return fail(fmt.Errorf("retarget %s's hint to %s: %w", owner, r, err))
			}
			h.count(owner, func(c *hintCounters) { c.delivered++ })
		case rehome:
			if err := h.lim.wait(ctx, 1, float64(e.size)); err != nil {
				return false, err
			}
			if err := h.cfg.Rehome(ctx, r, e.k, e.set); err != nil {
				return fail(fmt.Errorf("rehome %s's hint for %s: %w", owner, r, err))
			}
		default:
			// No budget: the hint was kept for owner already, and
			// dropping it here would lose the write for r.
			if _, err := h.st.AddHint(r, e.k, e.set, 0, 0); err != nil {
				return fail(fmt.Errorf("keep %s's hint for %s: %w", owner, r, err))
			}
		}
	}
	return h.deleteMoved(owner, e, func(c *hintCounters) { c.retargeted++ })
}

// rehomeHint sends a hint of owner, which is down, to another node while
// this one evacuates, and deletes it if it is unchanged.
func (h *Hints) rehomeHint(ctx context.Context, owner string, e hintEntry) (bool, error) {
	if err := h.lim.wait(ctx, 1, float64(e.size)); err != nil {
		return false, err
	}
	if err := h.cfg.Rehome(ctx, owner, e.k, e.set); err != nil {
		if ctx.Err() == nil {
			h.count(owner, func(c *hintCounters) { c.replayFailures++ })
		}
		return false, fmt.Errorf("rehome hint for %s: %w", owner, err)
	}
	return h.deleteMoved(owner, e, func(c *hintCounters) { c.rehomed++ })
}

// deleteMoved deletes owner's hint e once its set is safe elsewhere, if it
// is unchanged, counting done on success. A hint merged with a newer write
// meanwhile is kept, counted as superseded, and moved again later.
func (h *Hints) deleteMoved(owner string, e hintEntry, done func(*hintCounters)) (bool, error) {
	ok, err := h.st.DeleteHint(owner, e.k, e.set)
	switch {
	case err != nil:
		h.count(owner, func(c *hintCounters) { c.replayFailures++ })
		return false, err
	case ok:
		h.count(owner, done)
	default:
		h.count(owner, func(c *hintCounters) { c.superseded++ })
	}
	return ok, nil
}
