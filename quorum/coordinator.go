package quorum

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/internal/gopool"
	"github.com/quorumkv/quorumkv/version"
)

// Sender delivers a request to a node (the local node included) and
// returns its response. The node implements it over the transport, and
// calls the local Replica directly for itself.
type Sender interface {
	Send(ctx context.Context, to string, req *Request) (*Response, error)
}

// AsyncApplier is implemented by a Sender that can apply a write on the
// local replica and report its durability separately (Replica.ApplyAsync),
// so replication starts while the local fsync runs.
type AsyncApplier interface {
	ApplyAsync(ctx context.Context, to string, req *Request) (*Response, func() error, error)
}

// Placement is what the coordinator needs of the ring.
type Placement interface {
	// PreferenceList returns the key's first n primaries followed by the
	// fallback order.
	PreferenceList(key []byte, n int) ([]string, error)
	// Partition returns the key's partition.
	Partition(key []byte) int
	// Size is the number of ring members.
	Size() int
}

// PendingPlacement is implemented by a Placement while the membership
// changes: the ring that reads use is still the committed one, while
// some nodes are being filled with the partitions they will replicate
// once the change completes.
type PendingPlacement interface {
	Placement
	// Pending returns the nodes that will be among the key's first n
	// replicas when the change completes but are not among them now.
	Pending(key []byte, n int) []string
}

// withPending extends a write's preference list with the key's pending
// replicas, placed right after the n primaries (and taken out of the
// fallbacks), and returns the new list and primary count. A write then
// needs one more ack per pending replica (see Put): with W acks among
// n + p targets, at most p come from the pending ones, so at least W come
// from the current replicas, and at most p come from the replicas the
// change retires, so at least W come from the replicas the key will have.
// Reads before and after the change both meet the write.
func withPending(pref []string, n int, pending []string) ([]string, int) {
	if len(pending) == 0 {
		return pref, n
	}
	out := make([]string, 0, len(pref)+len(pending))
	out = append(out, pref[:n]...)
	out = append(out, pending...)
	for _, id := range pref[n:] {
		if !slices.Contains(pending, id) {
			out = append(out, id)
		}
	}
	return out, n + len(pending)
}

// Config configures a Coordinator.
type Config struct {
	// Self is this node's ID.
	Self string
	// DefaultTimeout bounds a request that gives no timeout.
	DefaultTimeout time.Duration
	// MaxTimeout caps the timeout a client may ask for.
	MaxTimeout time.Duration
	// RepairWait bounds how long a read waits, after answering, for the
	// replicas that had not replied, before its final read repair.
	RepairWait time.Duration
	// ReadFanout is how many replicas a read asks at first.
	ReadFanout Fanout
	// SpeculateAfter is how long a read that asked only R replicas
	// (FanoutQuorum) waits for them before it asks the others too. Zero
	// never speculates: the others are then asked only when a read fails.
	SpeculateAfter time.Duration
}

// Fanout says how many replicas a read asks at first.
type Fanout uint8

// Read fanouts.
const (
	// FanoutAll asks every replica, and read-repairs every one that
	// answers in time, as Riak does. It costs N-R more reads per request.
	FanoutAll Fanout = iota
	// FanoutQuorum asks R replicas, the coordinator's own first, and the
	// others only when one of them fails or after SpeculateAfter. Stale
	// replicas outside the R are left to anti-entropy, as in Cassandra.
	FanoutQuorum
)

// String names the fanout as the --read-fanout flag spells it.
func (f Fanout) String() string {
	if f == FanoutQuorum {
		return "quorum"
	}
	return "all"
}

// Set parses the fanout, for command-line flags.
func (f *Fanout) Set(s string) error {
	v, err := ParseFanout(s)
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// Type names the flag's value type.
func (f *Fanout) Type() string { return "fanout" }

// ParseFanout parses "quorum" or "all".
func ParseFanout(s string) (Fanout, error) {
	switch s {
	case "quorum":
		return FanoutQuorum, nil
	case "all":
		return FanoutAll, nil
	}
	return 0, fmt.Errorf("%w: read fanout %q is not quorum or all", ErrBadParam, s)
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		DefaultTimeout: 5 * time.Second, // Riak's default is 60 s; 5 s fails faster and is plenty on a LAN
		MaxTimeout:     60 * time.Second,
		RepairWait:     2 * time.Second,       // late replicas get this long to answer before read repair gives up on them
		ReadFanout:     FanoutAll,             // ask every replica, so read repair reaches all N (Riak; issue 5); FanoutQuorum halves internode reads at R=2 of N=3
		SpeculateAfter: 15 * time.Millisecond, // with FanoutQuorum: above a loaded read's p99 here, so about 1% of reads ask a spare
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Self == "":
		return errors.New("quorum: config: Self is empty")
	case c.DefaultTimeout <= 0 || c.MaxTimeout < c.DefaultTimeout:
		return errors.New("quorum: config: need 0 < DefaultTimeout <= MaxTimeout")
	case c.RepairWait < 0:
		return errors.New("quorum: config: negative RepairWait")
	case c.ReadFanout > FanoutQuorum:
		return errors.New("quorum: config: unknown ReadFanout")
	case c.SpeculateAfter < 0:
		return errors.New("quorum: config: negative SpeculateAfter")
	}
	return nil
}

// Metrics are the coordinator's counters.
type Metrics struct {
	Puts, Gets                  uint64
	WriteFailures, ReadFailures uint64
	Timeouts                    uint64
	FallbackWrites              uint64 // writes where a fallback counted toward W
	HintedWrites                uint64 // writes where some copy went to a hint
	ReadRepairs                 uint64 // reads that repaired at least one replica
	ReplicasRepaired            uint64
	SpeculativeReads            uint64 // reads that asked more replicas after SpeculateAfter
	PendingWrites               uint64 // writes that also went to replicas a membership change is filling
}

type metrics struct {
	puts, gets, writeFailures, readFailures, timeouts   atomic.Uint64
	fallbackWrites, hintedWrites, readRepairs, repaired atomic.Uint64
	speculative, pendingWrites                          atomic.Uint64
}

// Coordinator serves client reads and writes on any node: it plans the
// replicas, drives the write or read state machine over the Sender, and
// finishes late replies and read repair in the background. It is safe for
// concurrent use.
type Coordinator struct {
	cfg       Config
	place     func() Placement
	available func(string) bool
	send      Sender
	clk       clock.Clock
	log       zerolog.Logger

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	pool   *gopool.Pool // runs dispatches and finishers on reusable goroutines
	closed atomic.Bool
	// closeMu orders enter's wg.Add before Close's wg.Wait.
	closeMu sync.RWMutex
	m       metrics
}

// New returns a coordinator. place returns the current ring (it changes on
// membership changes); available reports whether the failure detector
// trusts a node.
func New(cfg Config, place func() Placement, available func(string) bool, send Sender, clk clock.Clock, log zerolog.Logger) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pcfg := gopool.DefaultConfig()
	pcfg.Clock = clk
	pool, err := gopool.New(pcfg)
	if err != nil {
		return nil, fmt.Errorf("quorum: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Coordinator{cfg: cfg, place: place, available: available, send: send, clk: clk, log: log, ctx: ctx, cancel: cancel, pool: pool}, nil
}

// spawn runs f on a pooled goroutine. The caller has counted f in c.wg. An
// operation that raced with Close still gets a goroutine of its own.
func (c *Coordinator) spawn(f func()) {
	if c.pool.Go(f) != nil {
		go f()
	}
}

// enter counts a new operation's background work in c.wg, unless Close
// has begun: under closeMu, so that no Add races with Close's Wait while
// the count is zero (which sync.WaitGroup forbids).
func (c *Coordinator) enter() bool {
	c.closeMu.RLock()
	defer c.closeMu.RUnlock()
	if c.closed.Load() {
		return false
	}
	c.wg.Add(1)
	return true
}

// Close stops background work and waits for it. It is idempotent.
func (c *Coordinator) Close() error {
	c.closeMu.Lock()
	first := c.closed.CompareAndSwap(false, true)
	c.closeMu.Unlock()
	if first {
		c.cancel()
	}
	c.wg.Wait()
	return c.pool.Close()
}

// Metrics returns a snapshot of the counters.
func (c *Coordinator) Metrics() Metrics {
	return Metrics{
		Puts: c.m.puts.Load(), Gets: c.m.gets.Load(),
		WriteFailures: c.m.writeFailures.Load(), ReadFailures: c.m.readFailures.Load(),
		Timeouts: c.m.timeouts.Load(), FallbackWrites: c.m.fallbackWrites.Load(),
		HintedWrites: c.m.hintedWrites.Load(), ReadRepairs: c.m.readRepairs.Load(),
		ReplicasRepaired: c.m.repaired.Load(),
		SpeculativeReads: c.m.speculative.Load(),
		PendingWrites:    c.m.pendingWrites.Load(),
	}
}

// PutRequest is a client write.
type PutRequest struct {
	Key         []byte
	Params      Params
	Context     version.Context
	Value       []byte
	ContentType string
	Deleted     bool
}

// PutResult is a successful write.
type PutResult struct {
	// Context covers what the client had seen plus this write.
	Context version.Context
	Dot     version.Dot
	Receipt Receipt
}

// GetRequest is a client read.
type GetRequest struct {
	Key    []byte
	Params Params
}

// GetResult is a successful read.
type GetResult struct {
	Set     version.Set
	Receipt Receipt
}

// plan returns a request's targets, the spares past them (see Spares),
// and the key's partition.
// For a write it also returns how many of the targets' primaries are
// pending replicas (PendingPlacement), each of which adds one to W.
func (c *Coordinator) plan(key []byte, n int, write bool) ([]Target, []string, int, int, error) {
	p := c.place()
	pref, err := p.PreferenceList(key, n)
	if err != nil {
		return nil, nil, 0, 0, fmt.Errorf("%w: %v", ErrBadParam, err)
	}
	extra := 0
	if pp, ok := p.(PendingPlacement); ok && write {
		n0 := n
		pref, n = withPending(pref, n, pp.Pending(key, n))
		extra = n - n0
	}
	targets, err := Plan(pref, n, c.available, c.cfg.Self)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	return targets, Spares(pref, n, targets, c.available), p.Partition(key), extra, nil
}

func (c *Coordinator) timeout(p Params) time.Duration {
	t := p.Timeout
	if t <= 0 {
		t = c.cfg.DefaultTimeout
	}
	return min(t, c.cfg.MaxTimeout)
}

// Put coordinates a write: a primary issues the dot, every other target
// merges the result, and Put returns after W acks. The remaining acks are
// collected in the background. A write that fails its quorum may still
// have been applied on some replicas.
func (c *Coordinator) Put(ctx context.Context, req PutRequest) (PutResult, error) {
	if c.closed.Load() {
		return PutResult{}, ErrClosed
	}
	c.m.puts.Add(1)
	targets, spares, part, pending, err := c.plan(req.Key, req.Params.N, true)
	if err != nil {
		return PutResult{}, err
	}
	if pending > 0 {
		c.m.pendingWrites.Add(1)
	}
	m := NewWrite(targets, req.Params.W+pending, req.Params.Sloppy, c.cfg.Self, spares)
	wr := &WriteRequest{Context: req.Context, Value: req.Value, ContentType: req.ContentType, Deleted: req.Deleted}
	base := Request{Key: req.Key, Partition: part, LWW: req.Params.LWW}

	opCtx, cancel := context.WithTimeout(c.ctx, c.timeout(req.Params))
	replies := make(chan Reply, 2*len(targets)+2)
	if !c.enter() { // released by the background finisher
		cancel()
		return PutResult{}, ErrClosed
	}
	send := func(msgs []Message) {
		for _, msg := range msgs {
			r := base
			r.Kind, r.HintFor, r.Set = msg.Kind, msg.HintFor, msg.Set
			if msg.Kind == KindApply {
				r.Write = wr
			}
			// The write machine counts merge acks; it never looks at the
			// replica's resulting set, so the replica need not send it.
			r.AckOnly = msg.Kind == KindMerge
			c.dispatch(opCtx, msg, &r, replies)
		}
	}
	send(m.Start())
	clientDone := ctx.Done()
	for !m.Done() {
		select {
		case r := <-replies:
			send(m.Step(r))
		case <-opCtx.Done():
			m.Timeout()
			c.m.timeouts.Add(1)
		case <-clientDone:
			clientDone = nil // the client left; finish the write anyway
		}
	}
	out, err := m.Result()
	markTimedOut(err, opCtx, c.ctx)
	c.spawn(func() { c.finishWrite(opCtx, cancel, m, replies, send) })
	if err != nil {
		c.m.writeFailures.Add(1)
		if isTooManySiblings(err) {
			return PutResult{}, fmt.Errorf("%w: %v", ErrTooManySiblings, err)
		}
		if isKeyTooLarge(err) {
			return PutResult{}, fmt.Errorf("%w: %v", ErrKeyTooLarge, err)
		}
		if isImplausible(err) {
			return PutResult{}, fmt.Errorf("%w: %v", ErrImplausible, err)
		}
		return PutResult{}, err
	}
	if len(out.Receipt.Fallbacks) > 0 {
		c.m.fallbackWrites.Add(1)
	}
	if len(out.Receipt.Hinted) > 0 {
		c.m.hintedWrites.Add(1)
	}
	out.Receipt.Coordinator = c.cfg.Self
	return PutResult{Context: version.WriteContext(req.Context, out.Dot), Dot: out.Dot, Receipt: out.Receipt}, nil
}

// markTimedOut flags a missed quorum as timed out when the request's
// deadline has passed: the replicas still silent then fail with their
// transport's own deadline error at that same instant, which the machine
// counts as a failure, but the request ran out of time (504), it was not
// refused (503). A coordinator being closed is neither.
func markTimedOut(err error, op, life context.Context) {
	var qe *QuorumError
	if !errors.As(err, &qe) || life.Err() != nil {
		return
	}
	// The deadline's own timer may not have fired yet when a transport
	// timer set to the same instant already failed a call: ask the time.
	if dl, ok := op.Deadline(); errors.Is(op.Err(), context.DeadlineExceeded) || ok && !time.Now().Before(dl) {
		qe.TimedOut = true
	}
}

// finishWrite collects the acks that came after the answer. Tombstones
// are never marked reapable here: a delete acked by every replica may
// still meet an older version in a hint or a stray copy elsewhere, which
// only anti-entropy's sweep, asking every node, can rule out.
func (c *Coordinator) finishWrite(ctx context.Context, cancel context.CancelFunc, m *WriteMachine, replies chan Reply, send func([]Message)) {
	defer c.wg.Done()
	defer cancel()
	for !m.Settled() {
		select {
		case r := <-replies:
			send(m.Step(r))
		case <-ctx.Done():
			return
		}
	}
}

// dispatch sends one request in its own goroutine and delivers the reply.
// An apply on the local replica reports twice: the issued set at once,
// then its durability.
func (c *Coordinator) dispatch(ctx context.Context, msg Message, req *Request, replies chan<- Reply) {
	c.wg.Add(1)
	c.spawn(func() {
		defer c.wg.Done()
		// reply turns a response into the machine's input.
		reply := func(resp *Response, err error, pending bool) Reply {
			r := Reply{Target: msg.Target, Kind: msg.Kind, Err: err, Pending: pending}
			if resp != nil {
				r.Set, r.Dot = resp.Set, resp.Dot
				r.HintRefused = msg.HintFor != "" && !resp.HintStored
			}
			return r
		}
		deliver := func(r Reply) {
			select {
			case replies <- r:
			case <-ctx.Done():
			}
		}
		if aa, ok := c.send.(AsyncApplier); ok && msg.Kind == KindApply && msg.To == c.cfg.Self {
			resp, wait, err := aa.ApplyAsync(ctx, msg.To, req)
			if err != nil || wait == nil {
				deliver(reply(resp, err, false))
				return
			}
			deliver(reply(resp, nil, true))
			deliver(reply(nil, wait(), false))
			return
		}
		resp, err := c.send.Send(ctx, msg.To, req)
		if err == nil && resp == nil {
			err = errors.New("quorum: empty response")
		}
		deliver(reply(resp, err, false))
	})
}

// Get coordinates a read: every trusted primary is asked (only R of them
// with FanoutQuorum; for a sloppy read, the fallbacks standing in for
// suspected ones count as primaries), the answer comes after R replies as
// their causal merge, and replicas that replied stale are repaired before
// the answer. With FanoutQuorum a failed read asks the next replica, and a
// slow one, after SpeculateAfter, asks all the rest. Late replies are
// merged and repaired in the background, waiting at most RepairWait.
func (c *Coordinator) Get(ctx context.Context, req GetRequest) (GetResult, error) {
	if c.closed.Load() {
		return GetResult{}, ErrClosed
	}
	c.m.gets.Add(1)
	targets, _, part, _, err := c.plan(req.Key, req.Params.N, false)
	if err != nil {
		return GetResult{}, err
	}
	o := ReadOptions{LWW: req.Params.LWW, Sloppy: req.Params.Sloppy, Self: c.cfg.Self}
	if c.cfg.ReadFanout == FanoutQuorum {
		o.Fanout = req.Params.R
	}
	m := NewRead(targets, req.Params.R, o)
	base := Request{Key: req.Key, Partition: part, LWW: req.Params.LWW}
	opCtx, cancel := context.WithTimeout(c.ctx, c.timeout(req.Params))
	replies := make(chan Reply, 3*len(targets)+1)
	if !c.enter() { // released by the background finisher
		cancel()
		return GetResult{}, ErrClosed
	}
	send := func(msgs []Message) {
		for _, msg := range msgs {
			r := base
			r.Kind, r.HintFor, r.Set = msg.Kind, msg.HintFor, msg.Set
			c.dispatch(opCtx, msg, &r, replies)
		}
	}
	send(m.Start())
	var speculate <-chan time.Time
	if m.Idle() && c.cfg.SpeculateAfter > 0 {
		t := c.clk.NewTimer(c.cfg.SpeculateAfter)
		defer t.Stop()
		speculate = t.C()
	}
wait:
	for !m.Done() || m.RepairsPending() {
		select {
		case r := <-replies:
			send(m.Step(r))
		case <-speculate:
			speculate = nil
			if msgs := m.Speculate(); len(msgs) > 0 {
				c.m.speculative.Add(1)
				send(msgs)
			}
		case <-opCtx.Done():
			// Past the deadline nothing more can be sent: answer with
			// what the read has, and leave the rest to finishRead.
			m.Timeout()
			c.m.timeouts.Add(1)
			break wait
		}
		if m.Done() && !m.RepairsPending() {
			break
		}
	}
	out, err := m.Result()
	markTimedOut(err, opCtx, c.ctx)
	c.spawn(func() { c.finishRead(opCtx, cancel, m, replies, send) })
	if err != nil {
		c.m.readFailures.Add(1)
		return GetResult{}, err
	}
	out.Receipt.Coordinator = c.cfg.Self
	return GetResult{Set: out.Set, Receipt: out.Receipt}, nil
}

func (c *Coordinator) finishRead(ctx context.Context, cancel context.CancelFunc, m *ReadMachine, replies chan Reply, send func([]Message)) {
	defer c.wg.Done()
	defer cancel()
	wait := c.clk.NewTimer(c.cfg.RepairWait)
	defer wait.Stop()
	step := func(r Reply) { send(m.Step(r)) }
	for !m.Settled() {
		select {
		case r := <-replies:
			step(r)
		case <-wait.C():
			goto final
		case <-ctx.Done():
			goto final
		}
	}
final:
	if _, err := m.Result(); err != nil {
		return
	}
	send(m.Finish())
	for m.RepairsPending() {
		select {
		case r := <-replies:
			step(r)
		case <-ctx.Done():
			return
		}
	}
	if n := m.RepairedCount(); n > 0 {
		c.m.readRepairs.Add(1)
		c.m.repaired.Add(uint64(n))
	}
}
