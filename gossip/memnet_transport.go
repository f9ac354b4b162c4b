package gossip

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// MemTransport is a memberlist transport on a MemNetwork. It implements
// memberlist.NodeAwareTransport (and so memberlist.Transport): set it as
// Config.Transport. It is safe for concurrent use.
//
// Packets are queued for the reader on PacketCh, up to a bound past which
// they are lost. Streams are net.Pipe pairs handed to the target's
// StreamCh; a dial fails if the target does not take its end within the
// timeout. PacketCh and StreamCh are never closed, not even by Shutdown:
// memberlist shuts the transport down before it stops reading them, and a
// closed channel would hand it a nil packet or conn.
type MemTransport struct {
	n    *MemNetwork
	addr string       // canonical ip:port, the key of the rules
	ip   net.IP       // the address's IP, 4-byte form
	port int          // the address's port
	udp  *net.UDPAddr // From of the packets it sends
	tcp  *net.TCPAddr // its end's address on streams

	packetCh chan *memberlist.Packet // buffered, memPacketQueue
	streamCh chan net.Conn           // unbuffered: a send is an accept
	done     chan struct{}           // closed by Shutdown

	shutdown sync.Once
	wg       sync.WaitGroup // delayed deliveries scheduled to it

	mu struct {
		sync.Mutex
		closed  bool                     // set with done closed
		conns   map[*memConn]struct{}    // its open stream ends
		pending map[*time.Timer]struct{} // delayed deliveries to it
	}
}

var _ memberlist.NodeAwareTransport = (*MemTransport)(nil)

func newMemTransport(n *MemNetwork, ap netip.AddrPort) *MemTransport {
	ip := net.IP(ap.Addr().AsSlice())
	port := int(ap.Port())
	t := &MemTransport{
		n:        n,
		addr:     ap.String(),
		ip:       ip,
		port:     port,
		udp:      &net.UDPAddr{IP: ip, Port: port},
		tcp:      &net.TCPAddr{IP: ip, Port: port},
		packetCh: make(chan *memberlist.Packet, memPacketQueue),
		streamCh: make(chan net.Conn),
		done:     make(chan struct{}),
	}
	t.mu.conns = make(map[*memConn]struct{})
	t.mu.pending = make(map[*time.Timer]struct{})
	return t
}

// Addr returns the transport's address, "ip:port".
func (t *MemTransport) Addr() string { return t.addr }

// FinalAdvertiseAddr returns the transport's own IP and port, whatever it
// is given (it implements memberlist.Transport).
func (t *MemTransport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return append(net.IP(nil), t.ip...), t.port, nil
}

// WriteTo sends a copy of b as a packet to addr (it implements
// memberlist.Transport). A packet the rules lose, or sent to an address
// with no open transport, vanishes without an error, as a datagram does.
// After Shutdown it fails with ErrMemClosed.
func (t *MemTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress is WriteTo to a.Addr; a.Name is not used (it implements
// memberlist.NodeAwareTransport).
func (t *MemTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.isClosed() {
		return time.Time{}, fmt.Errorf("%w: %s", ErrMemClosed, t.addr)
	}
	now := time.Now()
	t.n.sendPacket(t, a.Addr, b)
	return now, nil
}

// PacketCh returns the channel incoming packets arrive on (it implements
// memberlist.Transport). It is never closed.
func (t *MemTransport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// StreamCh returns the channel incoming streams arrive on (it implements
// memberlist.Transport). It is unbuffered and never closed.
func (t *MemTransport) StreamCh() <-chan net.Conn { return t.streamCh }

// DialTimeout opens a stream to addr (it implements memberlist.Transport).
// It fails with ErrMemUnreachable if the rules cut the path or nobody is
// at addr, with ErrMemDialTimeout if the target does not accept within
// timeout (zero or less waits as long as both transports are open), and
// with ErrMemClosed if t is or gets shut down. Errors are *net.OpError.
func (t *MemTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout is DialTimeout to a.Addr; a.Name is not used (it
// implements memberlist.NodeAwareTransport).
func (t *MemTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	to := canonMemAddr(a.Addr)
	fail := func(err error) error {
		var remote net.Addr
		if ap, perr := netip.ParseAddrPort(to); perr == nil {
			remote = net.TCPAddrFromAddrPort(ap)
		}
		return &net.OpError{Op: "dial", Net: "tcp", Source: t.tcp, Addr: remote, Err: err}
	}
	if t.isClosed() {
		return nil, fail(ErrMemClosed)
	}
	dst := t.n.route(t.addr, to)
	if dst == nil {
		return nil, fail(ErrMemUnreachable)
	}
	near, far := newMemConnPair(t, dst)
	if !t.track(near) {
		closeMemConnPair(near)
		return nil, fail(ErrMemClosed)
	}
	if !dst.track(far) {
		closeMemConnPair(near)
		return nil, fail(ErrMemUnreachable)
	}

	var expired <-chan time.Time
	if timeout > 0 {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		expired = timer.C
	}
	select {
	case dst.streamCh <- far:
	case <-expired:
		closeMemConnPair(near)
		return nil, fail(ErrMemDialTimeout)
	case <-dst.done:
		closeMemConnPair(near)
		return nil, fail(ErrMemUnreachable)
	case <-t.done:
		closeMemConnPair(near)
		return nil, fail(ErrMemClosed)
	}
	// The path may have been cut while the target was accepting; a Down
	// or Shutdown after this point finds both ends tracked.
	switch {
	case t.isClosed():
		closeMemConnPair(near)
		return nil, fail(ErrMemClosed)
	case !t.n.reachable(t.addr, to):
		closeMemConnPair(near)
		return nil, fail(ErrMemUnreachable)
	}
	return near, nil
}

// Shutdown shuts the transport down (it implements memberlist.Transport):
// later sends and dials fail with ErrMemClosed, dials to it fail, its ends
// of open streams are closed (their peers read io.EOF), packets still on
// their way to it are lost, and its address may be reused. It waits for
// the delayed deliveries it cancels, so it leaves no goroutine behind. It
// is idempotent; concurrent calls all return once the first has finished.
func (t *MemTransport) Shutdown() error {
	t.shutdown.Do(func() {
		t.mu.Lock()
		t.mu.closed = true
		close(t.done)
		conns, pending := t.mu.conns, t.mu.pending
		t.mu.conns, t.mu.pending = nil, nil
		t.mu.Unlock()

		t.n.remove(t)
		for c := range conns {
			_ = c.Close()
		}
		for timer := range pending {
			if timer.Stop() {
				t.wg.Done() // its callback will not run
			}
		}
		t.wg.Wait()
	})
	return nil
}

func (t *MemTransport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.closed
}

// deliver queues a packet from src for t's reader, unless t is shut down
// or its queue is full.
func (t *MemTransport) deliver(src *MemTransport, b []byte) {
	select {
	case <-t.done:
		return
	default:
	}
	select {
	case t.packetCh <- &memberlist.Packet{Buf: b, From: src.udp, Timestamp: time.Now()}:
	default: // queue full: the packet is lost
	}
}

// deliverLater delivers a packet from src to t after d, if the path from
// src is still open then and t has not been shut down.
func (t *MemTransport) deliverLater(src *MemTransport, b []byte, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.closed {
		return
	}
	t.wg.Add(1)
	var timer *time.Timer
	timer = time.AfterFunc(d, func() {
		defer t.wg.Done()
		t.mu.Lock()
		delete(t.mu.pending, timer) // t.mu orders this read after the assignment
		t.mu.Unlock()
		if t.n.route(src.addr, t.addr) == t {
			t.deliver(src, b)
		}
	})
	t.mu.pending[timer] = struct{}{}
}

// track records c as one of t's open stream ends; it reports false if t
// is shut down.
func (t *MemTransport) track(c *memConn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.closed {
		return false
	}
	t.mu.conns[c] = struct{}{}
	return true
}

// untrack forgets c; closing c calls it.
func (t *MemTransport) untrack(c *memConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.mu.conns, c)
}

// closeConns closes t's ends of its open streams.
func (t *MemTransport) closeConns() {
	t.mu.Lock()
	open := slices.Collect(maps.Keys(t.mu.conns))
	t.mu.Unlock()
	for _, c := range open {
		_ = c.Close()
	}
}
