package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/rs/zerolog"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/quorumkv/quorumkv/antientropy"
	"github.com/quorumkv/quorumkv/gossip"
	"github.com/quorumkv/quorumkv/handoff"
	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/transport"
	"github.com/quorumkv/quorumkv/version"
)

// Node is one quorumkv server: it owns the store, the transport, gossip,
// the ring, the failure detector, the coordinator, hinted handoff,
// anti-entropy and the HTTP API, and their lifecycles. Nothing below
// imports this package.
type Node struct {
	cfg  Config
	log  zerolog.Logger
	clk  clock.Clock
	hash ring.HashFunc

	store     *store.Store
	tr        transport.Transport
	gossip    *gossip.Gossip
	vets      vetter      // which nodes proved their certificate (vet.go)
	reqm      *reqMetrics // the API's request metrics (reqmetrics.go)
	vetJoin   chan string // gossip addresses of nodes vetted on the packet path, to rejoin
	detector  *gossip.Detector
	replica   *quorum.Replica
	coord     *quorum.Coordinator
	hints     *handoff.Hints
	transfers *handoff.Transfers
	ae        *antientropy.Service

	// view is the membership change this node routes by (nil before it
	// knows a layout); its C is the committed ring.
	view atomic.Pointer[memberView]
	// rings builds the committed and target rings, reusing recent ones.
	rings *ringMemo
	// left is closed when the node has left the cluster (Left).
	left     chan struct{}
	leftOnce sync.Once
	// lostMu guards the persisted hand-off state; lostCh wakes lostLoop.
	lostMu sync.Mutex
	lostCh chan struct{}
	// started is when the node opened (BootstrapWait counts from it).
	started time.Time
	// gossipSaved is the gossip state last persisted.
	gossipSaved []byte
	// gossipKeys serializes gossip key changes (gossipkeys.go).
	gossipKeys gossipKeyState
	// transferCfg is the transfers' configuration, which also bounds
	// the scans this node serves to others.
	transferCfg handoff.TransferConfig

	// book maps member IDs to their metadata (addresses); replaced whole
	// on membership changes.
	book atomic.Pointer[map[string]gossip.Meta]
	// memberCh wakes membershipLoop after a gossip change.
	memberCh chan struct{}
	// storeDown is set while the store is failed (watchStore).
	storeDown atomic.Bool

	metrics   http.Handler
	aeStarted bool // the trees are complete and worth saving at Close

	// auth checks the HTTP API's bearer tokens.
	auth *authGuard

	httpLn  net.Listener
	httpCap *limitListener // httpLn, which it wraps, within Limits.MaxHTTPConns
	httpSrv *http.Server
	joined  int64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
	stopMu sync.Mutex
}

type identity struct {
	ID     string `msgpack:"id"`
	Joined int64  `msgpack:"joined"`
}

const (
	metaIdentity = "identity"
	metaGossip   = "gossip"
	rpcKV        = "kv"
	rpcPing      = "node.ping"
	rpcPartSizes = "node.partsizes"
	rpcTransfers = "node.transfers"
	rpcScan      = "handoff.scan"
)

// Open starts a node: it opens the store, restores the node's identity and
// the membership it last knew, starts the transport and gossip, joins the
// given peers, and serves HTTP. Close stops it.
func Open(cfg Config, log zerolog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n, err := open(cfg, log)
	if err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// open builds the node; on error the caller closes the partial node.
func open(cfg Config, log zerolog.Logger) (n *Node, err error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	log = log.With().Str("node", cfg.ID).Logger()
	n = &Node{cfg: cfg, log: log, clk: cfg.Clock, hash: xxhash.Sum64, memberCh: make(chan struct{}, 1), vetJoin: make(chan string, 16),
		left: make(chan struct{}), lostCh: make(chan struct{}, 1)}
	n.rings = &ringMemo{cfg: n.ringConfig()}
	n.started = n.clk.Now()
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if n.auth, err = newAuthGuard(cfg.TokenFile, log.With().Str("part", "auth").Logger()); err != nil {
		return n, err
	}

	scfg := store.DefaultConfig()
	scfg.Dir = filepath.Join(cfg.DataDir, "store")
	scfg.FS = cfg.FS
	scfg.Sync = cfg.Sync
	scfg.WALMinSyncInterval = cfg.WALMinSyncInterval
	scfg.RowCacheSize = cfg.RowCacheSize
	scfg.Hash = n.hash
	scfg.Clock = n.clk
	scfg.OnWrite = n.onWrite
	scfg.ReapMemory = cfg.ReapMemory
	// Merges may join concurrent writes that each passed the write cap on
	// a different replica: twice the cap (32 MiB, half the RPC frame, by
	// default) bounds what they build.
	scfg.MaxMergeBytes = 2 * cfg.Limits.MaxKeyBytes
	if n.store, err = store.Open(scfg, log.With().Str("part", "store").Logger()); err != nil {
		return n, fmt.Errorf("open store: %w", err)
	}
	if err := n.loadIdentity(); err != nil {
		return n, err
	}
	initial, err := n.loadGossipState()
	if err != nil {
		return n, err
	}

	tlsCfg, err := loadTLS(cfg)
	if err != nil {
		return n, err
	}
	if cfg.Transport != nil {
		n.tr = cfg.Transport
	} else {
		tcfg := transport.DefaultTCPConfig()
		tcfg.NodeID = cfg.ID
		tcfg.ListenAddr = cfg.RPCAddr
		tcfg.TLS = tlsCfg
		tcp, err := transport.NewTCP(tcfg, log.With().Str("part", "rpc").Logger())
		if err != nil {
			return n, fmt.Errorf("rpc listen: %w", err)
		}
		n.tr = tcp
	}
	if cfg.HTTPListener != nil {
		n.httpLn = cfg.HTTPListener
	} else if n.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return n, fmt.Errorf("http listen: %w", err)
	}

	n.detector = gossip.NewDetector(cfg.Detector, n.clk)
	hcfg := handoff.DefaultConfig().Hints
	hcfg.MaxHintBytesPerOwner = cfg.HintBudget
	hcfg.MaxHintBytesTotal = cfg.HintBudgetTotal
	hcfg.Available = n.available
	hcfg.Deliver = n.deliverHint
	hcfg.Prioritize = n.prioritize
	hcfg.Member = n.member
	hcfg.Replicas = n.targetReplicas
	hcfg.Rehome = n.rehomeHint
	if n.hints, err = handoff.NewHints(hcfg, n.store, n.clk, log.With().Str("part", "handoff").Logger()); err != nil {
		return n, err
	}
	tcfg := handoff.DefaultConfig().Transfers
	tcfg.Partitions = cfg.Partitions
	tcfg.BytesPerSecond = float64(cfg.TransferRate)
	if cfg.TransferRate > 0 {
		// A quarter second's worth per batch, so that a slow transfer
		// saves its place often and a crash costs little of it.
		tcfg.BatchBytes = int(min(max(cfg.TransferRate/4, 1<<10), int64(tcfg.BatchBytes)))
	}
	tcfg.Finish = n.finishTransfer
	n.transferCfg = tcfg
	if n.transfers, err = handoff.NewTransfers(tcfg, n.store, scanSource{n}, n.clk, log.With().Str("part", "transfers").Logger()); err != nil {
		return n, err
	}
	n.detector.OnChange(func(peer string, up bool) {
		n.log.Info().Str("peer", peer).Bool("available", up).Msg("failure detector")
		if up {
			n.hints.Kick()
		}
	})

	rcfg := quorum.DefaultReplicaConfig()
	rcfg.Self = cfg.ID
	rcfg.MaxSiblings = cfg.Limits.MaxSiblings
	rcfg.MaxKeyBytes = cfg.Limits.MaxKeyBytes
	rcfg.Replicates = func(k []byte) bool { return n.replicates(k, cfg.ID) }
	n.replica = quorum.NewReplica(rcfg, n.store, n.hints, n.clk)

	gcfg := gossip.DefaultConfig()
	if cfg.FastGossip {
		gcfg = gcfg.Fast()
	}
	gcfg.Meta = gossip.Meta{ID: cfg.ID, Cluster: cfg.Cluster, HTTPAddr: n.httpLn.Addr().String(), RPCAddr: n.tr.Addr(), Joined: n.joined, State: gossip.StateUp,
		Intent: gossip.IntentJoin, Staged: cfg.Stage}
	gcfg.BindAddr = cfg.GossipAddr
	gcfg.Transport = cfg.GossipTransport
	gcfg.Initial = initial
	gcfg.OnChange = n.onMembershipChange
	if tlsCfg != nil {
		gcfg.Vet = n.vetMember
	}
	gcfg.Clock = n.clk
	if gcfg.Keys, err = n.loadGossipKeys(); err != nil {
		return n, err
	}
	if n.gossip, err = gossip.New(gcfg, log.With().Str("part", "gossip").Logger()); err != nil {
		return n, fmt.Errorf("gossip: %w", err)
	}
	if err := n.openAntiEntropy(); err != nil {
		return n, err
	}

	qcfg := quorum.DefaultConfig()
	qcfg.Self = cfg.ID
	qcfg.DefaultTimeout = cfg.RequestTimeout
	qcfg.ReadFanout = cfg.ReadFanout
	qcfg.SpeculateAfter = cfg.SpeculateAfter
	if n.coord, err = quorum.New(qcfg, n.placement, n.available, sender{n}, n.clk, log.With().Str("part", "coordinator").Logger()); err != nil {
		return n, err
	}

	if err := n.ae.Start(); err != nil {
		return n, fmt.Errorf("anti-entropy: %w", err)
	}
	n.aeStarted = true
	if err := n.tr.Serve(n.serveRPC); err != nil {
		return n, fmt.Errorf("rpc serve: %w", err)
	}
	n.hints.Start()
	n.transfers.Start()
	n.wg.Add(1)
	go n.heartbeatLoop()
	// Everything membership drives runs now: route by what gossip knows,
	// then follow its changes.
	n.applyMembership()
	n.wg.Add(2)
	go n.membershipLoop()
	go n.lostLoop()

	if len(cfg.Join) > 0 {
		if _, err := n.gossip.Join(cfg.Join); err != nil {
			if len(initial.Members) == 0 {
				return n, fmt.Errorf("join %v: %w", cfg.Join, err)
			}
			// A restarting node knows its cluster already: serve, and
			// keep trying to reach the seeds.
			n.log.Warn().Err(err).Strs("join", cfg.Join).Msg("join failed; retrying in the background")
			n.wg.Add(1)
			go n.rejoinLoop(cfg.Join)
		}
	}

	n.reqm = newReqMetrics()
	n.metrics = n.metricsHandler()
	var httpsCfg *tls.Config
	if tlsCfg != nil {
		httpsCfg = httpsConfig(tlsCfg)
	}
	n.httpCap = newLimitListener(n.httpLn, cfg.Limits.MaxHTTPConns, httpsCfg)
	var httpLn net.Listener = n.httpCap
	if httpsCfg != nil {
		httpLn = tls.NewListener(n.httpCap, httpsCfg)
	}
	n.httpSrv = &http.Server{
		Handler:           n.Handler(),
		ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout,
		ReadTimeout:       cfg.Limits.ReadTimeout,
		WriteTimeout:      cfg.Limits.WriteTimeout,
		IdleTimeout:       cfg.Limits.IdleTimeout,
		MaxHeaderBytes:    cfg.Limits.MaxHeaderBytes,
		// net/http's own messages (a recovered handler panic, a bad
		// query) go to the node's logger, not to the global log package.
		ErrorLog: stdlog.New(n.log.With().Str("part", "http").Logger(), "", 0),
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.httpSrv.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error().Err(err).Msg("http server")
		}
	}()
	n.log.Info().Str("http", n.HTTPAddr()).Str("rpc", n.tr.Addr()).Str("gossip", n.gossip.Addr()).Msg("node started")
	return n, nil
}

// ID returns the node's ID.
func (n *Node) ID() string { return n.cfg.ID }

// HTTPAddr returns the address the HTTP API listens on.
func (n *Node) HTTPAddr() string { return n.httpLn.Addr().String() }

// RPCAddr returns the internode RPC address.
func (n *Node) RPCAddr() string { return n.tr.Addr() }

// GossipAddr returns the gossip address.
func (n *Node) GossipAddr() string { return n.gossip.Addr() }

// Store returns the node's store, for tests and tools that read a replica
// directly.
func (n *Node) Store() *store.Store { return n.store }

// Ring returns the committed ring, nil until the node knows its cluster's
// layout.
func (n *Node) Ring() *ring.Ring { return n.committed() }

// committed returns the committed ring, nil before a layout is known.
func (n *Node) committed() *ring.Ring {
	if v := n.view.Load(); v != nil {
		return v.ch.C
	}
	return nil
}

// Coordinator returns the node's request coordinator, for embedding and
// benchmarks that bypass HTTP.
func (n *Node) Coordinator() *quorum.Coordinator { return n.coord }

// AntiEntropy returns the node's anti-entropy service.
func (n *Node) AntiEntropy() *antientropy.Service { return n.ae }

// Detector returns the failure detector.
func (n *Node) Detector() *gossip.Detector { return n.detector }

// Close stops the node: HTTP first (in-flight requests finish), then
// background work, gossip, the transport and the store. It is idempotent.
func (n *Node) Close() error {
	n.stopMu.Lock()
	defer n.stopMu.Unlock()
	if n.closed.Swap(true) {
		return nil
	}
	var errs []error
	if n.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
		if err := n.httpSrv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
	} else if n.httpLn != nil {
		n.httpLn.Close()
	}
	n.cancel()
	if n.coord != nil {
		errs = append(errs, n.coord.Close())
	}
	if n.ae != nil {
		errs = append(errs, n.ae.Close())
	}

	if n.transfers != nil {
		errs = append(errs, n.transfers.Close())
	}
	if n.hints != nil {
		errs = append(errs, n.hints.Close())
	}
	if n.gossip != nil {
		errs = append(errs, n.gossip.Close())
	}
	n.wg.Wait()
	if n.tr != nil {
		errs = append(errs, n.tr.Close())
	}
	// Nothing writes to the store any more: save the Merkle trees so the
	// next start skips the rebuild.
	if n.ae != nil && n.store != nil && n.aeStarted {
		errs = append(errs, n.ae.SaveTrees())
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	return errors.Join(errs...)
}

func (n *Node) loadIdentity() error {
	b, err := n.store.GetMeta(metaIdentity)
	switch {
	case errors.Is(err, store.ErrNotFound):
		id := identity{ID: n.cfg.ID, Joined: n.clk.Now().UnixNano()}
		b, _ := msgpack.Marshal(&id)
		if err := n.store.PutMeta(metaIdentity, b); err != nil {
			return fmt.Errorf("persist identity: %w", err)
		}
		n.joined = id.Joined
		return nil
	case err != nil:
		return fmt.Errorf("read identity: %w", err)
	}
	var id identity
	if err := msgpack.Unmarshal(b, &id); err != nil {
		return fmt.Errorf("read identity: %w", err)
	}
	if id.ID != n.cfg.ID {
		return fmt.Errorf("node: data directory %s belongs to node %q, not %q", n.cfg.DataDir, id.ID, n.cfg.ID)
	}
	n.joined = id.Joined
	return nil
}

func (n *Node) loadGossipState() (gossip.State, error) {
	b, err := n.store.GetMeta(metaGossip)
	if errors.Is(err, store.ErrNotFound) {
		return gossip.State{}, nil
	}
	if err != nil {
		return gossip.State{}, fmt.Errorf("read gossip state: %w", err)
	}
	st, err := gossip.DecodeState(b)
	if err != nil {
		n.log.Warn().Err(err).Msg("ignoring undecodable persisted gossip state")
		return gossip.State{}, nil
	}
	return st, nil
}

// onMembershipChange is gossip's OnChange. Gossip may call it before New
// has even returned, so it only signals membershipLoop.
func (n *Node) onMembershipChange() {
	select {
	case n.memberCh <- struct{}{}:
	default: // a rebuild is already pending
	}
}

// membershipLoop rebuilds the ring and address book on membership changes
// and persists the gossip state, so a restarted node knows its cluster
// before gossip runs. Every RejoinInterval it rejoins the members that
// memberlist reports not alive while the failure detector trusts them: a
// partition that outlasted memberlist's memory of the dead is otherwise
// never mended (gossip.Gossip.Rejoin).
func (n *Node) membershipLoop() {
	defer n.wg.Done()
	t := n.clk.NewTicker(n.cfg.RejoinInterval)
	defer t.Stop()
	// Membership is also looked at every MembershipInterval: a bootstrap
	// wait or a transfer's settle time ends without any gossip event.
	tick := n.clk.NewTicker(n.cfg.MembershipInterval)
	defer tick.Stop()
	storeCh, storeOK := n.watchStore(true)
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-storeCh:
			storeCh, storeOK = n.watchStore(storeOK)
		case <-n.memberCh:
			n.applyMembership()
		case addr := <-n.vetJoin:
			n.joinVetted(addr)
		case <-tick.C():
			n.applyMembership()
		case <-t.C():
			n.rejoinLost()
		}
	}
}

// rejoinLost rejoins the members memberlist lost but the detector trusts.
func (n *Node) rejoinLost() {
	var lost []string
	for _, m := range n.gossip.Members() {
		if id := m.Meta.ID; id != n.cfg.ID && m.Status != gossip.StatusAlive && n.detector.Available(id) {
			lost = append(lost, id)
		}
	}
	if len(lost) == 0 {
		return
	}
	if k, err := n.gossip.Rejoin(lost); err != nil && k == 0 {
		n.log.Debug().Err(err).Strs("members", lost).Msg("rejoining members gossip lost")
	} else {
		n.log.Info().Strs("members", lost).Int("answered", k).Msg("rejoined members gossip had lost")
	}
}

// persistGossip saves the gossip state (members, buckets, the layout), so
// a restarted node knows its cluster before gossip runs.
func (n *Node) persistGossip() {
	if !n.storeOK() {
		return // it would fail on every tick; the next change after the reopen saves it
	}
	b, err := gossip.EncodeState(n.gossip.State())
	if err != nil || bytes.Equal(b, n.gossipSaved) {
		return
	}
	if err := n.store.PutMeta(metaGossip, b); err != nil {
		n.log.Warn().Err(err).Msg("persist gossip state")
		return
	}
	n.gossipSaved = b
}

// keepRingPosition persists the join time the cluster remembers for this
// node when it is older than the node's own: the node's disk was lost, and
// gossip gave its ring position back (gossip keeps a member's earliest
// join). A later restart then starts from it.
func (n *Node) keepRingPosition() {
	m, ok := n.gossip.Member(n.cfg.ID)
	if !ok || m.Meta.Removed() || m.Meta.Joined == 0 || m.Meta.Joined >= n.joined {
		return
	}
	b, _ := msgpack.Marshal(&identity{ID: n.cfg.ID, Joined: m.Meta.Joined})
	if err := n.store.PutMeta(metaIdentity, b); err != nil {
		n.log.Warn().Err(err).Msg("persist identity")
		return
	}
	n.log.Info().Time("joined", time.Unix(0, m.Meta.Joined)).Msg("the cluster remembers this node from before its disk was lost: ring position kept")
	n.joined = m.Meta.Joined
}

// updateBook replaces the address book with the live members'.
func (n *Node) updateBook(members []gossip.Member) {
	book := make(map[string]gossip.Meta, len(members))
	for _, m := range members {
		if !m.Meta.Removed() {
			book[m.Meta.ID] = m.Meta
		}
	}
	old := n.book.Swap(&book)
	// A member first seen now is assumed up and must then keep sending
	// heartbeats: seeding the detector makes a member that never answers
	// suspected after the detection time, instead of unknown (and trusted)
	// forever.
	for id, m := range book {
		if id == n.cfg.ID {
			continue
		}
		if old == nil {
			n.detector.Heartbeat(id)
		} else if was, ok := (*old)[id]; !ok {
			n.detector.Heartbeat(id)
		} else if was.State == gossip.StateUnavailable && m.State != gossip.StateUnavailable {
			n.hints.Kick() // its store is back: hand it what it missed
		}
	}
}

func (n *Node) meta(id string) (gossip.Meta, bool) {
	book := n.book.Load()
	if book == nil {
		return gossip.Meta{}, false
	}
	m, ok := (*book)[id]
	return m, ok
}

// available reports whether the failure detector trusts a node and the
// node does not advertise itself unavailable (gossip.StateUnavailable).
// The node itself is available to itself while its store serves.
func (n *Node) available(id string) bool {
	if id == n.cfg.ID {
		return n.storeOK()
	}
	if m, ok := n.meta(id); ok && m.State == gossip.StateUnavailable {
		return false
	}
	return n.detector.Available(id)
}

// rejoinLoop retries the seeds until one answers or the node closes.
func (n *Node) rejoinLoop(seeds []string) {
	defer n.wg.Done()
	t := n.clk.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C():
		}
		if _, err := n.gossip.Join(seeds); err == nil {
			n.log.Info().Strs("join", seeds).Msg("joined")
			return
		}
	}
}

// heartbeatLoop pings every other member once per interval; each answer is
// a heartbeat for the phi accrual detector.
func (n *Node) heartbeatLoop() {
	defer n.wg.Done()
	t := n.clk.NewTicker(n.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C():
		}
		book := n.book.Load()
		if book == nil {
			continue
		}
		var wg sync.WaitGroup
		for id, m := range *book {
			if id == n.cfg.ID {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(n.ctx, n.cfg.HeartbeatInterval)
				defer cancel()
				// The answer must come from this member, not from whatever node
				// now listens at its address.
				if _, err := n.tr.CallNode(ctx, id, m.RPCAddr, rpcPing, nil); err == nil {
					n.detector.Heartbeat(id)
				}
			}()
		}
		wg.Wait()
	}
}

// The store advances its actor epoch when it heals a corrupt record; the
// replica must see it.
var _ quorum.EpochStore = (*store.Store)(nil)

// sender delivers coordinator requests: to the local replica directly, to
// others over the transport.
type sender struct{ n *Node }

func (s sender) Send(ctx context.Context, to string, req *quorum.Request) (*quorum.Response, error) {
	if to == s.n.cfg.ID {
		return s.n.replica.Handle(ctx, req)
	}
	m, ok := s.n.meta(to)
	if !ok {
		return nil, fmt.Errorf("%w: node: unknown member %q", quorum.ErrNotApplied, to)
	}
	body, err := wire.Marshal(req, req.SizeHint())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", quorum.ErrNotApplied, err)
	}
	out, err := s.n.tr.CallNode(ctx, to, m.RPCAddr, rpcKV, body)
	if err != nil {
		var re *transport.RemoteError
		switch {
		case errors.As(err, &re) && re.Code == quorum.CodeTooManySiblings:
			return nil, fmt.Errorf("%w: %s", quorum.ErrTooManySiblings, re.Message)
		case errors.As(err, &re) && re.Code == quorum.CodeKeyTooLarge:
			return nil, fmt.Errorf("%w: %w: %s", quorum.ErrKeyTooLarge, version.ErrTooLarge, re.Message)
		case errors.As(err, &re) && re.Code == quorum.CodeCorrupt:
			return nil, fmt.Errorf("%w: %s: %s", quorum.ErrCorruptReplica, to, re.Message)
		case errors.As(err, &re) && re.Code == quorum.CodeHintRefused:
			return nil, fmt.Errorf("%w: %w: %s: %s", quorum.ErrNotApplied, quorum.ErrHintRefused, to, re.Message)
		case errors.As(err, &re) && re.Code == quorum.CodeImplausible:
			return nil, fmt.Errorf("%w: %w: %s: %s", quorum.ErrImplausible, version.ErrImplausible, to, re.Message)
		case errors.As(err, &re) && re.Code == quorum.CodeNotReplica:
			return nil, fmt.Errorf("%w: %s: %s", quorum.ErrNotReplica, to, re.Message)
		case errors.As(err, &re) && re.Code == quorum.CodeNotApplied,
			errors.Is(err, transport.ErrNotSent):
			return nil, fmt.Errorf("%w: %s: %w", quorum.ErrNotApplied, to, err)
		}
		return nil, err
	}
	var resp quorum.Response
	if err := wire.Check(out); err != nil {
		return nil, fmt.Errorf("node: reply from %s: %w", to, err)
	}
	if err := msgpack.Unmarshal(out, &resp); err != nil {
		return nil, fmt.Errorf("node: decode reply from %s: %w", to, err)
	}
	return &resp, nil
}

// ApplyAsync implements quorum.AsyncApplier for the local replica.
func (s sender) ApplyAsync(ctx context.Context, to string, req *quorum.Request) (*quorum.Response, func() error, error) {
	return s.n.replica.ApplyAsync(ctx, req)
}

// serveRPC routes internode requests. Over TLS, a request is served only
// when the node its certificate names is a current member.
func (n *Node) serveRPC(ctx context.Context, req *transport.Request) ([]byte, error) {
	if req.Method == rpcPing {
		// Answered to any peer whose certificate the transport accepted:
		// it tells nothing, and a node being vetted (vet.go), not yet a
		// member, proves its certificate with it.
		return nil, nil
	}
	if req.Peer != "" && !n.currentMember(req.Peer) {
		n.log.Warn().Str("peer", req.Peer).Str("method", req.Method).Msg("rpc: refused a request from a node that is not a member")
		return nil, &transport.RemoteError{Code: transport.CodeUnauthenticated, Message: fmt.Sprintf("node: %q is not a member of this cluster", req.Peer)}
	}
	if len(req.Body) > 0 {
		if err := wire.Check(req.Body); err != nil {
			return nil, fmt.Errorf("node: %s request from %s: %w", req.Method, req.From, err)
		}
	}
	switch {
	case req.Method == rpcKV:
		var r quorum.Request
		if err := msgpack.Unmarshal(req.Body, &r); err != nil {
			return nil, fmt.Errorf("node: decode request: %w", err)
		}
		resp, err := n.replica.Handle(ctx, &r)
		if err != nil {
			return nil, err
		}
		return wire.Marshal(resp, resp.SizeHint())
	case strings.HasPrefix(req.Method, "ae.") && n.ae != nil:
		return n.ae.HandleRPC(ctx, req)
	case req.Method == rpcScan:
		return n.serveScan(req.Body)
	case req.Method == rpcPartSizes:
		return n.servePartSizes(req.Body)
	case req.Method == rpcTransfers:
		return msgpack.Marshal(n.localTransfers())
	case req.Method == rpcGossipKeys:
		return n.serveGossipKeys(req.Body)
	}
	return nil, fmt.Errorf("node: unknown method %q", req.Method)
}

// deliverHint hands a hint back to its owner: a merge on the owner, which
// version.Sync makes idempotent.
func (n *Node) deliverHint(ctx context.Context, owner string, k []byte, set version.Set) error {
	ctx, cancel := context.WithTimeout(ctx, internalTimeout)
	defer cancel()
	_, err := sender{n}.Send(ctx, owner, &quorum.Request{Kind: quorum.KindMerge, Key: k, Set: set})
	return err
}

// bucketProps returns a bucket's properties, or the defaults.
func (n *Node) bucketProps(bucket string) gossip.BucketProps {
	if p, ok := n.gossip.Bucket(bucket); ok {
		return p
	}
	return n.cfg.DefaultBucket
}

// internalTimeout bounds internode calls made outside client requests.
const internalTimeout = 5 * time.Second
