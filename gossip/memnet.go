package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// In-memory network errors. Dial and stream write errors are *net.OpError
// values that wrap them; test with errors.Is.
var (
	// ErrMemAddr means NewTransport got an address that is not a literal
	// IPv4 address with a non-zero port, such as "10.0.0.1:7946".
	ErrMemAddr = errors.New("gossip: memnet: bad address")
	// ErrMemAddrInUse means NewTransport got the address of a transport
	// that is still open.
	ErrMemAddrInUse = errors.New("gossip: memnet: address in use")
	// ErrMemClosed is returned by a MemTransport that was shut down.
	ErrMemClosed = errors.New("gossip: memnet: transport shut down")
	// ErrMemUnreachable means the rules cut the path to the peer, or no open
	// transport is at its address.
	ErrMemUnreachable = errors.New("gossip: memnet: unreachable")
	// ErrMemDialTimeout means the peer did not accept a stream within the
	// dial timeout.
	ErrMemDialTimeout = errors.New("gossip: memnet: dial timeout")
)

// memPacketQueue is how many packets a transport holds for its reader.
// Packets that arrive when it is full are lost, as datagrams are when a
// socket's receive buffer is full.
const memPacketQueue = 1024

// PacketFate is what a SetPacketFate hook decides for one packet.
type PacketFate struct {
	// Drop loses the packet.
	Drop bool
	// Delay delivers the packet this much later, measured by package time
	// (fake time inside a testing/synctest bubble). Zero or less delivers
	// it at once.
	Delay time.Duration
	// Dup is how many extra copies to deliver, each after the same Delay.
	Dup int
}

// MemNetwork connects MemTransports in one process, so memberlist nodes can
// gossip without sockets. It is safe for concurrent use.
//
// It uses no sockets and never polls or sleeps: it blocks only on channels
// of its transports and of net.Pipe, on timers of package time and on a
// WaitGroup, and reads the time only through package time. With the
// network and its transports created inside a testing/synctest bubble, a
// whole memberlist cluster therefore runs on the bubble's fake clock, and
// the bubble goes idle whenever memberlist waits.
//
// Rules name transports by address ("ip:port"); they hold for whatever
// transport is on the address, including one opened later. Traffic from
// one address to another passes unless
//
//   - either address is Down (a Down address cannot reach even itself);
//   - the two addresses are in different Partition groups;
//   - Block(from, to) is on for that direction.
//
// Partition and Block never cut an address off from itself. A packet is
// checked when it is sent and again when it is delivered, so a delayed
// packet is lost if its path was cut in the meantime. A stream dial is
// checked from the dialer to the target, before and after the target
// accepts. Each Write on an established stream is checked in its own
// direction, so a later Block or Partition makes writes fail; Down and
// Shutdown close the affected transport's ends of its streams.
type MemNetwork struct {
	mu struct {
		sync.Mutex // never held with a MemTransport's mu, nor while calling out
		transports map[string]*MemTransport
		group      map[string]int // partition group by address; nil when not partitioned
		blocked    map[memLink]bool
		down       map[string]bool
		fate       func(from, to string, b []byte) PacketFate
	}
}

// memLink is one direction between two addresses.
type memLink struct{ from, to string }

// NewMemNetwork returns an empty network with no rules.
func NewMemNetwork() *MemNetwork {
	n := &MemNetwork{}
	n.mu.transports = make(map[string]*MemTransport)
	n.mu.blocked = make(map[memLink]bool)
	n.mu.down = make(map[string]bool)
	return n
}

// NewTransport returns a transport reachable at addr, which must be a
// literal IPv4 address and a non-zero port, e.g. "10.0.0.1:7946"
// (memberlist advertises an IP). The address may be reused once the
// transport on it has been shut down, as by a restarted node; while that
// transport is open, NewTransport fails with ErrMemAddrInUse. Rules set on
// the address stay in force for the new transport.
func (n *MemNetwork) NewTransport(addr string) (*MemTransport, error) {
	ap, err := parseMemAddr(addr)
	if err != nil {
		return nil, err
	}
	t := newMemTransport(n, ap)
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.mu.transports[t.addr]; ok {
		return nil, fmt.Errorf("%w: %s", ErrMemAddrInUse, t.addr)
	}
	n.mu.transports[t.addr] = t
	return t, nil
}

// Partition splits the network into groups of addresses that reach each
// other but no address of another group. Addresses listed in no group
// form one more group together, so Partition([]string{a}) cuts a off from
// everyone else. An address listed twice belongs to the last group naming
// it. Partition replaces any previous partition; Block and Down rules
// stay.
func (n *MemNetwork) Partition(groups ...[]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mu.group = make(map[string]int)
	for i, g := range groups {
		for _, addr := range g {
			n.mu.group[canonMemAddr(addr)] = i
		}
	}
}

// Heal removes the partition and every Block rule. Down addresses stay
// down.
func (n *MemNetwork) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mu.group = nil
	clear(n.mu.blocked)
}

// Block cuts traffic from -> to, one way (on), or removes that rule (off).
// While it is on, packets from -> to are lost, dials from from to to fail
// with ErrMemUnreachable, and writes from from on an established stream to
// to fail with ErrMemUnreachable, so their bytes are lost. Traffic to -> from
// is not affected.
func (n *MemNetwork) Block(from, to string, on bool) {
	l := memLink{canonMemAddr(from), canonMemAddr(to)}
	n.mu.Lock()
	defer n.mu.Unlock()
	if on {
		n.mu.blocked[l] = true
	} else {
		delete(n.mu.blocked, l)
	}
}

// Down makes addr unreachable as if its machine had crashed: packets to and
// from it are lost, dials to and from it fail, and the transport on addr
// closes its ends of its open streams (their peers read io.EOF). That
// transport stays open, its memberlist running but cut off; Up brings the
// address back. Heal does not.
func (n *MemNetwork) Down(addr string) {
	addr = canonMemAddr(addr)
	n.mu.Lock()
	n.mu.down[addr] = true
	t := n.mu.transports[addr]
	n.mu.Unlock()
	if t != nil {
		t.closeConns()
	}
}

// Up undoes Down. Streams that Down closed stay closed.
func (n *MemNetwork) Up(addr string) {
	addr = canonMemAddr(addr)
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.mu.down, addr)
}

// SetPacketFate installs f, consulted for every packet an open transport
// sends, before the Partition, Block and Down rules apply (nil removes
// it). f gets the sender's and the destination's addresses and the
// packet's bytes, which it must neither modify nor retain. It is called
// from the sending goroutine, concurrently for concurrent senders, with no
// lock held: it may call the network's methods.
func (n *MemNetwork) SetPacketFate(f func(from, to string, b []byte) PacketFate) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mu.fate = f
}

// reachableLocked reports whether traffic can go from -> to now; n.mu
// must be held.
func (n *MemNetwork) reachableLocked(from, to string) bool {
	if n.mu.down[from] || n.mu.down[to] {
		return false
	}
	if from == to {
		return true
	}
	if n.mu.blocked[memLink{from, to}] {
		return false
	}
	if n.mu.group != nil {
		gf, ok := n.mu.group[from]
		if !ok {
			gf = -1
		}
		gt, ok := n.mu.group[to]
		if !ok {
			gt = -1
		}
		return gf == gt
	}
	return true
}

// reachable reports whether traffic can go from -> to now.
func (n *MemNetwork) reachable(from, to string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.reachableLocked(from, to)
}

// route returns the open transport at to if traffic from -> to can reach
// it now, or nil.
func (n *MemNetwork) route(from, to string) *MemTransport {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := n.mu.transports[to]
	if t == nil || !n.reachableLocked(from, to) {
		return nil
	}
	return t
}

// remove forgets t, if it is still the transport on its address.
func (n *MemNetwork) remove(t *MemTransport) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.transports[t.addr] == t {
		delete(n.mu.transports, t.addr)
	}
}

// sendPacket carries a copy of b from src to the address to, subject to
// the packet fate hook and the rules. Lost packets vanish silently.
func (n *MemNetwork) sendPacket(src *MemTransport, to string, b []byte) {
	to = canonMemAddr(to)
	buf := bytes.Clone(b)
	n.mu.Lock()
	fate := n.mu.fate
	n.mu.Unlock()
	var pf PacketFate
	if fate != nil {
		pf = fate(src.addr, to, buf)
	}
	if pf.Drop {
		return
	}
	dst := n.route(src.addr, to)
	if dst == nil {
		return
	}
	for i := range 1 + max(pf.Dup, 0) {
		p := buf
		if i > 0 {
			p = bytes.Clone(buf)
		}
		if pf.Delay > 0 {
			dst.deliverLater(src, p, pf.Delay)
		} else {
			dst.deliver(src, p)
		}
	}
}

// parseMemAddr parses a transport address: a literal IPv4 address, not
// 0.0.0.0, and a non-zero port.
func parseMemAddr(addr string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %q: %v", ErrMemAddr, addr, err)
	}
	if !ap.Addr().Is4() || ap.Addr().IsUnspecified() || ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("%w: %q: want a literal IPv4 address and a non-zero port", ErrMemAddr, addr)
	}
	return ap, nil
}

// canonMemAddr returns addr in the form transports are keyed by, or addr
// itself if it does not parse.
func canonMemAddr(addr string) string {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return addr
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
}
