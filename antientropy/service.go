package antientropy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/store"
	"github.com/rs/zerolog"
)

// Service runs Merkle-tree anti-entropy for one node: it keeps the trees
// current from the store's write events, exchanges them with the other
// replicas of each partition (in the background, paced by
// Config.Interval and Config.BytesPerSecond, and on demand with Run), serves
// the peers' ae.* requests (HandleRPC), sweeps tombstones that every replica
// holds and reaps them after the grace period.
type Service struct {
	cfg     Config
	shape   Shape
	log     zerolog.Logger
	clk     clock.Clock
	st      Store
	meta    Meta
	ring    func() Ring
	members func() []string // Deps.Members, nil when not given
	caller  Caller
	resolve func(string) (string, error)
	forest  *Forest
	limiter *byteBucket
	m       counters

	// unreadableLog is log, sampled: a record that does not decode, or
	// one too large to merge, is met again on every exchange of its
	// partition until it heals or is resolved.
	unreadableLog zerolog.Logger

	runMu sync.Mutex // one exchange pass at a time: a background tick or a Run

	mu       sync.Mutex // guards the fields below
	starting bool       // Start was called
	started  bool       // Start finished: trees built, loops running
	closed   bool
	priority map[int]bool            // partitions to exchange first (persisted)
	settled  map[settledKey]LeafDiff // unresolvable leaf differences, by peer
	cursor   int                     // next partition of the background round
	// prioCursor is the next prioritized partition; lastPriority says the
	// last background pick was a prioritized one.
	prioCursor   int
	lastPriority bool
	sweepAt      int                              // next partition of the sweep round
	strayAt      int                              // next partition of the stray round
	marked       map[int]map[uint64]uint64        // per partition: key hash → record hash of tombstones marked
	hooks        struct{ afterTick func(string) } // test hook: called after each loop tick ("exchange", "sweep", "reap", "strays")

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // loops, Run calls and served requests
}

type settledKey struct {
	peer       string
	part, leaf int
}

// metaPriority is the Meta name of the prioritized partitions.
const metaPriority = "antientropy.priority"

// New returns a Service; Start builds its trees and starts its loops. The
// node feeds it every committed write through OnWrite from the moment the
// store opens (events before Start are folded in by Start's rebuild).
func New(cfg Config, d Deps, log zerolog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case d.Store == nil:
		return nil, fmt.Errorf("%w: nil Store", ErrConfig)
	case d.Ring == nil:
		return nil, fmt.Errorf("%w: nil Ring", ErrConfig)
	case d.Caller == nil:
		return nil, fmt.Errorf("%w: nil Caller", ErrConfig)
	}
	shape, _ := cfg.shape()
	forest, err := NewForest(shape)
	if err != nil {
		return nil, err
	}
	clk := d.Clock
	if clk == nil {
		clk = clock.Real()
	}
	ringOf := d.Ring
	parts := cfg.Partitions
	d.Ring = func() Ring {
		if r := ringOf(); r != nil {
			return r
		}
		return emptyRing(parts)
	}
	resolve := d.Resolve
	if resolve == nil {
		resolve = func(id string) (string, error) { return id, nil }
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		cfg: cfg, shape: shape, log: log, clk: clk, st: d.Store, meta: d.Meta,
		ring: d.Ring, members: d.Members, caller: d.Caller, resolve: resolve, forest: forest,
		limiter:  newByteBucket(clk, cfg.BytesPerSecond, cfg.BurstBytes),
		priority: map[int]bool{},
		settled:  map[settledKey]LeafDiff{},
		marked:   map[int]map[uint64]uint64{},
		ctx:      ctx, cancel: cancel,
	}
	s.unreadableLog = log.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Minute})
	s.loadPriority()
	return s, nil
}

// OnWrite feeds one committed store write to the trees. Wire it as the
// store's Config.OnWrite (through the node). It never blocks on I/O.
func (s *Service) OnWrite(ev store.WriteEvent) {
	s.forest.OnWrite(ev.Hash, ev.Key, ev.Old, ev.New)
}

// Forest returns the service's trees.
func (s *Service) Forest() *Forest { return s.forest }

// Start loads the trees saved by SaveTrees at the last clean shutdown, or,
// on a first start or after a crash, rebuilds every partition's tree from
// the store — one Scan per partition, one pass over the data, which for 1M
// records takes about a second (see BenchmarkRebuild) — and then starts the
// exchange, sweep and reap loops. Writes may continue during the rebuild. Start fails if
// called twice or after Close.
func (s *Service) Start() error {
	if r := s.ring(); r.PartitionCount() != s.cfg.Partitions {
		return fmt.Errorf("%w: ring has %d partitions, config %d", ErrConfig, r.PartitionCount(), s.cfg.Partitions)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("antientropy: start: %w", ErrClosed)
	}
	if s.starting {
		s.mu.Unlock()
		return errors.New("antientropy: already started")
	}
	s.starting = true
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	start := s.clk.Now()
	if err := s.loadTrees(); err == nil {
		s.log.Info().Dur("took", s.clk.Since(start)).Msg("merkle trees loaded from the clean-shutdown snapshot")
	} else {
		// First start, or the last run did not shut down cleanly: the
		// trees may have missed writes, so rebuild them from the store.
		for p := range s.shape.Partitions() {
			if err := s.ctx.Err(); err != nil {
				return fmt.Errorf("antientropy: start: %w", ErrClosed)
			}
			if err := s.forest.Rebuild(s.st, p); err != nil {
				return err
			}
		}
		s.log.Info().Dur("took", s.clk.Since(start)).Int("partitions", s.shape.Partitions()).Str("why", err.Error()).Msg("merkle trees rebuilt")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("antientropy: start: %w", ErrClosed)
	}
	s.started = true
	// Tickers are made here, not in the goroutines, so that time counts
	// from Start (with a fake clock: from before Start returns).
	s.wg.Add(4)
	go s.loop("exchange", s.clk.NewTicker(s.cfg.Interval), s.tickExchange)
	go s.loop("sweep", s.clk.NewTicker(s.cfg.SweepInterval), s.tickSweep)
	go s.loop("reap", s.clk.NewTicker(s.cfg.ReapInterval), s.tickReap)
	go s.loop("strays", s.clk.NewTicker(s.cfg.StrayInterval), s.tickStrays)
	return nil
}

// Close stops the loops, cancels running exchanges and waits for them and
// for requests being served. It is idempotent.
func (s *Service) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// enter registers a call that Close must wait for.
func (s *Service) enter(needStarted bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if needStarted && !s.started {
		return ErrNotStarted
	}
	s.wg.Add(1)
	return nil
}

func (s *Service) loop(name string, t clock.Ticker, tick func()) {
	defer s.wg.Done()
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C():
			tick()
			s.mu.Lock()
			hook := s.hooks.afterTick
			s.mu.Unlock()
			if hook != nil {
				hook(name)
			}
		}
	}
}

func (s *Service) tickExchange() {
	if !s.runMu.TryLock() {
		return // a Run is going on
	}
	defer s.runMu.Unlock()
	p, ok := s.nextPartition()
	if !ok {
		return
	}
	if _, err := s.exchangePartition(s.ctx, p); err != nil && s.ctx.Err() == nil {
		s.log.Warn().Err(err).Int("partition", p).Msg("anti-entropy exchange failed")
	}
}

// replicated returns the partitions this node replicates, prioritized ones
// first.
func (s *Service) replicated() []int {
	r := s.ring()
	parts := r.PartitionsFor(s.cfg.NodeID, s.n())
	s.mu.Lock()
	defer s.mu.Unlock()
	slices.SortStableFunc(parts, func(a, b int) int {
		switch pa, pb := s.priority[a], s.priority[b]; {
		case pa && !pb:
			return -1
		case pb && !pa:
			return 1
		}
		return 0
	})
	return parts
}

// nextPartition picks the background round's next partition. Prioritized
// partitions this node replicates take every other tick, in turn; the
// round-robin over all its partitions takes the rest, so that a priority
// that cannot clear (a replica stays down) does not starve the others.
// Each time the round-robin starts over, the memory of settled leaves is
// forgotten: which nodes replicate a key may have changed since (the ring,
// a bucket's n), and a leaf skipped as settled would then never reach a
// new replica.
func (s *Service) nextPartition() (int, bool) {
	parts := s.ring().PartitionsFor(s.cfg.NodeID, s.n())
	if len(parts) == 0 {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.lastPriority {
		var prio []int
		for _, p := range parts {
			if s.priority[p] {
				prio = append(prio, p)
			}
		}
		if len(prio) > 0 {
			i, _ := slices.BinarySearch(prio, s.prioCursor)
			if i == len(prio) {
				i = 0
			}
			s.prioCursor, s.lastPriority = prio[i]+1, true
			return prio[i], true
		}
	}
	s.lastPriority = false
	i, _ := slices.BinarySearch(parts, s.cursor)
	if i == len(parts) {
		i = 0
	}
	if i == 0 {
		clear(s.settled)
	}
	s.cursor = parts[i] + 1
	return parts[i], true
}

// Report summarises a Run.
type Report struct {
	Partitions      int     `json:"partitions"`       // partitions exchanged
	Exchanges       int     `json:"exchanges"`        // (partition, peer) exchanges completed
	Failed          int     `json:"failed"`           // (partition, peer) exchanges that failed
	LeavesDiffering int     `json:"leaves_differing"` // differing leaves found
	KeysDiffering   int     `json:"keys_differing"`   // differing keys found
	KeysPushed      int     `json:"keys_pushed"`      // records pushed that changed a peer
	KeysPulled      int     `json:"keys_pulled"`      // records pulled that changed this node
	Traffic         Traffic `json:"traffic"`          // bytes moved
}

func (r *Report) add(o Report) {
	r.Partitions += o.Partitions
	r.Exchanges += o.Exchanges
	r.Failed += o.Failed
	r.LeavesDiffering += o.LeavesDiffering
	r.KeysDiffering += o.KeysDiffering
	r.KeysPushed += o.KeysPushed
	r.KeysPulled += o.KeysPulled
	r.Traffic.add(o.Traffic)
}

// RunOnce exchanges every partition this node replicates with each of its
// other replicas, prioritized partitions first, and returns when done. It
// is what POST /v1/antientropy/run and the CLI call. It waits for a
// background exchange in progress, honours the byte rate limit, and is
// cancelled by ctx or Close. Failed exchanges are reported and joined into
// the error; the others still run.
func (s *Service) RunOnce(ctx context.Context) (Report, error) { return s.Run(ctx, nil) }

// Run is RunOnce restricted to the given partitions (nil: all this node
// replicates).
func (s *Service) Run(ctx context.Context, partitions []int) (Report, error) {
	if err := s.enter(true); err != nil {
		return Report{}, err
	}
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()

	s.runMu.Lock()
	defer s.runMu.Unlock()
	if partitions == nil {
		partitions = s.replicated()
		// A full round asked for now re-examines settled leaves too
		// (see nextPartition).
		s.mu.Lock()
		clear(s.settled)
		s.mu.Unlock()
	}
	var rep Report
	var errs []error
	for _, p := range partitions {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		r, err := s.exchangePartition(ctx, p)
		rep.add(r)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return rep, errors.Join(errs...)
}

// ExchangeWith runs one exchange of partition p with node peer now,
// whether or not the ring makes them replicas of p: a node that is being
// filled with p (a membership change) checks with each source that it
// missed nothing, and a node handing p off gives each replica what it
// lacks. The replicates filter still decides which records move. It
// honours the byte rate limit and is cancelled by ctx or Close.
func (s *Service) ExchangeWith(ctx context.Context, p int, peer string) (Report, error) {
	if err := s.enter(true); err != nil {
		return Report{}, err
	}
	defer s.wg.Done()
	if p < 0 || p >= s.cfg.Partitions {
		return Report{}, fmt.Errorf("%w: partition %d", ErrBadRequest, p)
	}
	if peer == s.cfg.NodeID {
		return Report{}, fmt.Errorf("%w: exchange with itself", ErrBadRequest)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	rep, err := s.exchangeWith(ctx, p, peer)
	rep.Partitions = 1
	if err != nil {
		return rep, fmt.Errorf("antientropy: exchange partition %d with %s: %w", p, peer, err)
	}
	return rep, nil
}

// n is how many of a partition's preference list are its replicas: N, or
// the largest bucket's n when that is larger.
func (s *Service) n() int {
	if s.cfg.MaxN != nil {
		return max(s.cfg.N, s.cfg.MaxN())
	}
	return s.cfg.N
}

// peers returns partition p's replicas other than this node.
func (s *Service) peers(p int) ([]string, bool, error) {
	r := s.ring()
	if r.PartitionCount() != s.cfg.Partitions {
		return nil, false, fmt.Errorf("%w: ring has %d partitions, config %d", ErrConfig, r.PartitionCount(), s.cfg.Partitions)
	}
	if p < 0 || p >= s.cfg.Partitions {
		return nil, false, fmt.Errorf("%w: partition %d", ErrBadRequest, p)
	}
	n := s.n()
	prefs, err := r.PartitionPreference(p, min(n, r.Len()))
	if err != nil {
		return nil, false, fmt.Errorf("antientropy: preference list of partition %d: %w", p, err)
	}
	prefs = prefs[:min(len(prefs), n)]
	self := false
	out := prefs[:0:0]
	for _, id := range prefs {
		if id == s.cfg.NodeID {
			self = true
		} else {
			out = append(out, id)
		}
	}
	return out, self, nil
}

// exchangePartition exchanges partition p with each of its other
// replicas. A prioritized partition leaves the priority queue once every
// exchange succeeded.
func (s *Service) exchangePartition(ctx context.Context, p int) (Report, error) {
	peers, self, err := s.peers(p)
	if err != nil {
		return Report{}, err
	}
	if !self {
		s.clearPriority(p)
		return Report{}, fmt.Errorf("%w: %d", ErrNotReplica, p)
	}
	rep := Report{Partitions: 1}
	var errs []error
	for _, id := range peers {
		r, err := s.exchangeWith(ctx, p, id)
		rep.add(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("antientropy: exchange partition %d with %s: %w", p, id, err))
		}
	}
	if len(errs) == 0 {
		s.clearPriority(p)
	}
	return rep, errors.Join(errs...)
}

// exchangeWith runs one exchange of partition p with peer id.
func (s *Service) exchangeWith(ctx context.Context, p int, id string) (Report, error) {
	addr, err := s.resolve(id)
	if err != nil {
		s.m.exchangeErrors.Add(1)
		return Report{Failed: 1}, fmt.Errorf("antientropy: resolve %s: %w", id, err)
	}
	m := &meter{s: s}
	res, pushed, pulled, err := s.exchange(ctx, p, id, NewRPCPeer(s.caller, id, addr, m))
	rep := Report{
		LeavesDiffering: res.LeavesDiffering, KeysDiffering: res.KeysDiffering,
		KeysPushed: pushed, KeysPulled: pulled, Traffic: m.t,
	}
	if err != nil {
		s.m.exchangeErrors.Add(1)
		rep.Failed = 1
		return rep, err
	}
	s.m.exchanges.Add(1)
	rep.Exchanges = 1
	return rep, nil
}

// settledFor returns the Settled function of an exchange with peer of
// partition p.
func (s *Service) settledFor(peer string, p int) func(leaf int, local, remote uint64) bool {
	return func(leaf int, local, remote uint64) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		d, ok := s.settled[settledKey{peer, p, leaf}]
		return ok && d.Local == local && d.Remote == remote
	}
}

func (s *Service) rememberStuck(peer string, p int, stuck []LeafDiff) {
	if len(stuck) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.settled)+len(stuck) > s.cfg.MaxSettled {
		clear(s.settled)
	}
	for _, d := range stuck {
		s.settled[settledKey{peer, p, d.Leaf}] = d
	}
}
