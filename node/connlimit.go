package node

import (
	"crypto/tls"
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
//
// Over HTTPS (tlsCfg set) the refusal needs a handshake first, or the
// client reads it as a TLS error. Handshakes cost CPU that a flood would
// spend, so at most maxTLSRefusers run at once, each within
// tlsRefusalTimeout; past that a connection is closed without a word.
type limitListener struct {
	net.Listener
	slots    chan struct{} // one token per open connection
	refused  atomic.Uint64
	tlsCfg   *tls.Config
	refusers chan struct{} // one token per TLS refusal in progress
	wg       sync.WaitGroup
}

const (
	maxTLSRefusers    = 16
	tlsRefusalTimeout = time.Second
)

func newLimitListener(ln net.Listener, max int, tlsCfg *tls.Config) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, max), tlsCfg: tlsCfg, refusers: make(chan struct{}, maxTLSRefusers)}
}

// Close stops accepting and waits for the TLS refusals in progress.
func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.wg.Wait()
	return err
}

// refuse answers a connection past the cap and closes it.
func (l *limitListener) refuse(c net.Conn) {
	l.refused.Add(1)
	if l.tlsCfg == nil {
		// A short write deadline: a client that does not read does not
		// hold the accept loop.
		_ = c.SetDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = c.Write(refusal)
		_ = c.Close()
		return
	}
	select {
	case l.refusers <- struct{}{}:
	default:
		_ = c.Close()
		return
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer func() { <-l.refusers }()
		tc := tls.Server(c, l.tlsCfg)
		_ = tc.SetDeadline(time.Now().Add(tlsRefusalTimeout))
		if tc.Handshake() == nil {
			_, _ = tc.Write(refusal)
		}
		_ = tc.Close()
	}()
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
		l.refuse(c)
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
