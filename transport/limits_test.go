package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// closedByServer reports whether the server closed raw within limit: a
// read returns EOF (or a reset) rather than timing out.
func closedByServer(t *testing.T, raw net.Conn, limit time.Duration) bool {
	t.Helper()
	_ = raw.SetReadDeadline(time.Now().Add(limit))
	_, err := raw.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return err != nil
}

func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}

// An inbound peer that announces a large frame and stalls, or that sends
// nothing at all, loses its connection; the server goes on serving.
func TestTCPInboundDeadlines(t *testing.T) {
	tests := []struct {
		name string
		send []byte
	}{
		{"announces 60 MiB and stalls", append(binary.BigEndian.AppendUint32(nil, 60<<20), make([]byte, 100)...)},
		{"stalls inside the length prefix", []byte{0, 0}},
		{"sends nothing", nil},
	}
	srv, _ := newTCP(t, "srv", echo, func(c *TCPConfig) {
		c.FrameReadTimeout = 200 * time.Millisecond
		c.IdleTimeout = 300 * time.Millisecond
	})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A fresh client each time: one kept from the last subtest
			// would idle for IdleTimeout too, and its call could race the
			// server closing it.
			cli, _ := newTCP(t, "cli", nil, nil)
			raw := dialRaw(t, srv.Addr())
			if len(tt.send) > 0 {
				if _, err := raw.Write(tt.send); err != nil {
					t.Fatal(err)
				}
			}
			if !closedByServer(t, raw, 5*time.Second) {
				t.Fatal("the server kept the stalled connection open")
			}
			if got := srv.Metrics().ReadTimeouts; got < uint64(i+1) {
				t.Fatalf("ReadTimeouts = %d, want at least %d", got, i+1)
			}
			out, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.Addr(), "m", []byte("still"))
			if err != nil || string(out) != "cli|m|still" {
				t.Fatalf("server stopped serving: %q %v", out, err)
			}
		})
	}
}

// A connection past MaxConnsPerSource is closed at once; once the flood
// is gone, the source connects again.
func TestTCPConnectionCap(t *testing.T) {
	const capPerSource = 4
	srv, _ := newTCP(t, "srv", echo, func(c *TCPConfig) { c.MaxConnsPerSource = capPerSource })
	var flood []net.Conn
	for range capPerSource {
		flood = append(flood, dialRaw(t, srv.Addr()))
	}
	waitFor(t, "the flood to be admitted", func() bool { return srv.openConns() == capPerSource })
	extra := dialRaw(t, srv.Addr())
	if !closedByServer(t, extra, 5*time.Second) {
		t.Fatal("a connection past the cap stayed open")
	}
	if got := srv.Metrics().ConnsRefused; got != 1 {
		t.Fatalf("ConnsRefused = %d, want 1", got)
	}
	for _, c := range flood {
		c.Close()
	}
	waitFor(t, "the flood to be gone", func() bool { return srv.openConns() == 0 })
	cli, _ := newTCP(t, "cli", nil, nil)
	out, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.Addr(), "m", []byte("back"))
	if err != nil || string(out) != "cli|m|back" {
		t.Fatalf("after the flood: %q %v", out, err)
	}
}

// The total cap holds whatever the sources.
func TestTCPInboundCapTotal(t *testing.T) {
	srv, _ := newTCP(t, "srv", echo, func(c *TCPConfig) { c.MaxInboundConns = 2 })
	a := dialRaw(t, srv.Addr())
	dialRaw(t, srv.Addr())
	waitFor(t, "two connections", func() bool { return srv.openConns() == 2 })
	if !closedByServer(t, dialRaw(t, srv.Addr()), 5*time.Second) {
		t.Fatal("a third connection stayed open past MaxInboundConns=2")
	}
	if closedByServer(t, a, 300*time.Millisecond) {
		t.Fatal("an admitted connection was closed")
	}
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Thirty connections that announce 64 MiB frames, send part of them and
// stall hold no more than MaxInflightBytes: one is admitted, the others
// wait for budget without reading, and small requests from another peer
// are served meanwhile. Close ends the waits.
func TestTCPInflightBudget(t *testing.T) {
	const (
		attackers = 30
		announced = 64 << 20
		sent      = 8 << 20 // of each announced frame, before stalling
		budget    = 80 << 20
	)
	srv, _ := newTCP(t, "srv", echo, func(c *TCPConfig) {
		c.MaxInflightBytes = budget      // room for one 64 MiB frame
		c.FrameReadTimeout = time.Minute // the flood waits for the whole test
	})
	cli, _ := newTCP(t, "cli", nil, nil)
	if _, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.Addr(), "m", nil); err != nil { // connect first
		t.Fatal(err)
	}
	before := heapInUse()

	var (
		wg    sync.WaitGroup
		flood []net.Conn
	)
	defer func() { // unblock the writers, then wait for them
		for _, c := range flood {
			c.Close()
		}
		wg.Wait()
	}()
	chunk := make([]byte, sent)
	for range attackers {
		raw, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		flood = append(flood, raw)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = raw.SetWriteDeadline(time.Now().Add(time.Minute))
			if _, err := raw.Write(binary.BigEndian.AppendUint32(nil, announced)); err == nil {
				_, _ = raw.Write(chunk) // blocks once the socket buffers fill; ends when raw closes
			}
		}()
	}
	waitFor(t, "all but one of the flood to wait for budget", func() bool {
		return srv.Metrics().BudgetWaits >= attackers-1
	})
	for i := range 10 {
		out, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.Addr(), "m", []byte{byte(i)})
		if err != nil || !bytes.Equal(out, []byte{'c', 'l', 'i', '|', 'm', '|', byte(i)}) {
			t.Fatalf("call %d during the flood: %q %v", i, out, err)
		}
	}
	m := srv.Metrics()
	grown := int64(heapInUse()) - int64(before)
	t.Logf("heap grew %d MiB under %d stalled %d MiB frames (budget %d MiB, in flight %d MiB, %d waits)",
		grown>>20, attackers, announced>>20, budget>>20, m.InflightBytes>>20, m.BudgetWaits)
	if m.InflightBytes != announced {
		t.Fatalf("InflightBytes = %d, want one admitted frame of %d", m.InflightBytes, announced)
	}
	if grown > budget {
		t.Fatalf("heap grew %d bytes, past the %d-byte budget (unbounded: %d)", grown, budget, attackers*sent)
	}

	// Closing stops the waits at once (FrameReadTimeout is a minute) and
	// returns every byte.
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if n := srv.Metrics().InflightBytes; n != 0 {
		t.Fatalf("InflightBytes = %d after Close, want 0", n)
	}
}

// A reader that finds the budget spent waits no longer than
// FrameReadTimeout, then loses its connection; small requests still use
// the part of the budget kept for them.
func TestTCPInflightBudgetTimeout(t *testing.T) {
	release := make(chan struct{})
	var held atomic.Int32
	hold := func(ctx context.Context, req *Request) ([]byte, error) {
		if len(req.Body) > SmallFrameSize {
			held.Add(1)
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil, nil
	}
	srv, _ := newTCP(t, "srv", hold, func(c *TCPConfig) {
		c.MaxFrameSize = MinMaxFrameSize
		c.MaxInflightBytes = 5 << 20         // one frame of 4 MiB, and small ones
		c.FrameReadTimeout = 3 * time.Second // a 4 MiB frame under -race on a busy machine
	})
	cli, _ := newTCP(t, "cli", nil, nil)
	big := make(chan error, 1)
	go func() {
		_, err := cli.Call(ctxTimeout(t, 10*time.Second), srv.Addr(), "m", make([]byte, 4<<20))
		big <- err
	}()
	waitFor(t, "the 4 MiB request to hold the budget", func() bool { return held.Load() == 1 })

	raw := dialRaw(t, srv.Addr())
	if _, err := raw.Write(binary.BigEndian.AppendUint32(nil, 4<<20)); err != nil {
		t.Fatal(err)
	}
	if !closedByServer(t, raw, 5*time.Second) {
		t.Fatal("a reader waiting for budget kept its connection past FrameReadTimeout")
	}
	if m := srv.Metrics(); m.BudgetWaits != 1 || m.BudgetTimeouts != 1 {
		t.Fatalf("BudgetWaits %d, BudgetTimeouts %d; want 1 and 1", m.BudgetWaits, m.BudgetTimeouts)
	}
	if _, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.Addr(), "m", []byte("small")); err != nil {
		t.Fatalf("small call while the budget is spent: %v", err)
	}
	close(release)
	if err := <-big; err != nil {
		t.Fatalf("4 MiB call: %v", err)
	}
	waitFor(t, "the budget to be returned", func() bool { return srv.Metrics().InflightBytes == 0 })
}

// No more than MaxHandlers handlers run at once; the requests past the
// cap wait and are all served once handlers return.
func TestTCPHandlerCap(t *testing.T) {
	const (
		maxHandlers = 4
		calls       = 24
	)
	var running, peak atomic.Int32
	gate := make(chan struct{})
	h := func(ctx context.Context, req *Request) ([]byte, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		select {
		case <-gate:
		case <-ctx.Done():
		}
		return req.Body, nil
	}
	srv, _ := newTCP(t, "srv", h, func(c *TCPConfig) { c.MaxHandlers = maxHandlers })
	clients := []*TCP{}
	for _, id := range []string{"a", "b"} {
		c, _ := newTCP(t, id, nil, nil)
		clients = append(clients, c)
	}
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := clients[i%2].Call(ctxTimeout(t, 10*time.Second), srv.Addr(), "m", []byte{byte(i)})
			errs <- err
		}()
	}
	waitFor(t, "the cap to be reached and a reader to wait", func() bool {
		return running.Load() == maxHandlers && srv.Metrics().HandlerWaits >= 1
	})
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("call past the cap: %v", err)
		}
	}
	if p := peak.Load(); p != maxHandlers {
		t.Fatalf("at most %d handlers ran at once, want exactly the cap %d", p, maxHandlers)
	}
	if m := srv.Metrics(); m.Served != calls {
		t.Fatalf("served %d, want %d", m.Served, calls)
	}
}
