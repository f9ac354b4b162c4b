package handoff

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/version"
)

// TransferStore is what Transfers needs of the local store; *store.Store
// implements it.
type TransferStore interface {
	// Merge merges set into k's record (version.Sync) and returns once
	// the merge is as durable as the store makes writes.
	Merge(k []byte, set version.Set) (version.Set, bool, error)
	// PutMeta stores a small node-local value under name.
	PutMeta(name string, v []byte) error
	// GetMeta returns the value stored under name, or an error matching
	// store.ErrNotFound when there is none.
	GetMeta(name string) ([]byte, error)
}

// State is where a partition's transfer is.
type State string

// The states of a partition's transfer.
const (
	// StateQueued: waiting for a worker.
	StateQueued State = "queued"
	// StateStreaming: pulling batches from a source.
	StateStreaming State = "streaming"
	// StateFinishing: the stream is complete; Finish runs.
	StateFinishing State = "finishing"
	// StateDone: Finish succeeded. The partition can serve reads.
	StateDone State = "done"
	// StateFailed: the last attempt failed (Status.Error says why); it is
	// retried after a backoff, from where it stopped.
	StateFailed State = "failed"
)

// Status is one gained partition's transfer, for the node's status page.
type Status struct {
	Partition int   `json:"partition"`
	State     State `json:"state"`
	// Source is the node streamed from last (or being tried).
	Source string `json:"source,omitempty"`
	// Keys and Bytes count the records received (Bytes as on the wire,
	// roughly), over restarts. Skipped counts those this node does not
	// replicate, Undecodable those whose key or set did not decode; both
	// were not merged.
	Keys        int64 `json:"keys"`
	Bytes       int64 `json:"bytes"`
	Skipped     int64 `json:"skipped"`
	Undecodable int64 `json:"undecodable"`
	// Error is the last failure's text, kept after a later success.
	Error string `json:"error,omitempty"`
	// Started is when this process first worked on the partition, Updated
	// when its state or figures last changed.
	Started time.Time `json:"started,omitzero"`
	Updated time.Time `json:"updated,omitzero"`
}

// TransferMetrics is a snapshot of the transfers. The partition figures
// are of the current plan; the others count events since NewTransfers.
type TransferMetrics struct {
	// Partitions is how many partitions the current plan gains;
	// PartitionsDone and PartitionsFailed how many of them are done and
	// waiting to retry after a failure.
	Partitions       int
	PartitionsDone   int
	PartitionsFailed int
	// Keys and Bytes count received records.
	Keys  uint64
	Bytes uint64
	// Merged counts records merged into the store; Skipped those this
	// node does not replicate; Undecodable those that did not decode.
	Merged      uint64
	Skipped     uint64
	Undecodable uint64
	// Scans counts Source.Scan calls, ScanErrors the failed ones (errors
	// and responses that break the protocol).
	Scans      uint64
	ScanErrors uint64
	// FinishErrors counts failed Finish calls, StoreErrors failed local
	// merges and progress writes.
	FinishErrors uint64
	StoreErrors  uint64
}

// Transfers pulls the partitions this node gains in a membership change
// from the nodes that hold them: resumable (progress is persisted after
// every batch), rate-limited, with failover between sources. It knows
// nothing of the ring or of the network: the node tells it what to fetch
// (Set) and lends it a Source. Methods are safe for concurrent use.
type Transfers struct {
	cfg TransferConfig
	st  TransferStore
	src Source
	clk clock.Clock
	log zerolog.Logger
	lim *limiter

	ctx    context.Context    // cancelled by Close; parent of every attempt
	cancel context.CancelFunc //
	wake   chan struct{}      // buffered 1: work may be ready
	wg     sync.WaitGroup     // the workers

	startOnce sync.Once
	closeOnce sync.Once

	// setMu serialises Set calls, so a partition dropped by one is
	// cleared before another can gain it again.
	setMu sync.Mutex
	// metaMu serialises progress writes with the check that their
	// partition is still gained, so a dropped partition's progress, once
	// cleared, stays cleared.
	metaMu sync.Mutex

	mu struct {
		sync.Mutex
		closed bool
		plan   uint64
		keep   func(k []byte) bool
		parts  map[int]*partition
		order  []int // gained partitions, in the order Set listed them
		totals transferCounters
	}
}

// transferCounters are the event counters of TransferMetrics.
type transferCounters struct {
	keys, bytes, merged, skipped, undecodable    uint64
	scans, scanErrors, finishErrors, storeErrors uint64
}

// partition is one gained partition's state, guarded by Transfers.mu.
type partition struct {
	p       int
	sources []string
	next    int // index in sources to ask first
	status  Status
	cursor  Cursor // the last record merged durably
	// streamed is set once the stream reached Done.
	streamed bool
	// loaded is set once persisted progress was read; persisted once a
	// progress row may exist for the partition.
	loaded, persisted bool
	// running is set while a worker holds the partition; cancel cancels
	// that worker's attempt.
	running bool
	cancel  context.CancelFunc
	// failures counts failed attempts in a row; notBefore is when a
	// failed partition may be tried again.
	failures  int
	notBefore time.Time
}

// NewTransfers returns transfers into st, pulling from src. Call Start to
// run the workers and Set to give them work.
func NewTransfers(cfg TransferConfig, st TransferStore, src Source, clk clock.Clock, log zerolog.Logger) (*Transfers, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if st == nil || src == nil || clk == nil {
		return nil, fmt.Errorf("%w: nil store, source or clock", ErrConfig)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transfers{
		cfg:    cfg,
		st:     st,
		src:    src,
		clk:    clk,
		log:    log.With().Str("component", "transfers").Logger(),
		lim:    newLimiter(clk, newBucket(cfg.BytesPerSecond, cfg.byteBurst(), clk.Now())),
		ctx:    ctx,
		cancel: cancel,
		wake:   make(chan struct{}, 1),
	}
	t.mu.parts = make(map[int]*partition)
	return t, nil
}

// Start starts Parallel workers. It is a no-op after the first call or
// after Close.
func (t *Transfers) Start() {
	t.startOnce.Do(func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.mu.closed {
			return
		}
		t.wg.Add(t.cfg.Parallel)
		for range t.cfg.Parallel {
			go t.worker()
		}
	})
}

// Close stops the workers, cancelling their attempts, and waits for them.
// Progress persisted so far is kept for the next Transfers over the same
// store. Close is idempotent.
func (t *Transfers) Close() error {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.mu.closed = true
		t.mu.Unlock()
		t.cancel()
	})
	t.wg.Wait()
	return nil
}

// Set tells what this node must fetch: the gains of the membership change
// identified by plan (a fingerprint of it), and which streamed keys this
// node replicates (keep; nil keeps all; others are skipped, not merged).
// Call it whenever the plan or the gains change. A partition no longer
// gained is dropped: its attempt is cancelled and its persisted progress
// cleared (Set writes to the store for that). A partition still gained
// keeps its progress, whatever the plan, and takes the new sources; a new
// one is queued. Gains of a partition out of range are ignored (logged);
// of a partition listed twice, the last counts. plan 0 with no gains is
// nothing to do.
func (t *Transfers) Set(plan uint64, gains []Gain, keep func(k []byte) bool) {
	want := make(map[int][]string, len(gains))
	var order []int
	for _, g := range gains {
		if g.Partition < 0 || g.Partition >= t.cfg.Partitions {
			t.log.Warn().Int("partition", g.Partition).Msg("gain of a partition out of range ignored")
			continue
		}
		if _, dup := want[g.Partition]; !dup {
			order = append(order, g.Partition)
		}
		want[g.Partition] = slices.Clone(g.Sources)
	}
	t.setMu.Lock()
	defer t.setMu.Unlock()
	now := t.clk.Now()
	var dropped []*partition
	t.mu.Lock()
	t.mu.plan, t.mu.keep = plan, keep
	for p, ps := range t.mu.parts {
		if _, ok := want[p]; !ok {
			if ps.cancel != nil {
				ps.cancel()
			}
			delete(t.mu.parts, p)
			dropped = append(dropped, ps)
		}
	}
	for _, p := range order {
		ps := t.mu.parts[p]
		if ps == nil {
			ps = &partition{p: p, status: Status{Partition: p, State: StateQueued, Updated: now}}
			t.mu.parts[p] = ps
		}
		if !slices.Equal(ps.sources, want[p]) {
			ps.sources, ps.next = want[p], 0
			if ps.status.State == StateFailed {
				ps.notBefore = time.Time{} // new sources: try them now
			}
		}
	}
	t.mu.order = order
	t.mu.Unlock()
	for _, ps := range dropped {
		t.clearProgress(ps)
	}
	t.signal()
}

// clearProgress clears a dropped partition's persisted progress, unless
// the partition was gained again meanwhile.
func (t *Transfers) clearProgress(ps *partition) {
	t.metaMu.Lock()
	defer t.metaMu.Unlock()
	t.mu.Lock()
	_, again := t.mu.parts[ps.p]
	mayExist := ps.persisted || !ps.loaded
	t.mu.Unlock()
	if again || !mayExist {
		return
	}
	if err := t.st.PutMeta(progressMeta(ps.p), nil); err != nil {
		t.count(func(c *transferCounters) { c.storeErrors++ })
		t.log.Warn().Err(err).Int("partition", ps.p).Msg("clearing a dropped partition's progress failed")
	}
}

// Progress returns the status of every gained partition of the current
// plan, by partition.
func (t *Transfers) Progress() []Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Status, 0, len(t.mu.parts))
	for _, ps := range t.mu.parts {
		out = append(out, ps.status)
	}
	slices.SortFunc(out, func(a, b Status) int { return a.Partition - b.Partition })
	return out
}

// Done reports whether plan is the current plan and every partition it
// gains is done: the node may then serve reads from them.
func (t *Transfers) Done(plan uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if plan != t.mu.plan {
		return false
	}
	for _, ps := range t.mu.parts {
		if ps.status.State != StateDone {
			return false
		}
	}
	return true
}

// Metrics returns a snapshot of the figures.
func (t *Transfers) Metrics() TransferMetrics {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.mu.totals
	m := TransferMetrics{
		Partitions: len(t.mu.parts),
		Keys:       c.keys, Bytes: c.bytes, Merged: c.merged, Skipped: c.skipped, Undecodable: c.undecodable,
		Scans: c.scans, ScanErrors: c.scanErrors, FinishErrors: c.finishErrors, StoreErrors: c.storeErrors,
	}
	for _, ps := range t.mu.parts {
		switch ps.status.State {
		case StateDone:
			m.PartitionsDone++
		case StateFailed:
			m.PartitionsFailed++
		}
	}
	return m
}

// count applies f to the totals.
func (t *Transfers) count(f func(*transferCounters)) {
	t.mu.Lock()
	f(&t.mu.totals)
	t.mu.Unlock()
}

// signal wakes one idle worker, never blocking.
func (t *Transfers) signal() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}
