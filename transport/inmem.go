package transport

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
)

// DefaultMemTimeout is the deadline of an in-memory Call whose ctx has none,
// until Network.SetDefaultTimeout changes it.
const DefaultMemTimeout = 5 * time.Second

// Network is an in-memory network of Mem transports for tests, with rules
// that break it. Rules name transports by address and are directional
// where they take (from, to). How a call meets them:
//
//   - Unreachable, failing at once with ErrUnreachable: the target address
//     is unknown, closed, not serving yet, or Down; the caller is Down; the
//     two are in different Partition groups; either is Isolated. A call to
//     one's own address is never partitioned or isolated. Block(from, to)
//     does the same for one direction only.
//   - Drop(from, to): the request is lost like a packet; the call returns
//     ErrTimeout at its deadline. The handler does not run.
//   - DropReplies(from, to): the handler runs (its effects happen) but the
//     reply is lost; ErrTimeout at the deadline. A reply is also lost if the
//     two ends became partitioned or isolated while the handler ran.
//   - Delay(from, to, d): the request is delivered d later, measured on the
//     network's clock; rules are checked again at delivery.
//   - Down(addr) while a request is being handled there (or Close of that
//     transport): the caller gets ErrUnreachable at once, like a reset
//     connection; the late reply is discarded.
//
// Deadlines run on the network's clock too: a call's budget is the time
// left until ctx's deadline when Call starts (or the default timeout), and
// the call times out when the clock has moved that far. ctx being cancelled
// or expiring on the wall clock also ends the call. With a clock.Fake, tests
// Advance the clock instead of sleeping.
type Network struct {
	clk clock.Clock

	mu             sync.Mutex // guards the fields below; taken before any Mem.mu
	defaultTimeout time.Duration
	nodes          map[string]*Mem        // open transports by address
	group          map[string]int         // partition group by address; nil when not partitioned
	isolated       map[string]bool        // addresses cut off from everyone
	down           map[string]bool        // crashed addresses
	block          map[link]bool          // requests refused on the link
	drop           map[link]bool          // requests lost on the link
	dropReplies    map[link]bool          // replies to requests on the link lost
	delay          map[link]time.Duration // request delivery delay on the link
	fate           func(from, to, method string, body []byte) Fate
	held           map[string]bool // paused addresses (Hold)
	heldCh         chan struct{}   // closed and replaced when a Hold ends
}

// Fate is what a randomized fault simulation decides for one request (see
// Network.SetFate). The zero Fate delivers it normally.
type Fate struct {
	// Drop loses the request: the handler does not run, and the call
	// times out.
	Drop bool
	// DropReply runs the handler (its effects happen) but loses the
	// reply; the call times out.
	DropReply bool
	// Delay delivers the request that much later, on top of any Delay
	// rule of the link.
	Delay time.Duration
	// Dup delivers that many extra copies of the request; their replies
	// are discarded.
	Dup int
}

// link is a direction between two addresses.
type link struct{ from, to string }

// NewNetwork returns an empty network whose delays and deadlines run on clk.
func NewNetwork(clk clock.Clock) *Network {
	return &Network{
		clk:            clk,
		defaultTimeout: DefaultMemTimeout,
		nodes:          make(map[string]*Mem),
		isolated:       make(map[string]bool),
		down:           make(map[string]bool),
		block:          make(map[link]bool),
		drop:           make(map[link]bool),
		dropReplies:    make(map[link]bool),
		delay:          make(map[link]time.Duration),
		held:           make(map[string]bool),
		heldCh:         make(chan struct{}),
	}
}

// SetFate installs a hook that decides, for every request a transport
// sends to another address, whether it is dropped, delayed, duplicated or
// loses its reply (nil removes it). It runs after the rules above have let
// the request through, and never for a call to one's own address.
func (n *Network) SetFate(f func(from, to, method string, body []byte) Fate) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.fate = f
}

// Hold pauses the process at addr, as SIGSTOP would (on), or resumes it
// (off). While it is paused, requests to it wait before its handler runs,
// replies it has computed wait before they leave, and its own calls wait
// before they are sent: each goes on when the pause ends, unless the
// caller's deadline passed first (a request delivered late still runs its
// handler). Other rules are checked again when the pause ends.
func (n *Network) Hold(addr string, on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if on {
		n.held[addr] = true
		return
	}
	if n.held[addr] {
		delete(n.held, addr)
		close(n.heldCh)
		n.heldCh = make(chan struct{})
	}
}

// holdGate returns a channel that is closed when some pause ends, and
// whether addr is paused now.
func (n *Network) holdGate(addr string) (<-chan struct{}, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.heldCh, n.held[addr]
}

// waitHeld blocks while addr is paused, or until stop is closed; it
// reports whether the pause ended.
func (n *Network) waitHeld(addr string, stop <-chan struct{}) bool {
	for {
		gate, held := n.holdGate(addr)
		if !held {
			return true
		}
		select {
		case <-gate:
		case <-stop:
			return false
		}
	}
}

// fateFor asks the fate hook about a request; the zero Fate without one.
func (n *Network) fateFor(from, to, method string, body []byte) Fate {
	n.mu.Lock()
	f := n.fate
	n.mu.Unlock()
	if f == nil || from == to {
		return Fate{}
	}
	return f(from, to, method, body)
}

// SetDefaultTimeout sets the deadline of calls whose ctx has none.
func (n *Network) SetDefaultTimeout(d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.defaultTimeout = d
}

// NewTransport returns a transport reachable at addr that sends nodeID as
// Request.From. The address may be reused once the previous transport on it
// is closed (to simulate a restart); reusing an open one panics.
func (n *Network) NewTransport(addr, nodeID string) *Mem {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.nodes[addr]; ok {
		panic(fmt.Sprintf("transport: address %q already in use on this network", addr))
	}
	m := &Mem{
		net:     n,
		addr:    addr,
		nodeID:  nodeID,
		serving: make(map[*memCall]struct{}),
		calling: make(map[*memCall]struct{}),
	}
	m.life, m.kill = context.WithCancel(context.Background())
	n.nodes[addr] = m
	return m
}

// Partition splits the network: addresses in different groups cannot reach
// each other. Addresses listed in no group form one more group together, so
// Partition([]string{"a"}) cuts a off from everyone else. An address listed
// twice belongs to the last group naming it. It replaces any previous
// partition.
func (n *Network) Partition(groups ...[]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group = make(map[string]int)
	for i, g := range groups {
		for _, addr := range g {
			n.group[addr] = i
		}
	}
}

// Heal removes the partition and every isolation. Drop, DropReplies, Delay
// and Down rules stay.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group = nil
	clear(n.isolated)
}

// Isolate cuts addr off from every other address until Heal.
func (n *Network) Isolate(addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.isolated[addr] = true
}

// Block makes requests from -> to fail at once with ErrUnreachable (on), as
// in a one-way partition, or flow again (off). Replies are not affected.
func (n *Network) Block(from, to string, on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	setRule(n.block, link{from, to}, on)
}

// Drop makes requests from -> to get lost (on) or delivered again (off).
func (n *Network) Drop(from, to string, on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	setRule(n.drop, link{from, to}, on)
}

// DropReplies makes replies to requests from -> to get lost (on) or
// delivered again (off).
func (n *Network) DropReplies(from, to string, on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	setRule(n.dropReplies, link{from, to}, on)
}

func setRule(m map[link]bool, l link, on bool) {
	if on {
		m[l] = true
	} else {
		delete(m, l)
	}
}

// Delay delays the delivery of requests from -> to by d on the network's
// clock; d <= 0 removes the delay.
func (n *Network) Delay(from, to string, d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if d > 0 {
		n.delay[link{from, to}] = d
	} else {
		delete(n.delay, link{from, to})
	}
}

// Down simulates a crash of the process at addr: calls to and from it fail
// with ErrUnreachable, its calls in progress and the calls it is serving
// fail with ErrUnreachable, and its handlers' ctx is cancelled. The
// transport stays open; Up brings it back.
func (n *Network) Down(addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.down[addr] = true
	if m := n.nodes[addr]; m != nil {
		m.crash()
	}
}

// Up undoes Down.
func (n *Network) Up(addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.down, addr)
}

// reachableLocked reports whether a message can travel from -> to under
// the partition, isolation and down rules.
func (n *Network) reachableLocked(from, to string) bool {
	if n.down[from] || n.down[to] {
		return false
	}
	if from == to {
		return true
	}
	if n.isolated[from] || n.isolated[to] {
		return false
	}
	if n.group != nil {
		gf, ok := n.group[from]
		if !ok {
			gf = -1
		}
		gt, ok := n.group[to]
		if !ok {
			gt = -1
		}
		return gf == gt
	}
	return true
}

// verdict is what the rules decide for a request.
type verdict int

const (
	delivered verdict = iota
	unreachable
	lost
)

// deliver applies the rules to a request from caller to addr and, if it
// gets through, starts the target's handler on it.
func (n *Network) deliver(caller *Mem, addr string, c *memCall, req *Request, fate Fate) verdict {
	n.mu.Lock()
	defer n.mu.Unlock()
	target := n.nodes[addr]
	if target == nil || !n.reachableLocked(caller.addr, addr) || n.block[link{caller.addr, addr}] {
		return unreachable
	}
	if n.drop[link{caller.addr, addr}] || fate.Drop {
		return lost
	}
	if !target.accept(caller, c, req, fate.DropReply) {
		return unreachable
	}
	for range fate.Dup {
		// A copy nobody waits for: its reply goes nowhere.
		target.accept(caller, &memCall{ch: make(chan result, 1)}, req, true)
	}
	return delivered
}

func (n *Network) delayFor(from, to string) time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.delay[link{from, to}]
}

// replyLost reports whether the reply to a request caller -> target is lost.
func (n *Network) replyLost(caller, target string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dropReplies[link{caller, target}] || !n.reachableLocked(target, caller)
}

func (n *Network) remove(m *Mem) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nodes[m.addr] == m {
		delete(n.nodes, m.addr)
	}
}

// Mem is an in-memory Transport on a Network.
type Mem struct {
	net    *Network
	addr   string
	nodeID string
	m      counters
	wg     sync.WaitGroup // handler goroutines

	mu      sync.Mutex // guards the fields below
	closed  bool
	handler Handler               // set once by Serve
	life    context.Context       // handlers' ctx; replaced after each crash
	kill    context.CancelFunc    // cancels life
	serving map[*memCall]struct{} // requests being handled here
	calling map[*memCall]struct{} // this transport's calls in progress
}

var _ Transport = (*Mem)(nil)

// memCall is one call in flight; whoever finishes it first wins. The
// caller marks it done itself when it gives up.
type memCall struct {
	ch   chan result // capacity 1
	done atomic.Bool
}

func (c *memCall) finish(r result) bool {
	if !c.done.CompareAndSwap(false, true) {
		return false
	}
	c.ch <- r
	return true
}

// Addr implements Transport.
func (m *Mem) Addr() string { return m.addr }

// Metrics returns a snapshot of the counters.
func (m *Mem) Metrics() Metrics { return m.m.snapshot() }

// Serve implements Transport. Until it is called, calls to m fail with
// ErrUnreachable.
func (m *Mem) Serve(h Handler) error {
	if h == nil {
		return fmt.Errorf("%w: nil handler", ErrInvalidConfig)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return ErrClosed
	case m.handler != nil:
		return ErrServing
	}
	m.handler = h
	return nil
}

// Close implements Transport: m's own pending calls fail with ErrClosed,
// calls it is serving fail with ErrUnreachable, handlers' ctx is cancelled,
// and Close waits for them to return.
func (m *Mem) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		m.wg.Wait()
		return nil
	}
	m.closed = true
	m.kill()
	serving, calling := m.serving, m.calling
	m.serving, m.calling = make(map[*memCall]struct{}), make(map[*memCall]struct{})
	m.mu.Unlock()

	m.net.remove(m)
	for c := range serving {
		c.finish(result{err: fmt.Errorf("%w: %s closed", ErrUnreachable, m.addr)})
	}
	for c := range calling {
		c.finish(result{err: ErrClosed})
	}
	m.wg.Wait()
	return nil
}

// crash fails everything in flight at m and starts a new life. Called with
// the network's mu held.
func (m *Mem) crash() {
	m.mu.Lock()
	m.kill()
	m.life, m.kill = context.WithCancel(context.Background())
	if m.closed {
		m.kill()
	}
	serving, calling := m.serving, m.calling
	m.serving, m.calling = make(map[*memCall]struct{}), make(map[*memCall]struct{})
	m.mu.Unlock()
	err := fmt.Errorf("%w: %s is down", ErrUnreachable, m.addr)
	for c := range serving {
		c.finish(result{err: err})
	}
	for c := range calling {
		c.finish(result{err: err})
	}
}

// accept starts the handler on req; with dropReply its reply is lost.
// Called with the network's mu held.
func (m *Mem) accept(caller *Mem, c *memCall, req *Request, dropReply bool) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.handler == nil {
		return false
	}
	m.serving[c] = struct{}{}
	m.m.served.Add(1)
	m.m.bytesIn.Add(uint64(len(req.Body)))
	h, life := m.handler, m.life
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		// A paused process runs nothing until it resumes (or dies).
		if !m.net.waitHeld(m.addr, life.Done()) {
			return
		}
		var out []byte
		var err error
		if req.To != "" && req.To != m.nodeID {
			err = refuseWrongNode(req.To, m.nodeID)
		} else {
			out, err = h(life, req)
		}
		if !m.net.waitHeld(m.addr, life.Done()) {
			return
		}
		m.mu.Lock()
		_, ok := m.serving[c]
		delete(m.serving, c)
		m.mu.Unlock()
		if !ok {
			return // failed by Down or Close meanwhile
		}
		if dropReply || m.net.replyLost(caller.addr, m.addr) {
			m.m.dropped.Add(1)
			return
		}
		if err != nil {
			if !c.finish(result{err: toRemote(err)}) {
				caller.m.lateReplies.Add(1)
			}
			return
		}
		m.m.bytesOut.Add(uint64(len(out)))
		if !c.finish(result{body: bytes.Clone(out)}) {
			caller.m.lateReplies.Add(1)
		}
	}()
	return true
}

// Call implements Transport.
func (m *Mem) Call(ctx context.Context, addr, method string, body []byte) ([]byte, error) {
	return m.CallNode(ctx, "", addr, method, body)
}

// CallNode implements Transport.
func (m *Mem) CallNode(ctx context.Context, node, addr, method string, body []byte) ([]byte, error) {
	m.m.calls.Add(1)
	out, err := m.call(ctx, node, addr, method, body)
	err = refused(err)
	m.m.callDone(err)
	return out, err
}

func (m *Mem) call(ctx context.Context, node, addr, method string, body []byte) ([]byte, error) {
	if method == "" {
		return nil, fmt.Errorf("call to %s: %w: empty method", addr, ErrBadFrame)
	}
	if ctx.Err() != nil {
		return nil, ctxError(ctx, method, addr)
	}
	m.net.mu.Lock()
	budget := m.net.defaultTimeout
	m.net.mu.Unlock()
	if dl, ok := ctx.Deadline(); ok {
		budget = time.Until(dl)
	}
	if budget <= 0 {
		return nil, fmt.Errorf("call %s to %s: %w", method, addr, ErrTimeout)
	}
	c := &memCall{ch: make(chan result, 1)}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	m.calling[c] = struct{}{}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.calling, c)
		m.mu.Unlock()
	}()

	clk := m.net.clk
	deadline := clk.NewTimer(budget)
	defer deadline.Stop()
	wait := func(extra <-chan time.Time) (bool, []byte, error) {
		select {
		case <-extra:
			return false, nil, nil
		case r := <-c.ch:
			if r.err == nil {
				m.m.bytesIn.Add(uint64(len(r.body)))
			}
			return true, r.body, r.err
		case <-deadline.C():
			c.done.Store(true)
			return true, nil, fmt.Errorf("call %s to %s: %w", method, addr, ErrTimeout)
		case <-ctx.Done():
			c.done.Store(true)
			return true, nil, ctxError(ctx, method, addr)
		}
	}

	// A paused caller sends nothing until it resumes.
	for {
		gate, held := m.net.holdGate(m.addr)
		if !held {
			break
		}
		select {
		case <-gate:
		case <-deadline.C():
			return nil, fmt.Errorf("call %s to %s: %w", method, addr, ErrTimeout)
		case <-ctx.Done():
			return nil, ctxError(ctx, method, addr)
		}
	}
	fate := m.net.fateFor(m.addr, addr, method, body)
	if d := m.net.delayFor(m.addr, addr) + fate.Delay; d > 0 {
		t := clk.NewTimer(d)
		done, out, err := wait(t.C())
		t.Stop()
		if done {
			return out, err
		}
	}
	req := &Request{From: m.nodeID, Peer: m.nodeID, To: node, Method: method, Body: bytes.Clone(body)}
	switch m.net.deliver(m, addr, c, req, fate) {
	case unreachable:
		return nil, fmt.Errorf("call %s to %s: %w: %w", method, addr, ErrNotSent, ErrUnreachable)
	case lost:
		m.m.dropped.Add(1)
	}
	m.m.bytesOut.Add(uint64(len(body)))
	_, out, err := wait(nil)
	return out, err
}
