package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/quorumkv/quorumkv/internal/gopool"
)

// TCP is the network Transport: msgpack frames over a few persistent TCP
// (optionally TLS) connections per peer, multiplexed by request ID.
type TCP struct {
	cfg       TCPConfig
	log       zerolog.Logger
	ln        net.Listener
	addr      string
	serverTLS *tls.Config // the listening side of cfg.TLS, or nil
	clientTLS *tls.Config // the dialling side of cfg.TLS, or nil
	budget    *byteBudget // inbound request bytes in flight
	slots     handlerSlots
	m         counters
	nextID    atomic.Uint64

	ctx       context.Context    // cancelled by Close; parent of handler contexts
	cancel    context.CancelFunc // cancels ctx
	wg        sync.WaitGroup     // every goroutine the transport starts
	handlers  *gopool.Pool       // runs request handlers on reusable goroutines
	closeDone chan struct{}      // closed when Close has finished
	shut      atomic.Bool        // mirrors closing for lock-free reads

	mu      sync.Mutex         // guards the fields below
	closing bool               // Close has begun; no new goroutines or conns
	handler Handler            // set once by Serve
	peers   map[string]*peer   // outbound connection slots by peer address
	conns   map[*conn]struct{} // every open connection, both directions
	inbound int                // open inbound connections
	sources map[string]int     // open inbound connections by source IP
}

var _ Transport = (*TCP)(nil)

// NewTCP validates cfg and starts listening on cfg.ListenAddr. Requests are
// accepted once Serve is called; Call works at once.
func NewTCP(cfg TCPConfig, log zerolog.Logger) (*TCP, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen on %s: %w", cfg.ListenAddr, err)
	}
	handlers, err := gopool.New(gopool.DefaultConfig())
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("transport: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &TCP{
		handlers:  handlers,
		cfg:       cfg,
		log:       log,
		ln:        ln,
		addr:      ln.Addr().String(),
		budget:    newByteBudget(cfg.MaxInflightBytes),
		slots:     make(handlerSlots, cfg.MaxHandlers),
		ctx:       ctx,
		cancel:    cancel,
		closeDone: make(chan struct{}),
		peers:     make(map[string]*peer),
		conns:     make(map[*conn]struct{}),
		sources:   make(map[string]int),
	}
	if cfg.AdvertiseAddr != "" {
		t.addr = cfg.AdvertiseAddr
	}
	if cfg.TLS != nil {
		t.serverTLS = serverTLS(cfg.TLS)
		t.clientTLS = clientTLS(cfg.TLS, cfg.Identify)
	}
	return t, nil
}

// Addr implements Transport: AdvertiseAddr if set, else the listener's
// resolved address.
func (t *TCP) Addr() string { return t.addr }

// Metrics returns a snapshot of the counters.
func (t *TCP) Metrics() Metrics {
	m := t.m.snapshot()
	m.InflightBytes = t.budget.used.Load()
	return m
}

// Serve implements Transport. It starts the accept loop and returns.
func (t *TCP) Serve(h Handler) error {
	if h == nil {
		return fmt.Errorf("%w: nil handler", ErrInvalidConfig)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closing:
		return ErrClosed
	case t.handler != nil:
		return ErrServing
	}
	t.handler = h
	t.wg.Add(1)
	go t.acceptLoop()
	return nil
}

// Close implements Transport.
func (t *TCP) Close() error {
	t.mu.Lock()
	if t.closing {
		t.mu.Unlock()
		<-t.closeDone
		return nil
	}
	t.closing = true
	t.shut.Store(true)
	conns := make([]*conn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()

	err := t.ln.Close()
	for _, c := range conns {
		c.fail(ErrClosed)
	}
	t.cancel() // after the sockets are closed; see conn.fail
	t.wg.Wait()
	_ = t.handlers.Close()
	close(t.closeDone)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("transport: close listener: %w", err)
	}
	return nil
}

func (t *TCP) isClosing() bool { return t.shut.Load() }

// goTracked runs fn in a goroutine tracked by t.wg, unless t is closing.
func (t *TCP) goTracked(fn func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		return false
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		fn()
	}()
	return true
}

func (t *TCP) acceptLoop() {
	defer t.wg.Done()
	var backoff time.Duration
	for {
		nc, err := t.ln.Accept()
		if err != nil {
			if t.isClosing() || errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			t.log.Warn().Err(err).Dur("retry_in", backoff).Msg("transport: accept failed")
			tm := time.NewTimer(backoff)
			select {
			case <-tm.C:
			case <-t.ctx.Done():
				tm.Stop()
				return
			}
			continue
		}
		backoff = 0
		t.m.connsAccepted.Add(1)
		if !t.admitInbound(nc) {
			t.m.connsRefused.Add(1)
			_ = nc.Close()
			continue
		}
		if t.serverTLS != nil {
			nc = tls.Server(nc, t.serverTLS)
		}
		if _, err := t.startConn(nc, false, nc.RemoteAddr().String(), ""); err != nil {
			return // closing
		}
	}
}

// startConn registers nc and starts its reader and writer. peer is the
// node an outbound TLS connection's server authenticated as.
func (t *TCP) startConn(nc net.Conn, outbound bool, remote, peer string) (*conn, error) {
	c := newConn(t, nc, outbound, remote)
	c.peer = peer
	if !outbound {
		c.source = sourceIP(nc)
	}
	t.mu.Lock()
	if t.closing {
		if !outbound {
			t.releaseInboundLocked(c.source)
		}
		t.mu.Unlock()
		c.cancel()
		_ = nc.Close()
		return nil, ErrClosed
	}
	c.handler = t.handler
	t.conns[c] = struct{}{}
	t.wg.Add(2)
	t.mu.Unlock()
	go c.readLoop()
	go c.writeLoop()
	return c, nil
}

func (t *TCP) removeConn(c *conn) {
	t.mu.Lock()
	if _, ok := t.conns[c]; ok && !c.outbound {
		t.releaseInboundLocked(c.source)
	}
	delete(t.conns, c)
	t.mu.Unlock()
}

// sourceIP is the address nc comes from, without its port.
func sourceIP(nc net.Conn) string {
	a := nc.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(a); err == nil {
		return host
	}
	return a
}

// admitInbound counts a new inbound connection against MaxInboundConns
// and MaxConnsPerSource, and reports whether it may stay open. A
// connection admitted here is released by removeConn, or here when it
// does not start.
func (t *TCP) admitInbound(nc net.Conn) bool {
	src := sourceIP(nc)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.inbound >= t.cfg.MaxInboundConns || t.sources[src] >= t.cfg.MaxConnsPerSource {
		return false
	}
	t.inbound++
	t.sources[src]++
	return true
}

func (t *TCP) releaseInboundLocked(src string) {
	t.inbound--
	if t.sources[src]--; t.sources[src] <= 0 {
		delete(t.sources, src)
	}
}

// openConns returns the number of open connections (for tests).
func (t *TCP) openConns() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}

// Call implements Transport.
func (t *TCP) Call(ctx context.Context, addr, method string, body []byte) ([]byte, error) {
	return t.CallNode(ctx, "", addr, method, body)
}

// CallNode implements Transport.
func (t *TCP) CallNode(ctx context.Context, node, addr, method string, body []byte) ([]byte, error) {
	t.m.calls.Add(1)
	out, err := t.call(ctx, node, addr, method, body)
	err = refused(err)
	t.m.callDone(err)
	return out, err
}

func (t *TCP) call(ctx context.Context, node, addr, method string, body []byte) ([]byte, error) {
	if method == "" {
		return nil, fmt.Errorf("call to %s: %w: empty method", addr, ErrBadFrame)
	}
	// Checked with the widest ID: the one assigned below may take up to 9
	// bytes, and a frame over the limit would make the peer close the
	// connection, failing every call on it.
	f := frame{ID: math.MaxUint64, Kind: kindRequest, Method: method, From: t.cfg.NodeID, Body: body, To: node}
	if n := f.size(); n > t.cfg.MaxFrameSize {
		return nil, fmt.Errorf("call %s to %s: %w: %d bytes, limit %d", method, addr, ErrFrameTooLarge, n, t.cfg.MaxFrameSize)
	}
	if t.isClosing() {
		return nil, ErrClosed
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.cfg.DefaultTimeout)
		defer cancel()
	}
	if ctx.Err() != nil {
		return nil, ctxError(ctx, method, addr)
	}
	var (
		c   *conn
		ch  chan result
		err error
	)
	// A connection can fail between being picked and the call being
	// registered on it; nothing was sent yet, so one retry on a fresh
	// connection is safe.
	for attempt := 0; ; attempt++ {
		if c, err = t.getConn(ctx, addr); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%w: %w", ErrNotSent, ctxError(ctx, method, addr))
			}
			return nil, fmt.Errorf("%w: %w", ErrNotSent, err)
		}
		f.ID = t.nextID.Add(1)
		if node != "" && c.peer != "" && c.peer != node {
			return nil, fmt.Errorf("%w: %w: call %s: the server at %s is node %q, not %q", ErrNotSent, ErrWrongNode, method, addr, c.peer, node)
		}
		if ch, err = c.register(f.ID); err == nil {
			break
		}
		if attempt > 0 {
			return nil, fmt.Errorf("%w: %w", ErrNotSent, err)
		}
	}
	if err := c.send(ctx, f); err != nil && ctx.Err() != nil {
		// Not queued (or the connection failed, in which case the
		// failure is already on ch).
		if c.unregister(f.ID) {
			return nil, ctxError(ctx, method, addr)
		}
	}
	select {
	case r := <-ch:
		return r.body, r.err
	case <-ctx.Done():
		if c.unregister(f.ID) {
			return nil, ctxError(ctx, method, addr)
		}
		// The reply (or failure) won the race and is on its way.
		r := <-ch
		return r.body, r.err
	}
}

// ctxError is the error of a call whose ctx ended.
func ctxError(ctx context.Context, method, addr string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("call %s to %s: %w", method, addr, ErrTimeout)
	}
	return fmt.Errorf("call %s to %s: %w", method, addr, ctx.Err())
}

// peer holds the outbound connection slots to one address.
type peer struct {
	addr string
	next atomic.Uint32 // round-robin cursor over slots

	mu    sync.Mutex // guards slots
	slots []slot
}

// slot is one outbound connection, established lazily and re-established
// after it fails.
type slot struct {
	c    *conn   // current connection, possibly closed
	dial *dialOp // dial in progress, or nil
}

// dialOp is a dial shared by every call waiting for the same slot.
type dialOp struct {
	done chan struct{} // closed when c or err is set
	c    *conn
	err  error
}

// getConn returns an open connection to addr: the next slot round-robin.
// If that slot is not connected it starts dialling it and meanwhile hands
// out another open connection, or, if there is none, waits for the dial no
// longer than ctx allows (the dial itself continues, bounded by
// DialTimeout, for the calls that come after).
func (t *TCP) getConn(ctx context.Context, addr string) (*conn, error) {
	t.mu.Lock()
	if t.closing {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	p := t.peers[addr]
	if p == nil {
		p = &peer{addr: addr, slots: make([]slot, t.cfg.ConnsPerPeer)}
		t.peers[addr] = p
	}
	t.mu.Unlock()

	i := int(p.next.Add(1) % uint32(len(p.slots)))
	p.mu.Lock()
	s := &p.slots[i]
	if s.c != nil && !s.c.isClosed() {
		c := s.c
		p.mu.Unlock()
		return c, nil
	}
	op := s.dial
	if op == nil {
		op = &dialOp{done: make(chan struct{})}
		if !t.goTracked(func() { t.dial(p, i, op) }) {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		s.dial = op
	}
	// While slot i connects, use any other open connection to the peer.
	for j := range p.slots {
		if c := p.slots[j].c; c != nil && !c.isClosed() {
			p.mu.Unlock()
			return c, nil
		}
	}
	p.mu.Unlock()
	select {
	case <-op.done:
		return op.c, op.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// dial connects slot i of p and publishes the result in op.
func (t *TCP) dial(p *peer, i int, op *dialOp) {
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.DialTimeout)
	defer cancel()
	d := &net.Dialer{}
	var (
		nc  net.Conn
		err error
	)
	var peer string
	if t.clientTLS != nil {
		td := &tls.Dialer{NetDialer: d, Config: t.clientTLS}
		if nc, err = td.DialContext(ctx, "tcp", p.addr); err == nil {
			if peer, err = peerID(nc.(*tls.Conn), t.cfg.Identify); err != nil {
				_ = nc.Close()
			}
		}
	} else {
		nc, err = d.DialContext(ctx, "tcp", p.addr)
	}
	var c *conn
	switch {
	case err != nil && t.isClosing():
		err = ErrClosed
	case err != nil:
		t.m.dialFailures.Add(1)
		t.log.Debug().Err(err).Str("peer", p.addr).Msg("transport: dial failed")
		err = fmt.Errorf("%w: dial %s: %w", ErrUnreachable, p.addr, err)
	default:
		c, err = t.startConn(nc, true, p.addr, peer)
		if err == nil {
			t.m.connsDialed.Add(1)
		}
	}
	p.mu.Lock()
	p.slots[i].dial = nil
	if c != nil {
		p.slots[i].c = c
	}
	op.c, op.err = c, err
	close(op.done)
	p.mu.Unlock()
}
