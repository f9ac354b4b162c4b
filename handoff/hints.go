package handoff

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/version"
)

// HintStore is the durable hint storage Hints needs; *store.Store
// implements it. Hints are keyed by (owner, k); adding a hint for a key
// that already has one merges the two with version.Sync.
type HintStore interface {
	// AddHint durably stores set as a hint for owner, merging it into any
	// hint already held for k. With limit > 0 a hint that would grow
	// owner's hint bytes past limit is not stored (stored == false, no
	// error); one that does not grow them always is. With total > 0 a
	// hint that would grow the hint bytes of all owners together past
	// total is not stored either, and the error is store.ErrHintsFull.
	AddHint(owner string, k []byte, set version.Set, limit, total int64) (stored bool, err error)
	// ScanHints calls fn for every hint held for owner. fn must not retain
	// k; the set is fn's own (decoded for the call). An error from fn
	// stops the scan and is returned.
	ScanHints(owner string, fn func(k []byte, set version.Set) error) error
	// DeleteHint deletes owner's hint for k if it still equals replayed and
	// reports whether it did.
	DeleteHint(owner string, k []byte, replayed version.Set) (bool, error)
	// Hint returns the hint held for owner's key k, the zero Set if none.
	Hint(owner string, k []byte) (version.Set, error)
	// HintBytes returns the bytes of owner's pending hints.
	HintBytes(owner string) int64
	// HintOwners returns the owners that have pending hints.
	HintOwners() []string
}

// HintCounter is optionally implemented by a HintStore that keeps a
// per-owner count of pending hints. Without it Hints counts pending
// hints by scanning them, which costs time proportional to the hints.
type HintCounter interface {
	HintCount(owner string) int64
}

// Hints is hinted handoff: it stores hints for owners that are down and
// replays them, rate-limited, once the failure detector trusts the owner
// again. A hint is deleted only after its owner acknowledged it and only if
// it was not updated meanwhile. Hints of an owner that left the ring go to
// the key's replicas instead (HintConfig.Member), and a node that is
// leaving sends every hint away (Evacuate). Methods are safe for
// concurrent use.
type Hints struct {
	cfg HintConfig
	st  HintStore
	clk clock.Clock
	log zerolog.Logger
	lim *limiter

	ctx    context.Context    // cancelled by Close; parent of every pass
	cancel context.CancelFunc //
	stop   chan struct{}      // closed by Close: ends the loop
	kick   chan struct{}      // buffered 1: Kick's request for a round
	wg     sync.WaitGroup     // the loop and every replay pass

	startOnce sync.Once
	closeOnce sync.Once
	ticker    clock.Ticker // created by Start so no early tick is missed

	// hooks, set by tests before Start, observe the loop.
	hooks hintHooks

	mu sync.Mutex // guards the fields below
	// closed is set by Close; Store refuses hints afterwards.
	closed bool
	// evacuating is set by Evacuate: every hint must leave this node.
	evacuating bool
	// replaying holds the owners with a pass running.
	replaying map[string]bool
	// owners holds per-owner counters; totals hold their sums plus
	// counters that have no owner.
	owners map[string]*hintOwnerCounters
	totals hintCounters
}

// hintHooks observe the replay loop in tests.
type hintHooks struct {
	roundDone func()                                        // after each round of the loop
	passDone  func(owner string, progressed int, err error) // after each owner pass
}

// hintCounters are monotonic event counters.
type hintCounters struct {
	stored, overflowed, storeErrors                         uint64
	refusedNotMember, refusedFull, refusedTooLarge          uint64
	deliveriesTooLarge, deliveriesImplausible               uint64
	delivered, replayed, superseded, replayFailures, passes uint64
	retargeted, rehomed                                     uint64
}

type hintOwnerCounters struct {
	hintCounters
	// failing is set by a failed pass and cleared by a clean one, so a
	// flapping owner logs one warning per outage, not one per Interval.
	failing bool
}

// NewHints returns hinted handoff over st. Call Start to run replay.
func NewHints(cfg HintConfig, st HintStore, clk clock.Clock, log zerolog.Logger) (*Hints, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if st == nil || clk == nil {
		return nil, fmt.Errorf("%w: nil store or clock", ErrConfig)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Hints{
		cfg:       cfg,
		st:        st,
		clk:       clk,
		log:       log.With().Str("component", "handoff").Logger(),
		lim:       newHintLimiter(clk, cfg),
		ctx:       ctx,
		cancel:    cancel,
		stop:      make(chan struct{}),
		kick:      make(chan struct{}, 1),
		replaying: make(map[string]bool),
		owners:    make(map[string]*hintOwnerCounters),
	}, nil
}

// Start starts the replay loop. It is a no-op after the first call or after
// Close.
func (h *Hints) Start() {
	h.startOnce.Do(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.closed {
			return
		}
		h.ticker = h.clk.NewTicker(h.cfg.Interval)
		h.wg.Add(1)
		go h.loop()
	})
}

// Close stops the loop, cancels running replays and waits for them. A hint
// whose delivery was acknowledged is still deleted. Close is idempotent.
func (h *Hints) Close() error {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		h.mu.Unlock()
		h.cancel()
		close(h.stop)
	})
	h.wg.Wait()
	return nil
}

// Kick asks the loop to run a round now, e.g. when the failure detector
// starts trusting a node again. It never blocks.
func (h *Hints) Kick() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// Evacuate switches evacuation on or off. While it is on (the node is
// leaving the cluster) every hint must leave this node: hints of available
// owners are delivered as usual, and those of owners that are down are
// sent to another node with HintConfig.Rehome and deleted here. Turning it
// on runs a round at once. Outstanding tells when none is left.
func (h *Hints) Evacuate(on bool) {
	h.mu.Lock()
	h.evacuating = on
	h.mu.Unlock()
	if on {
		h.Kick()
	}
}

// Hint returns the hint held for owner's key k, the zero Set if none: what
// this node, as a fallback for owner, answers a sloppy read of k with
// (together with any data it holds for k).
func (h *Hints) Hint(owner string, k []byte) (version.Set, error) {
	return h.st.Hint(owner, k)
}

// Store keeps set as a durable hint for owner, the intended replica of k in
// partition. If the hint would take owner's pending hint bytes past
// MaxHintBytesPerOwner it is not kept: Store returns stored=false and a nil
// error, counts the overflow and calls Prioritize(partition) so
// anti-entropy repairs the owner instead. A hint that does not grow what is
// held for k (a tombstone replacing the value it deletes) is always kept,
// budget or not: refusing it would leave the superseded hint to be handed
// off, possibly after the key was reaped. If the store fails, Store also
// prioritizes the partition and returns the error. An empty set carries
// nothing to hand off: Store returns true and stores nothing.
//
// Store refuses, with a *RefusedError, a hint for an owner that is not a
// member (HintConfig.Member), counted in the totals only so that invented
// owners cost no memory, and a hint that would take this node's hints past
// MaxHintBytesTotal, for which it also prioritizes the partition. A hint
// whose merge would build a record too large to replicate is refused with
// the store's *store.TooLargeError (it matches version.ErrTooLarge).
func (h *Hints) Store(owner string, partition int, k []byte, set version.Set) (stored bool, err error) {
	if owner == "" || strings.IndexByte(owner, 0) >= 0 {
		return false, fmt.Errorf("%w: %q", ErrBadOwner, owner)
	}
	if h.cfg.Member != nil && !h.cfg.Member(owner) {
		h.mu.Lock()
		h.totals.refusedNotMember++
		h.mu.Unlock()
		return false, &RefusedError{Reason: ErrNotMember}
	}
	if set.IsEmpty() {
		return true, nil
	}
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return false, ErrClosed
	}
	stored, err = h.st.AddHint(owner, k, set, h.cfg.MaxHintBytesPerOwner, h.cfg.MaxHintBytesTotal)
	switch {
	case errors.Is(err, store.ErrHintsFull):
		h.count(owner, func(c *hintCounters) { c.refusedFull++ })
		h.log.Debug().Str("owner", owner).Int("partition", partition).Msg("node's hint budget full; partition prioritized")
		h.cfg.Prioritize(partition)
		return false, &RefusedError{Reason: ErrHolderFull}
	case errors.Is(err, store.ErrTooLarge):
		h.count(owner, func(c *hintCounters) { c.refusedTooLarge++ })
		h.log.Debug().Str("owner", owner).Int("partition", partition).Err(err).Msg("merged hint too large; refused")
		return false, fmt.Errorf("store hint for %s: %w", owner, err)
	case err != nil:
		h.count(owner, func(c *hintCounters) { c.storeErrors++ })
		h.log.Warn().Err(err).Str("owner", owner).Int("partition", partition).Msg("storing hint failed; partition prioritized")
		h.cfg.Prioritize(partition)
		return false, fmt.Errorf("store hint for %s: %w", owner, err)
	case !stored:
		h.count(owner, func(c *hintCounters) { c.overflowed++ })
		h.log.Debug().Str("owner", owner).Int("partition", partition).Msg("hint budget full; partition prioritized")
		h.cfg.Prioritize(partition)
		return false, nil
	}
	h.count(owner, func(c *hintCounters) { c.stored++ })
	return true, nil
}

// countLocked applies f to owner's counters and to the totals. h.mu must be
// held.
func (h *Hints) countLocked(owner string, f func(*hintCounters)) {
	c := h.owners[owner]
	if c == nil {
		c = &hintOwnerCounters{}
		h.owners[owner] = c
	}
	f(&c.hintCounters)
	f(&h.totals)
}

// count is countLocked taking h.mu.
func (h *Hints) count(owner string, f func(*hintCounters)) {
	h.mu.Lock()
	h.countLocked(owner, f)
	h.mu.Unlock()
}
