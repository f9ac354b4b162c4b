package node

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// limitListener caps the HTTP connections open at once. Past the cap it
// does not make the client wait in the kernel's backlog (which hides the
// overload until its timeouts fire): it answers 503 with Retry-After
// itself and closes the connection, so the client knows at once and
// backs off.
type limitListener struct {
	net.Listener
	slots   chan struct{} // one token per open connection
	refused atomic.Uint64
}

func newLimitListener(ln net.Listener, max int) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, max)}
}

// refusal is the whole response to a connection past the cap.
var refusal = func() []byte {
	body := `{"error":"too many connections to this node; retry after a second, or use another node","code":"overloaded"}`
	return fmt.Appendf(nil, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}()

// Accept returns the next connection within the cap, refusing the others.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
		}
		l.refused.Add(1)
		// A short write deadline: a client that does not read does not
		// hold the accept loop.
		_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = c.Write(refusal)
		_ = c.Close()
	}
}

// limitedConn gives its slot back when closed, once.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
