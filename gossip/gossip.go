package gossip

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/memberlist"
	"github.com/rs/zerolog"

	"github.com/quorumkv/quorumkv/internal/clock"
)

// Gossip is a node's view of the cluster: ring members with their metadata
// and liveness, cluster-wide bucket properties and the committed layout.
// It is safe for concurrent use.
type Gossip struct {
	cfg   Config
	log   zerolog.Logger
	clk   clock.Clock
	ml    *memberlist.Memberlist
	addr  string // the advertised address, read once: memberlist's copy is not safe to read later
	queue *memberlist.TransmitLimitedQueue
	alive atomic.Int32 // members with StatusAlive; scales retransmits

	// keyring is memberlist's, nil when gossip is not encrypted; keyMu
	// serializes the changes made through InstallKey, UseKey and RemoveKey.
	keyring *memberlist.Keyring
	keyMu   sync.Mutex

	mu     sync.Mutex        // guards tbl, status and the spread targets
	tbl    *table            // replicated member table and buckets
	status map[string]Status // local liveness by member ID
	// spreadAll asks the pending spreading pass to send the layout to
	// every alive member (a layout was adopted); spreadTo to those only
	// (they came alive and may have missed it).
	spreadAll bool
	spreadTo  map[string]bool

	changed   chan struct{} // capacity 1: an OnChange call is pending
	spread    chan struct{} // capacity 1: a layout spreading pass is pending
	stop      chan struct{} // closed by Close
	wg        sync.WaitGroup
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	n counters
}

// counters back Metrics.
type counters struct {
	joins, leaves, updates atomic.Uint64
	broadcasts, messages   atomic.Uint64
	pushPulls              atomic.Uint64
	memberUpds, bucketUpds atomic.Uint64
	rejected, decodeErrors atomic.Uint64
	notifications          atomic.Uint64
	layoutsAdopted         atomic.Uint64
	layoutsRejected        atomic.Uint64
	layoutSends, sendErrs  atomic.Uint64
}

// layoutSendParallel bounds the reliable sends of one spreading pass in
// flight at a time, so that one unresponsive member (each send may take
// Config.TCPTimeout) does not hold up the rest.
const layoutSendParallel = 8

// New validates cfg, restores cfg.Initial and starts memberlist listening on
// cfg.BindAddr. It does not join anyone: call Join.
func New(cfg Config, log zerolog.Logger) (*Gossip, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Gossip{
		cfg:     cfg,
		log:     log,
		clk:     cfg.Clock,
		tbl:     newTable(cfg.Meta.ID, cfg.Meta.Cluster),
		status:  make(map[string]Status),
		changed: make(chan struct{}, 1),
		spread:  make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	now := g.clk.Now().UnixNano()
	for _, m := range cfg.Initial.Members {
		if m.Cluster != cfg.Meta.Cluster {
			log.Warn().Str("member", m.ID).Str("cluster", m.Cluster).
				Msg("gossip: dropping restored member of another cluster")
			continue
		}
		g.tbl.setMember(versioned{Meta: m})
	}
	for name, p := range cfg.Initial.Buckets {
		g.tbl.buckets[name] = p
	}
	if l := cfg.Initial.Layout; l != nil {
		c := l.Clone()
		g.tbl.layout = &c
	}
	self := cfg.Meta
	self.IntentVer = 0 // the initial intent: anything set or remembered wins
	if prev, ok := g.tbl.members[self.ID]; ok {
		if prev.Meta.Removed() {
			return nil, fmt.Errorf("%w: %q", ErrRemoved, self.ID)
		}
		if self.Joined == 0 {
			self.Joined = prev.Meta.Joined
		}
		if self.Seen == 0 {
			self.Seen = prev.Meta.Seen
		}
		if self.Synced == 0 {
			self.Synced = prev.Meta.Synced
		}
		if grp := prev.Meta.group(); grp != (opGroup{}) {
			self.setGroup(grp)
		}
	}
	if self.Joined == 0 {
		self.Joined = now
	}
	g.tbl.setMember(versioned{Meta: self, Ver: max(now, 1)})

	g.queue = &memberlist.TransmitLimitedQueue{
		NumNodes:       func() int { return max(1, int(g.alive.Load())) },
		RetransmitMult: cfg.RetransmitMult,
	}
	mc := cfg.memberlistConfig()
	var err error
	if cfg.Transport == nil {
		// memberlist binds and advertises IP addresses: a host name
		// (a container's, say) would bind every interface and advertise
		// "::", which no other node can reach.
		if mc.BindAddr, err = resolveHost(mc.BindAddr); err != nil {
			return nil, fmt.Errorf("gossip: bind address %q: %w", cfg.BindAddr, err)
		}
	}
	if mc.AdvertiseAddr, err = resolveHost(mc.AdvertiseAddr); err != nil {
		return nil, fmt.Errorf("gossip: advertise address %q: %w", cfg.AdvertiseAddr, err)
	}
	g.keyring = mc.Keyring
	d := delegate{g}
	mc.Delegate, mc.Events, mc.Merge, mc.Alive = d, d, d, d
	mc.Logger = newStdLogger(log)
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip: start memberlist: %w", err)
	}
	g.ml = ml
	g.addr = ml.LocalNode().Address()
	if self.GossipAddr == "" {
		// Only now is the bound address known (port 0 picks one).
		g.mu.Lock()
		v := g.tbl.members[self.ID]
		v.Meta.GossipAddr = g.addr
		g.tbl.setMember(v)
		g.mu.Unlock()
		_ = ml.UpdateNode(0) // refresh memberlist's copy of the metadata
	}
	if cfg.OnChange != nil {
		g.wg.Add(1)
		go g.notifier()
	}
	g.wg.Add(1)
	go g.spreader()
	return g, nil
}

// Join contacts the seeds (host:port) and syncs state with each that
// answers. It tries the whole list up to Config.JoinAttempts times,
// JoinBackoff apart, and returns how many seeds were contacted. An empty
// list is not an error: the node starts a cluster of its own.
func (g *Gossip) Join(addrs []string) (int, error) {
	if g.closed.Load() {
		return 0, ErrClosed
	}
	if len(addrs) == 0 {
		return 0, nil
	}
	var last error
	for attempt := 0; attempt < g.cfg.JoinAttempts; attempt++ {
		if attempt > 0 {
			t := g.clk.NewTimer(g.cfg.JoinBackoff)
			select {
			case <-t.C():
			case <-g.stop:
				t.Stop()
				return 0, ErrClosed
			}
		}
		n, err := g.ml.Join(addrs)
		if n > 0 {
			// The seeds have this node's whole entry from the push-pull;
			// the broadcast takes its operator group (its initial
			// intent), which node metadata leaves out, to the others
			// sooner than their next push-pull would.
			g.mu.Lock()
			v := g.tbl.members[g.tbl.self]
			g.mu.Unlock()
			g.queueMember(v)
			return n, nil
		}
		last = err
		g.log.Debug().Err(err).Int("attempt", attempt+1).Msg("gossip: join attempt failed")
	}
	return 0, fmt.Errorf("%w: %s: %v", ErrJoin, strings.Join(addrs, ","), last)
}

// Rejoin contacts the gossip addresses of the given members, as Join does
// the seeds, and returns how many answered. memberlist forgets a member
// it declared dead once GossipToTheDeadTime has passed, and then never
// merges with it again on its own, even after the partition that cut it
// off heals; the node calls Rejoin for members its failure detector
// trusts while memberlist reports them not alive. Members without a
// known gossip address are skipped.
func (g *Gossip) Rejoin(ids []string) (int, error) {
	if g.closed.Load() {
		return 0, ErrClosed
	}
	var addrs []string
	g.mu.Lock()
	for _, id := range ids {
		if v, ok := g.tbl.members[id]; ok && id != g.cfg.Meta.ID && !v.Meta.Removed() && v.Meta.GossipAddr != "" {
			addrs = append(addrs, v.Meta.GossipAddr)
		}
	}
	g.mu.Unlock()
	if len(addrs) == 0 {
		return 0, nil
	}
	return g.ml.Join(addrs)
}

// Addr returns the gossip address other nodes reach this one at (the
// advertised address; with a port-0 BindAddr, the port actually bound).
func (g *Gossip) Addr() string { return g.addr }

// Members returns every ring member, self included, sorted by ID. Members
// stay until removed, whatever their status; tombstones are not listed.
func (g *Gossip) Members() []Member {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Member, 0, len(g.tbl.members))
	for id, v := range g.tbl.members {
		if !v.Meta.Removed() {
			out = append(out, Member{Meta: v.Meta, Status: g.status[id]})
		}
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Meta.ID, b.Meta.ID) })
	return out
}

// Member returns one member by ID. Unlike Members it also finds
// tombstones, whose Meta.State is StateRemoved.
func (g *Gossip) Member(id string) (Member, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	v, ok := g.tbl.members[id]
	if !ok {
		return Member{}, false
	}
	return Member{Meta: v.Meta, Status: g.status[id]}, true
}

// SetBucket validates p, stamps it (Updated from the clock, strictly after
// the properties it replaces; UpdatedBy this node) and gossips it. It
// returns the stored properties.
func (g *Gossip) SetBucket(name string, p BucketProps) (BucketProps, error) {
	if g.closed.Load() {
		return BucketProps{}, ErrClosed
	}
	if err := validBucketName(name); err != nil {
		return BucketProps{}, err
	}
	p.UpdatedBy = g.cfg.Meta.ID
	now := g.clk.Now().UnixNano()
	g.mu.Lock()
	p.Updated = nextVer(now, g.tbl.buckets[name].Updated)
	if err := p.Validate(); err != nil {
		g.mu.Unlock()
		return BucketProps{}, err
	}
	g.tbl.buckets[name] = p
	g.mu.Unlock()
	g.queueBucket(name, p)
	g.notify()
	return p, nil
}

// Bucket returns the properties of one bucket, if any were set.
func (g *Gossip) Bucket(name string) (BucketProps, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.tbl.buckets[name]
	return p, ok
}

// Buckets returns a copy of every bucket's properties.
func (g *Gossip) Buckets() map[string]BucketProps {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tbl.state().Buckets
}

// State snapshots the member table (tombstones included) and buckets for
// persisting; pass it back as Config.Initial on restart.
func (g *Gossip) State() State {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tbl.state()
}

// UpdateMeta replaces this node's node-owned metadata (addresses, State,
// Seen, Synced, Joined) and re-advertises it. ID and Cluster cannot change
// and StateRemoved is reserved (ErrMetaImmutable); a zero Joined keeps the
// current one. UpdateMeta ignores the operator-owned fields of m (Intent,
// Staged, Seed, IntentVer): the entry keeps the group it holds, which
// only SetIntent and gossip change, so that the node cannot overwrite an
// intent an operator set. If the broadcast does not go out within
// Config.UpdateTimeout the change is kept and spreads by push-pull.
func (g *Gossip) UpdateMeta(m Meta) error {
	if g.closed.Load() {
		return ErrClosed
	}
	if m.ID != g.cfg.Meta.ID || m.Cluster != g.cfg.Meta.Cluster || m.Removed() {
		return ErrMetaImmutable
	}
	now := g.clk.Now().UnixNano()
	g.mu.Lock()
	cur := g.tbl.members[g.tbl.self]
	if cur.Meta.Removed() {
		g.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrRemoved, m.ID)
	}
	if m.Joined == 0 {
		m.Joined = cur.Meta.Joined
	}
	m.setGroup(cur.Meta.group())
	if err := m.Validate(); err != nil {
		g.mu.Unlock()
		return err
	}
	g.tbl.setMember(versioned{Meta: m, Ver: nextVer(now, cur.Ver)})
	g.mu.Unlock()
	g.notify()
	if err := g.ml.UpdateNode(g.cfg.UpdateTimeout); err != nil {
		g.log.Warn().Err(err).Msg("gossip: meta update not broadcast yet; push-pull will carry it")
	}
	return nil
}

// Intent is what an operator asks of a member through SetIntent.
type Intent struct {
	// Intent is IntentJoin, IntentLeave or IntentRemove.
	Intent string
	// Staged means the intent waits for an operator's commit.
	Staged bool
	// Seed is the name the ring is to hash for the member; empty means its
	// ID. A replacement node takes the seed of the node it replaces. At
	// most MaxIDLen bytes.
	Seed string
	// Joined, if non-zero and earlier than the member's join time,
	// replaces it: a replacement node takes the join time of the node it
	// replaces (the table keeps the earliest join time, so it sticks).
	Joined int64
}

// Validate checks the intent, the seed's length and the join time. Errors
// wrap ErrBadMeta.
func (in Intent) Validate() error {
	switch {
	case !validIntent(in.Intent):
		return fmt.Errorf("%w: intent %q, want %q, %q or %q", ErrBadMeta, in.Intent, IntentJoin, IntentLeave, IntentRemove)
	case len(in.Seed) > MaxIDLen:
		return fmt.Errorf("%w: seed must be at most %d bytes", ErrBadMeta, MaxIDLen)
	case in.Joined < 0:
		return fmt.Errorf("%w: negative join time", ErrBadMeta)
	}
	return nil
}

// SetIntent sets the operator-owned group of member id (this node or any
// other): Intent, Staged and Seed from in, with an IntentVer strictly
// greater than the one it replaces and at least the clock's reading, so it
// wins over every copy of the group the cluster holds, on the member
// itself too. It takes in.Joined as the join time if that is non-zero and
// earlier. The whole entry is broadcast, OnChange is notified, and the new
// Meta returned. Errors: ErrBadMeta (in.Validate), ErrUnknownMember,
// ErrRemoved for a tombstone, ErrClosed.
func (g *Gossip) SetIntent(id string, in Intent) (Meta, error) {
	if g.closed.Load() {
		return Meta{}, ErrClosed
	}
	if err := in.Validate(); err != nil {
		return Meta{}, err
	}
	now := g.clk.Now().UnixNano()
	g.mu.Lock()
	cur, ok := g.tbl.members[id]
	switch {
	case !ok:
		g.mu.Unlock()
		return Meta{}, fmt.Errorf("%w: %q", ErrUnknownMember, id)
	case cur.Meta.Removed():
		g.mu.Unlock()
		return Meta{}, fmt.Errorf("%w: %q", ErrRemoved, id)
	}
	v := cur
	v.Meta.setGroup(opGroup{
		Intent:    in.Intent,
		Staged:    in.Staged,
		Seed:      in.Seed,
		IntentVer: nextVer(now, cur.Meta.IntentVer),
	})
	v.Meta.Joined = minJoined(cur.Meta.Joined, in.Joined)
	g.tbl.setMember(v)
	g.mu.Unlock()
	g.queueMember(v)
	g.notify()
	return v.Meta, nil
}

// Layout returns the committed layout held, if any.
func (g *Gossip) Layout() (Layout, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.tbl.layout == nil {
		return Layout{}, false
	}
	return g.tbl.layout.Clone(), true
}

// ProposeLayout validates l (ErrBadLayout) and adopts it if it supersedes
// the layout held (Layout.Supersedes), reporting whether it did. An
// adopted layout is notified to OnChange and spread: a goroutine of the
// Gossip sends it to every other alive member over memberlist's reliable
// stream (a layout may be too big for a UDP broadcast), one pass at a
// time, a pass covering every proposal adopted before it began; receivers
// adopt it by precedence and do not forward it. Members it misses, and
// members that join later, get it from the push-pull state.
func (g *Gossip) ProposeLayout(l Layout) (bool, error) {
	if g.closed.Load() {
		return false, ErrClosed
	}
	g.mu.Lock()
	adopted, lost, err := g.tbl.mergeLayout(l)
	g.mu.Unlock()
	switch {
	case err != nil:
		g.n.layoutsRejected.Add(1)
		return false, err
	case lost:
		g.n.layoutsRejected.Add(1)
	case adopted:
		g.n.layoutsAdopted.Add(1)
		g.log.Info().Uint64("epoch", l.Epoch).Int("members", len(l.Members)).Msg("gossip: layout adopted")
		g.notify()
		g.kickSpread("")
	}
	return adopted, nil
}

// spreader runs layout spreading passes; it is owned by the Gossip and
// stopped by Close.
func (g *Gossip) spreader() {
	defer g.wg.Done()
	for {
		select {
		case <-g.stop:
			return
		case <-g.spread:
			g.spreadLayout()
		}
	}
}

// spreadLayout sends the layout held to the members kickSpread asked for
// that memberlist reports alive, layoutSendParallel at a time, and returns
// when all sends have ended or Close was called.
func (g *Gossip) spreadLayout() {
	g.mu.Lock()
	l := g.tbl.layout
	all, to := g.spreadAll, g.spreadTo
	g.spreadAll, g.spreadTo = false, nil
	var peers []*memberlist.Node
	for id, v := range g.tbl.members {
		if id == g.tbl.self || v.Meta.Removed() || g.status[id] != StatusAlive || !all && !to[id] {
			continue
		}
		if n := gossipNode(id, v.Meta.GossipAddr); n != nil {
			peers = append(peers, n)
		}
	}
	g.mu.Unlock()
	if l == nil || len(peers) == 0 {
		return
	}
	b, err := encodeMessage(kindLayout, layoutMsg{Cluster: g.cfg.Meta.Cluster, Layout: *l})
	if err != nil { // unreachable: a held layout is valid
		g.log.Error().Err(err).Msg("gossip: encode layout")
		return
	}
	sem := make(chan struct{}, layoutSendParallel)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, p := range peers {
		select {
		case <-g.stop:
			return
		case sem <- struct{}{}:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if g.closed.Load() {
				return
			}
			g.n.layoutSends.Add(1)
			if err := g.ml.SendReliable(p, b); err != nil {
				g.n.sendErrs.Add(1)
				g.log.Debug().Err(err).Str("peer", p.Name).Msg("gossip: layout not sent; push-pull will carry it")
			}
		}()
	}
}

// kickSpread asks for a spreading pass: to every alive member when id is
// empty, else to id (added to those a pending pass sends to).
func (g *Gossip) kickSpread(id string) {
	g.mu.Lock()
	if id == "" {
		g.spreadAll = true
	} else {
		if g.spreadTo == nil {
			g.spreadTo = map[string]bool{}
		}
		g.spreadTo[id] = true
	}
	g.mu.Unlock()
	select {
	case g.spread <- struct{}{}:
	default: // a pass is pending; it will send the layout held then
	}
}

// gossipNode is the memberlist address of member id at its gossip address
// (an IP and port, as memberlist advertises), or nil if it has none.
func gossipNode(id, addr string) *memberlist.Node {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host)
	port, err := strconv.ParseUint(ps, 10, 16)
	if ip == nil || err != nil {
		return nil
	}
	return &memberlist.Node{Name: id, Addr: ip, Port: uint16(port)}
}

// Remove tombstones a member: it leaves the ring for good and the tombstone
// is gossiped and persisted so no node resurrects it. Removing a tombstone
// again is a no-op.
func (g *Gossip) Remove(id string) error {
	if g.closed.Load() {
		return ErrClosed
	}
	if id == g.tbl.self {
		return ErrRemoveSelf
	}
	now := g.clk.Now().UnixNano()
	g.mu.Lock()
	cur, ok := g.tbl.members[id]
	if !ok {
		g.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrUnknownMember, id)
	}
	if cur.Meta.Removed() {
		g.mu.Unlock()
		return nil
	}
	v := versioned{Meta: cur.Meta, Ver: nextVer(now, cur.Ver)}
	v.Meta.State = StateRemoved
	g.tbl.setMember(v)
	g.mu.Unlock()
	g.queueMember(v)
	g.notify()
	return nil
}

// Close shuts memberlist down without leaving (peers see this node fail,
// and it stays a ring member) and waits for the Gossip's goroutines. It is
// idempotent.
func (g *Gossip) Close() error {
	g.closeOnce.Do(func() {
		g.closed.Store(true)
		err := g.ml.Shutdown()
		close(g.stop)
		g.wg.Wait()
		if err != nil {
			g.closeErr = fmt.Errorf("gossip: shutdown: %w", err)
		}
	})
	return g.closeErr
}

// Metrics returns a snapshot of the counters.
func (g *Gossip) Metrics() Metrics {
	var m Metrics
	g.mu.Lock()
	for id, v := range g.tbl.members {
		if v.Meta.Removed() {
			m.Removed++
			continue
		}
		m.Members++
		if g.status[id] == StatusAlive {
			m.Alive++
		}
	}
	m.Buckets = len(g.tbl.buckets)
	g.mu.Unlock()
	m.Joins = g.n.joins.Load()
	m.Leaves = g.n.leaves.Load()
	m.Updates = g.n.updates.Load()
	m.BroadcastsQueued = g.n.broadcasts.Load()
	m.MessagesReceived = g.n.messages.Load()
	m.PushPullMerges = g.n.pushPulls.Load()
	m.MemberUpdates = g.n.memberUpds.Load()
	m.BucketUpdates = g.n.bucketUpds.Load()
	m.Rejected = g.n.rejected.Load()
	m.DecodeErrors = g.n.decodeErrors.Load()
	m.Notifications = g.n.notifications.Load()
	m.LayoutsAdopted = g.n.layoutsAdopted.Load()
	m.LayoutsRejected = g.n.layoutsRejected.Load()
	m.LayoutSends = g.n.layoutSends.Load()
	m.LayoutSendErrors = g.n.sendErrs.Load()
	return m
}

// notify schedules an OnChange call; calls coalesce while one is pending.
func (g *Gossip) notify() {
	if g.cfg.OnChange == nil {
		return
	}
	select {
	case g.changed <- struct{}{}:
	default:
	}
}

// notifier runs OnChange; it is owned by the Gossip and stopped by Close.
func (g *Gossip) notifier() {
	defer g.wg.Done()
	for {
		select {
		case <-g.stop:
			return
		case <-g.changed:
			g.n.notifications.Add(1)
			g.cfg.OnChange()
		}
	}
}

// setStatusLocked records a member's liveness; g.mu must be held.
func (g *Gossip) setStatusLocked(id string, s Status) bool {
	old := g.status[id]
	if old == s {
		return false
	}
	g.status[id] = s
	if old == StatusAlive {
		g.alive.Add(-1)
	}
	if s == StatusAlive {
		g.alive.Add(1)
	}
	return true
}

func (g *Gossip) queueBucket(name string, p BucketProps) {
	b, err := encodeMessage(kindBucket, bucketMsg{Cluster: g.cfg.Meta.Cluster, Name: name, Props: p})
	if err != nil {
		g.log.Error().Err(err).Str("bucket", name).Msg("gossip: encode bucket")
		return
	}
	g.n.broadcasts.Add(1)
	g.queue.QueueBroadcast(&broadcast{name: "bucket/" + name, msg: b})
}

func (g *Gossip) queueMember(v versioned) {
	b, err := encodeMessage(kindMember, toWire(v))
	if err != nil {
		g.log.Error().Err(err).Str("member", v.Meta.ID).Msg("gossip: encode member")
		return
	}
	g.n.broadcasts.Add(1)
	g.queue.QueueBroadcast(&broadcast{name: "member/" + v.Meta.ID, msg: b})
}
