package gossip

import (
	"net"
	"sync"
)

// memConn is one end of a stream between two MemTransports: a net.Pipe end
// with TCP addresses, whose writes obey the network's rules. It is safe for
// concurrent use as net.Conn is.
type memConn struct {
	net.Conn // this end of the pipe; deadlines run on package time

	n                   *MemNetwork
	owner               *MemTransport // the transport that tracks this end
	peer                *memConn      // the other end
	local, remote       *net.TCPAddr
	localKey, remoteKey string // the addresses as rules name them

	closeOnce sync.Once
}

// newMemConnPair returns the two ends of a new stream from -> to: the
// dialer's end first.
func newMemConnPair(from, to *MemTransport) (near, far *memConn) {
	a, b := net.Pipe()
	near = &memConn{Conn: a, n: from.n, owner: from, local: from.tcp, remote: to.tcp,
		localKey: from.addr, remoteKey: to.addr}
	far = &memConn{Conn: b, n: from.n, owner: to, local: to.tcp, remote: from.tcp,
		localKey: to.addr, remoteKey: from.addr}
	near.peer, far.peer = far, near
	return near, far
}

// closeMemConnPair closes both ends of c's stream.
func closeMemConnPair(c *memConn) {
	_ = c.Close()
	_ = c.peer.Close()
}

// LocalAddr returns this end's address.
func (c *memConn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the other end's address.
func (c *memConn) RemoteAddr() net.Addr { return c.remote }

// Write writes b to the other end, unless the rules cut this direction
// when it is called: then it fails with ErrMemUnreachable and the bytes
// are lost.
func (c *memConn) Write(b []byte) (int, error) {
	if !c.n.reachable(c.localKey, c.remoteKey) {
		return 0, &net.OpError{Op: "write", Net: "tcp", Source: c.local, Addr: c.remote, Err: ErrMemUnreachable}
	}
	return c.Conn.Write(b)
}

// Close closes this end; the other end's reads then see io.EOF and its
// writes fail. Closing again does nothing.
func (c *memConn) Close() error {
	c.closeOnce.Do(func() {
		_ = c.Conn.Close()
		c.owner.untrack(c)
	})
	return nil
}
