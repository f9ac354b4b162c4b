package simcluster

import (
	"net"
	"sync"
)

// idleListener is a net.Listener that never accepts a connection: the
// nodes of a simulated cluster serve HTTP through their Handler, called
// in-process, and a real socket would keep the synctest bubble busy.
// Accept blocks on a channel until Close.
type idleListener struct {
	name string
	once sync.Once
	done chan struct{}
}

func newIdleListener(name string) *idleListener {
	return &idleListener{name: name, done: make(chan struct{})}
}

func (l *idleListener) Accept() (net.Conn, error) {
	<-l.done
	return nil, net.ErrClosed
}

func (l *idleListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *idleListener) Addr() net.Addr { return simAddr(l.name) }

// simAddr is the address of a simulated endpoint.
type simAddr string

func (a simAddr) Network() string { return "sim" }
func (a simAddr) String() string  { return string(a) }
