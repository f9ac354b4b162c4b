package gossip

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

// These tests run inside testing/synctest bubbles: time is fake, so delays
// and timeouts are exact, and synctest.Test waits for every goroutine of
// the bubble, failing the test if one is left blocked.

const (
	memA = "10.0.0.1:7946"
	memB = "10.0.0.2:7946"
	memC = "10.0.0.3:7946"
)

// openMem opens a transport on n that the test shuts down when it ends.
func openMem(t *testing.T, n *MemNetwork, addr string) *MemTransport {
	t.Helper()
	tr, err := n.NewTransport(addr)
	if err != nil {
		t.Fatalf("NewTransport(%s): %v", addr, err)
	}
	t.Cleanup(func() { _ = tr.Shutdown() })
	return tr
}

// drainPackets waits for the bubble to settle and returns every packet
// queued for tr.
func drainPackets(tr *MemTransport) []*memberlist.Packet {
	synctest.Wait()
	var out []*memberlist.Packet
	for {
		select {
		case p := <-tr.PacketCh():
			out = append(out, p)
		default:
			return out
		}
	}
}

// openConns reports how many stream ends tr tracks.
func openConns(tr *MemTransport) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.mu.conns)
}

// dialPair dials from -> to, takes the far end from to's StreamCh and
// returns both ends.
func dialPair(t *testing.T, from, to *MemTransport) (near, far net.Conn) {
	t.Helper()
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := from.DialTimeout(to.Addr(), time.Second)
		done <- result{c, err}
	}()
	select {
	case far = <-to.StreamCh():
	case r := <-done:
		t.Fatalf("dial %s -> %s ended before the accept: %v", from.Addr(), to.Addr(), r.err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("dial %s -> %s: %v", from.Addr(), to.Addr(), r.err)
	}
	t.Cleanup(func() {
		_ = r.c.Close()
		_ = far.Close()
	})
	return r.c, far
}

// transfer writes msg on w and returns what r reads of it within a second
// of fake time, with the write's error.
func transfer(w, r net.Conn, msg string) (string, error) {
	got := make(chan string, 1)
	go func() {
		_ = r.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, len(msg))
		n, _ := io.ReadFull(r, buf)
		got <- string(buf[:n])
	}()
	_, err := w.Write([]byte(msg))
	return <-got, err
}

func TestMemNetworkNewTransportAddress(t *testing.T) {
	for _, tc := range []struct {
		addr, want string
		err        error
	}{
		{addr: "10.0.0.1:7946", want: "10.0.0.1:7946"},
		{addr: "[::ffff:10.0.0.1]:7946", err: ErrMemAddr}, // not IPv4 as written
		{addr: "localhost:7946", err: ErrMemAddr},
		{addr: "10.0.0.1", err: ErrMemAddr},
		{addr: "[::1]:7946", err: ErrMemAddr},
		{addr: "0.0.0.0:7946", err: ErrMemAddr},
		{addr: "10.0.0.1:0", err: ErrMemAddr},
		{addr: "10.0.0.1:65536", err: ErrMemAddr},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			tr, err := NewMemNetwork().NewTransport(tc.addr)
			if !errors.Is(err, tc.err) {
				t.Fatalf("NewTransport(%q) error = %v, want %v", tc.addr, err, tc.err)
			}
			if err != nil {
				return
			}
			defer func() { _ = tr.Shutdown() }()
			if tr.Addr() != tc.want {
				t.Errorf("Addr() = %q, want %q", tr.Addr(), tc.want)
			}
			ip, port, err := tr.FinalAdvertiseAddr("192.168.1.1", 1234)
			if err != nil || !ip.Equal(net.IPv4(10, 0, 0, 1)) || port != 7946 {
				t.Errorf("FinalAdvertiseAddr = %v, %d, %v; want 10.0.0.1, 7946, nil", ip, port, err)
			}
		})
	}
}

func TestMemTransportAddressReuse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewMemNetwork()
		a := openMem(t, n, memA)
		old := openMem(t, n, memB)
		if _, err := n.NewTransport(memB); !errors.Is(err, ErrMemAddrInUse) {
			t.Fatalf("NewTransport on an open address = %v, want ErrMemAddrInUse", err)
		}
		if err := old.Shutdown(); err != nil {
			t.Fatal(err)
		}
		restarted := openMem(t, n, memB)
		if _, err := a.WriteTo([]byte("hello"), memB); err != nil {
			t.Fatal(err)
		}
		if got := len(drainPackets(restarted)); got != 1 {
			t.Errorf("restarted transport got %d packets, want 1", got)
		}
		if got := len(drainPackets(old)); got != 0 {
			t.Errorf("shut down transport got %d packets, want 0", got)
		}
	})
}

func TestMemPacketDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewMemNetwork()
		a := openMem(t, n, memA)
		b := openMem(t, n, memB)
		time.Sleep(time.Minute) // timestamps must follow the clock, not stay at its start

		buf := []byte("ping")
		sent, err := a.WriteTo(buf, memB)
		if err != nil {
			t.Fatal(err)
		}
		copy(buf, "XXXX") // the transport must have copied it
		if _, err := a.WriteToAddress([]byte("named"), memberlist.Address{Addr: memB, Name: "b"}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.WriteTo([]byte("self"), memA); err != nil {
			t.Fatal(err)
		}

		got := drainPackets(b)
		if len(got) != 2 {
			t.Fatalf("b got %d packets, want 2", len(got))
		}
		p := got[0]
		if string(p.Buf) != "ping" || string(got[1].Buf) != "named" {
			t.Errorf("b got %q, %q; want ping, named", p.Buf, got[1].Buf)
		}
		if from, ok := p.From.(*net.UDPAddr); !ok || from.String() != memA {
			t.Errorf("From = %#v, want *net.UDPAddr %s", p.From, memA)
		}
		if !p.Timestamp.Equal(sent) || !sent.Equal(time.Now()) {
			t.Errorf("Timestamp = %v, sent = %v, want both %v", p.Timestamp, sent, time.Now())
		}
		if self := drainPackets(a); len(self) != 1 || string(self[0].Buf) != "self" {
			t.Errorf("a got %v from itself, want one \"self\" packet", self)
		}
	})
}

func TestMemPacketRules(t *testing.T) {
	const nowhere = "10.0.0.9:7946"
	for _, tc := range []struct {
		name     string
		rules    func(n *MemNetwork)
		from, to string
		want     bool // delivered
	}{
		{"open", nil, memA, memB, true},
		{"partitioned", func(n *MemNetwork) { n.Partition([]string{memA}, []string{memB, memC}) }, memA, memB, false},
		{"partitioned the other way", func(n *MemNetwork) { n.Partition([]string{memA}, []string{memB, memC}) }, memB, memA, false},
		{"same group", func(n *MemNetwork) { n.Partition([]string{memA}, []string{memB, memC}) }, memB, memC, true},
		{"unlisted addresses form a group", func(n *MemNetwork) { n.Partition([]string{memA}) }, memB, memC, true},
		{"unlisted cut from listed", func(n *MemNetwork) { n.Partition([]string{memA}) }, memC, memA, false},
		{"partition replaced", func(n *MemNetwork) { n.Partition([]string{memA}); n.Partition([]string{memC}) }, memA, memB, true},
		{"partition healed", func(n *MemNetwork) { n.Partition([]string{memA}); n.Heal() }, memA, memB, true},
		{"partition spares self", func(n *MemNetwork) { n.Partition([]string{memA}, []string{memB}) }, memA, memA, true},
		{"blocked", func(n *MemNetwork) { n.Block(memA, memB, true) }, memA, memB, false},
		{"block is one-way", func(n *MemNetwork) { n.Block(memA, memB, true) }, memB, memA, true},
		{"block spares self", func(n *MemNetwork) { n.Block(memA, memA, true) }, memA, memA, true},
		{"block in mapped form", func(n *MemNetwork) { n.Block("[::ffff:10.0.0.1]:7946", memB, true) }, memA, memB, false},
		{"unblocked", func(n *MemNetwork) { n.Block(memA, memB, true); n.Block(memA, memB, false) }, memA, memB, true},
		{"block healed", func(n *MemNetwork) { n.Block(memA, memB, true); n.Heal() }, memA, memB, true},
		{"target down", func(n *MemNetwork) { n.Down(memB) }, memA, memB, false},
		{"sender down", func(n *MemNetwork) { n.Down(memA) }, memA, memB, false},
		{"down cannot reach itself", func(n *MemNetwork) { n.Down(memA) }, memA, memA, false},
		{"down then up", func(n *MemNetwork) { n.Down(memB); n.Up(memB) }, memA, memB, true},
		{"heal keeps down", func(n *MemNetwork) { n.Down(memB); n.Heal() }, memA, memB, false},
		{"nobody there", nil, memA, nowhere, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := NewMemNetwork()
				all := map[string]*MemTransport{}
				for _, addr := range []string{memA, memB, memC} {
					all[addr] = openMem(t, n, addr)
				}
				if tc.rules != nil {
					tc.rules(n)
				}
				if _, err := all[tc.from].WriteTo([]byte("x"), tc.to); err != nil {
					t.Fatalf("WriteTo = %v; lost packets are not errors", err)
				}
				for addr, tr := range all {
					want := 0
					if tc.want && addr == tc.to {
						want = 1
					}
					if got := len(drainPackets(tr)); got != want {
						t.Errorf("%s got %d packets, want %d", addr, got, want)
					}
				}
			})
		})
	}
}

func TestMemPacketFate(t *testing.T) {
	for _, tc := range []struct {
		name string
		fate PacketFate
		// mid runs right after the send, before any time passes.
		mid   func(n *MemNetwork, a, b *MemTransport)
		count int           // copies delivered
		at    time.Duration // when they arrive, after the send
	}{
		{name: "untouched", count: 1},
		{name: "drop", fate: PacketFate{Drop: true}},
		{name: "delay", fate: PacketFate{Delay: time.Second}, count: 1, at: time.Second},
		{name: "dup", fate: PacketFate{Dup: 2}, count: 3},
		{name: "delayed dup", fate: PacketFate{Delay: 500 * time.Millisecond, Dup: 1}, count: 2, at: 500 * time.Millisecond},
		{name: "negative dup", fate: PacketFate{Dup: -1}, count: 1},
		{name: "drop wins", fate: PacketFate{Drop: true, Dup: 3}},
		{
			name: "target down meanwhile", fate: PacketFate{Delay: time.Second},
			mid: func(n *MemNetwork, _, _ *MemTransport) { n.Down(memB) },
		},
		{
			name: "partitioned meanwhile", fate: PacketFate{Delay: time.Second},
			mid: func(n *MemNetwork, _, _ *MemTransport) { n.Partition([]string{memB}) },
		},
		{
			name: "blocked meanwhile", fate: PacketFate{Delay: time.Second},
			mid: func(n *MemNetwork, _, _ *MemTransport) { n.Block(memA, memB, true) },
		},
		{
			name: "blocked backwards meanwhile", fate: PacketFate{Delay: time.Second},
			mid:   func(n *MemNetwork, _, _ *MemTransport) { n.Block(memB, memA, true) },
			count: 1, at: time.Second,
		},
		{
			name: "down and up again meanwhile", fate: PacketFate{Delay: time.Second},
			mid:   func(n *MemNetwork, _, _ *MemTransport) { n.Down(memB); n.Up(memB) },
			count: 1, at: time.Second,
		},
		{
			name: "target shut down meanwhile", fate: PacketFate{Delay: time.Second},
			mid: func(_ *MemNetwork, _, b *MemTransport) { _ = b.Shutdown() },
		},
		{
			name: "sender shut down meanwhile", fate: PacketFate{Delay: time.Second},
			mid:   func(_ *MemNetwork, a, _ *MemTransport) { _ = a.Shutdown() },
			count: 1, at: time.Second,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := NewMemNetwork()
				a := openMem(t, n, memA)
				b := openMem(t, n, memB)
				type call struct{ from, to, b string }
				var mu sync.Mutex
				var calls []call
				n.SetPacketFate(func(from, to string, b []byte) PacketFate {
					mu.Lock()
					defer mu.Unlock()
					calls = append(calls, call{from, to, string(b)})
					return tc.fate
				})

				start := time.Now()
				if _, err := a.WriteTo([]byte("data"), memB); err != nil {
					t.Fatal(err)
				}
				if tc.mid != nil {
					tc.mid(n, a, b)
				}
				mu.Lock()
				if want := []call{{memA, memB, "data"}}; len(calls) != 1 || calls[0] != want[0] {
					t.Errorf("hook calls = %v, want %v", calls, want)
				}
				mu.Unlock()

				if tc.at > 0 {
					time.Sleep(tc.at - time.Nanosecond)
					if got := drainPackets(b); len(got) != 0 {
						t.Fatalf("%d packets arrived %v early", len(got), time.Nanosecond)
					}
					time.Sleep(time.Nanosecond)
				}
				got := drainPackets(b)
				if len(got) != tc.count {
					t.Fatalf("%d packets arrived after %v, want %d", len(got), tc.at, tc.count)
				}
				for i, p := range got {
					if string(p.Buf) != "data" || !p.Timestamp.Equal(start.Add(tc.at)) {
						t.Errorf("packet %d = %q at %v, want \"data\" at %v", i, p.Buf, p.Timestamp.Sub(start), tc.at)
					}
					if i > 0 && &p.Buf[0] == &got[0].Buf[0] {
						t.Errorf("copies %d and 0 share a buffer", i)
					}
				}
				time.Sleep(time.Minute)
				if late := drainPackets(b); len(late) != 0 {
					t.Errorf("%d more packets arrived later", len(late))
				}
				if tc.mid != nil {
					return
				}

				n.SetPacketFate(nil)
				if _, err := a.WriteTo([]byte("plain"), memB); err != nil {
					t.Fatal(err)
				}
				got = drainPackets(b)
				mu.Lock()
				defer mu.Unlock()
				if len(got) != 1 || len(calls) != 1 {
					t.Errorf("without the hook: %d packets, %d hook calls; want 1, 1", len(got), len(calls))
				}
			})
		})
	}
}

func TestMemPacketQueueFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewMemNetwork()
		a := openMem(t, n, memA)
		b := openMem(t, n, memB)
		for i := range memPacketQueue + 10 {
			if _, err := a.WriteTo(fmt.Appendf(nil, "%d", i), memB); err != nil {
				t.Fatalf("WriteTo #%d: %v", i, err)
			}
		}
		got := drainPackets(b)
		if len(got) != memPacketQueue {
			t.Fatalf("b holds %d packets, want %d", len(got), memPacketQueue)
		}
		for i, p := range got {
			if want := fmt.Sprint(i); string(p.Buf) != want {
				t.Fatalf("packet %d = %q, want %q (the newest are lost)", i, p.Buf, want)
			}
		}
	})
}

func TestMemStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewMemNetwork()
		a := openMem(t, n, memA)
		b := openMem(t, n, memB)
		near, far := dialPair(t, a, b)

		for _, c := range []struct {
			name          string
			conn          net.Conn
			local, remote string
		}{
			{"dialer's end", near, memA, memB},
			{"accepted end", far, memB, memA},
		} {
			l, lok := c.conn.LocalAddr().(*net.TCPAddr)
			r, rok := c.conn.RemoteAddr().(*net.TCPAddr)
			if !lok || !rok || l.String() != c.local || r.String() != c.remote {
				t.Errorf("%s: LocalAddr %#v, RemoteAddr %#v; want *net.TCPAddr %s and %s",
					c.name, c.conn.LocalAddr(), c.conn.RemoteAddr(), c.local, c.remote)
			}
		}
		if got, err := transfer(near, far, "request"); err != nil || got != "request" {
			t.Errorf("a -> b: read %q, write error %v", got, err)
		}
		if got, err := transfer(far, near, "response"); err != nil || got != "response" {
			t.Errorf("b -> a: read %q, write error %v", got, err)
		}
		if openConns(a) != 1 || openConns(b) != 1 {
			t.Fatalf("tracked ends: a %d, b %d; want 1, 1", openConns(a), openConns(b))
		}

		start := time.Now()
		_ = far.SetReadDeadline(start.Add(3 * time.Second))
		if _, err := far.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != 3*time.Second {
			t.Errorf("Read past its deadline = %v after %v, want a timeout after 3s", err, time.Since(start))
		}
		_ = far.SetReadDeadline(time.Time{})

		if err := near.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := far.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("Read after the other end closed = %v, want io.EOF", err)
		}
		if err := far.Close(); err != nil {
			t.Fatal(err)
		}
		if err := far.Close(); err != nil {
			t.Errorf("second Close = %v, want nil", err)
		}
		if openConns(a) != 0 || openConns(b) != 0 {
			t.Errorf("tracked ends after Close: a %d, b %d; want 0, 0", openConns(a), openConns(b))
		}
	})
}

func TestMemStreamRules(t *testing.T) {
	for _, tc := range []struct {
		name       string
		rule       func(n *MemNetwork, a, b *MemTransport)
		abOK, baOK bool   // writes a -> b and b -> a get through
		closedAt   string // whose end the rule closed: "a", "b" or none
	}{
		{name: "open", abOK: true, baOK: true},
		{name: "blocked a to b", rule: func(n *MemNetwork, _, _ *MemTransport) { n.Block(memA, memB, true) }, baOK: true},
		{name: "blocked b to a", rule: func(n *MemNetwork, _, _ *MemTransport) { n.Block(memB, memA, true) }, abOK: true},
		{name: "partitioned", rule: func(n *MemNetwork, _, _ *MemTransport) { n.Partition([]string{memA}) }},
		{
			name: "healed", abOK: true, baOK: true,
			rule: func(n *MemNetwork, _, _ *MemTransport) {
				n.Partition([]string{memA})
				n.Block(memA, memB, true)
				n.Heal()
			},
		},
		{name: "dialer down", rule: func(n *MemNetwork, _, _ *MemTransport) { n.Down(memA) }, closedAt: "a"},
		{name: "target down and up", rule: func(n *MemNetwork, _, _ *MemTransport) { n.Down(memB); n.Up(memB) }, closedAt: "b"},
		{name: "dialer shut down", rule: func(_ *MemNetwork, a, _ *MemTransport) { _ = a.Shutdown() }, closedAt: "a"},
		{name: "target shut down", rule: func(_ *MemNetwork, _, b *MemTransport) { _ = b.Shutdown() }, closedAt: "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := NewMemNetwork()
				a := openMem(t, n, memA)
				b := openMem(t, n, memB)
				near, far := dialPair(t, a, b)
				if tc.rule != nil {
					tc.rule(n, a, b)
				}
				for _, dir := range []struct {
					name string
					w, r net.Conn
					ok   bool
				}{
					{"a -> b", near, far, tc.abOK},
					{"b -> a", far, near, tc.baOK},
				} {
					got, err := transfer(dir.w, dir.r, "bytes")
					switch {
					case dir.ok && (err != nil || got != "bytes"):
						t.Errorf("%s: read %q, write error %v; want the bytes through", dir.name, got, err)
					case !dir.ok && (err == nil || got != ""):
						t.Errorf("%s: read %q, write error %v; want a failed write and nothing read", dir.name, got, err)
					case !dir.ok && tc.closedAt == "" && !errors.Is(err, ErrMemUnreachable):
						t.Errorf("%s: write error %v, want ErrMemUnreachable", dir.name, err)
					case !dir.ok && tc.closedAt != "" && !errors.Is(err, io.ErrClosedPipe) && !errors.Is(err, ErrMemUnreachable):
						t.Errorf("%s: write error %v, want io.ErrClosedPipe or ErrMemUnreachable", dir.name, err)
					}
				}
				if tc.closedAt != "" {
					survivor := map[string]net.Conn{"a": far, "b": near}[tc.closedAt]
					if _, err := survivor.Read(make([]byte, 1)); err != io.EOF {
						t.Errorf("the other end reads %v, want io.EOF", err)
					}
				}
				for _, side := range []struct {
					name string
					tr   *MemTransport
				}{{"a", a}, {"b", b}} {
					want := 1
					if side.name == tc.closedAt {
						want = 0
					}
					if got := openConns(side.tr); got != want {
						t.Errorf("%s tracks %d ends, want %d", side.name, got, want)
					}
				}
			})
		})
	}
}

func TestMemDial(t *testing.T) {
	const timeout = 2 * time.Second
	for _, tc := range []struct {
		name   string
		before func(n *MemNetwork, a, b *MemTransport) // before the dial
		during func(n *MemNetwork, a, b *MemTransport) // 1s into the dial
		to     string
		accept bool // the target takes the stream
		err    error
		took   time.Duration
	}{
		{name: "accepted", to: memB, accept: true},
		{name: "self", to: memA, accept: true},
		{name: "self while partitioned", to: memA, accept: true,
			before: func(n *MemNetwork, _, _ *MemTransport) { n.Partition([]string{memA}) }},
		{name: "blocked", to: memB, accept: true, err: ErrMemUnreachable,
			before: func(n *MemNetwork, _, _ *MemTransport) { n.Block(memA, memB, true) }},
		{name: "blocked the other way", to: memB, accept: true,
			before: func(n *MemNetwork, _, _ *MemTransport) { n.Block(memB, memA, true) }},
		{name: "partitioned", to: memB, accept: true, err: ErrMemUnreachable,
			before: func(n *MemNetwork, _, _ *MemTransport) { n.Partition([]string{memB}) }},
		{name: "target down", to: memB, accept: true, err: ErrMemUnreachable,
			before: func(n *MemNetwork, _, _ *MemTransport) { n.Down(memB) }},
		{name: "dialer down", to: memB, accept: true, err: ErrMemUnreachable,
			before: func(n *MemNetwork, _, _ *MemTransport) { n.Down(memA) }},
		{name: "nobody there", to: "10.0.0.9:7946", err: ErrMemUnreachable},
		{name: "target shut down", to: memB, accept: true, err: ErrMemUnreachable,
			before: func(_ *MemNetwork, _, b *MemTransport) { _ = b.Shutdown() }},
		{name: "dialer shut down", to: memB, accept: true, err: ErrMemClosed,
			before: func(_ *MemNetwork, a, _ *MemTransport) { _ = a.Shutdown() }},
		{name: "nobody accepts", to: memB, err: ErrMemDialTimeout, took: timeout},
		{name: "target shuts down while dialing", to: memB, err: ErrMemUnreachable, took: time.Second,
			during: func(_ *MemNetwork, _, b *MemTransport) { _ = b.Shutdown() }},
		{name: "dialer shuts down while dialing", to: memB, err: ErrMemClosed, took: time.Second,
			during: func(_ *MemNetwork, a, _ *MemTransport) { _ = a.Shutdown() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := NewMemNetwork()
				a := openMem(t, n, memA)
				b := openMem(t, n, memB)
				target := map[string]*MemTransport{memA: a, memB: b}[tc.to]
				stop := make(chan struct{})
				defer close(stop)
				if tc.accept {
					go func() {
						select {
						case c := <-target.StreamCh():
							_ = c.Close()
						case <-stop:
						}
					}()
				}
				if tc.before != nil {
					tc.before(n, a, b)
				}

				start := time.Now()
				type result struct {
					c    net.Conn
					err  error
					took time.Duration
				}
				done := make(chan result, 1)
				go func() {
					c, err := a.DialTimeout(tc.to, timeout)
					done <- result{c, err, time.Since(start)}
				}()
				if tc.during != nil {
					time.Sleep(time.Second)
					tc.during(n, a, b)
				}
				r := <-done
				if r.c != nil {
					_ = r.c.Close()
				}
				if !errors.Is(r.err, tc.err) || r.took != tc.took {
					t.Fatalf("dial = %v after %v, want %v after %v", r.err, r.took, tc.err, tc.took)
				}
				var op *net.OpError
				if r.err != nil && (!errors.As(r.err, &op) || op.Op != "dial") {
					t.Errorf("dial error %#v is not a dial *net.OpError", r.err)
				}
				synctest.Wait()
				if openConns(a) != 0 || openConns(b) != 0 {
					t.Errorf("tracked ends after the dial: a %d, b %d; want 0, 0", openConns(a), openConns(b))
				}
			})
		})
	}
}

func TestMemTransportShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewMemNetwork()
		a := openMem(t, n, memA)
		b := openMem(t, n, memB)
		near, _ := dialPair(t, a, b)
		n.SetPacketFate(func(string, string, []byte) PacketFate { return PacketFate{Delay: time.Second} })
		if _, err := a.WriteTo([]byte("in flight"), memB); err != nil {
			t.Fatal(err)
		}
		b.mu.Lock()
		pending := len(b.mu.pending)
		b.mu.Unlock()
		if pending != 1 {
			t.Fatalf("%d deliveries pending to b, want 1", pending)
		}

		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				if err := b.Shutdown(); err != nil {
					t.Errorf("Shutdown = %v", err)
				}
			})
		}
		wg.Wait()
		if err := b.Shutdown(); err != nil {
			t.Errorf("Shutdown again = %v", err)
		}

		if _, err := b.WriteTo([]byte("x"), memA); !errors.Is(err, ErrMemClosed) {
			t.Errorf("WriteTo after Shutdown = %v, want ErrMemClosed", err)
		}
		if _, err := b.DialTimeout(memA, time.Second); !errors.Is(err, ErrMemClosed) {
			t.Errorf("DialTimeout after Shutdown = %v, want ErrMemClosed", err)
		}
		if _, err := a.DialTimeout(memB, time.Second); !errors.Is(err, ErrMemUnreachable) {
			t.Errorf("dial to a shut down transport = %v, want ErrMemUnreachable", err)
		}
		if _, err := near.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("Read on a stream to a shut down transport = %v, want io.EOF", err)
		}
		if openConns(a) != 1 || openConns(b) != 0 {
			t.Errorf("tracked ends: a %d, b %d; want 1 (until closed), 0", openConns(a), openConns(b))
		}
		_ = near.Close()
		if openConns(a) != 0 {
			t.Errorf("a tracks %d ends after closing its own, want 0", openConns(a))
		}
		time.Sleep(time.Minute)
		if got := drainPackets(b); len(got) != 0 {
			t.Errorf("%d packets delivered after Shutdown", len(got))
		}
		if _, err := n.NewTransport(memB); err != nil {
			t.Errorf("address not reusable after Shutdown: %v", err)
		}
	})
}

// memClusterSettle is how long a test lets fake time run after closing
// Gossips: memberlist.Shutdown does not wait for its probe, nack and
// stream goroutines, which finish on their own timers, and time stops
// once a bubble's test function returns.
const memClusterSettle = 10 * time.Second

// statuses maps each member g lists to its status.
func statuses(g *Gossip) map[string]Status {
	out := make(map[string]Status)
	for _, m := range g.Members() {
		out[m.Meta.ID] = m.Status
	}
	return out
}

// waitChange checks cond after every OnChange of the cluster until it
// holds, and fails the test if it does not within limit. It returns how
// long that took.
func waitChange(t *testing.T, changed <-chan struct{}, limit time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		err := cond()
		if err == nil {
			return time.Since(start)
		}
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("after %v waiting for %s: %v", limit, what, err)
		}
	}
}

// TestMemNetworkGossipPartitionAndHeal runs three Gossips on a MemNetwork
// in a bubble: they join, one is partitioned off and declared dead, the
// partition heals and it is alive again (at once after a short partition,
// after a rejoin after a long one), and every goroutine ends with Close.
func TestMemNetworkGossipPartitionAndHeal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewMemNetwork()
		changed := make(chan struct{}, 1)
		ids := []string{"a", "b", "c"}
		addrs := []string{memA, memB, memC}
		nodes := make([]*Gossip, len(ids))
		t.Cleanup(func() {
			for _, g := range nodes {
				if g != nil {
					_ = g.Close()
				}
			}
			time.Sleep(memClusterSettle)
		})
		for i, id := range ids {
			tr, err := n.NewTransport(addrs[i])
			if err != nil {
				t.Fatal(err)
			}
			cfg := DefaultConfig().Fast()
			cfg.Transport = tr
			cfg.Meta = Meta{ID: id, Cluster: "memnet", HTTPAddr: "http://" + id, RPCAddr: "rpc://" + id, State: StateUp}
			cfg.OnChange = func() {
				select {
				case changed <- struct{}{}:
				default:
				}
			}
			g, err := New(cfg, zerolog.Nop())
			if err != nil {
				_ = tr.Shutdown()
				t.Fatalf("New(%s): %v", id, err)
			}
			nodes[i] = g
			if g.Addr() != addrs[i] {
				t.Errorf("%s advertises %s, want %s", id, g.Addr(), addrs[i])
			}
		}
		a, b, c := nodes[0], nodes[1], nodes[2]
		for _, g := range []*Gossip{b, c} {
			if k, err := g.Join([]string{a.Addr()}); k != 1 || err != nil {
				t.Fatalf("Join = %d, %v; want 1, nil", k, err)
			}
		}

		// expect returns a condition: each node in views sees the given
		// statuses.
		expect := func(views map[*Gossip]map[string]Status) func() error {
			return func() error {
				for g, want := range views {
					if got := statuses(g); !maps.Equal(got, want) {
						return fmt.Errorf("%s sees %v, want %v", g.cfg.Meta.ID, got, want)
					}
				}
				return nil
			}
		}
		allAlive := map[string]Status{"a": StatusAlive, "b": StatusAlive, "c": StatusAlive}
		together := expect(map[*Gossip]map[string]Status{a: allAlive, b: allAlive, c: allAlive})
		took := waitChange(t, changed, time.Minute, "three alive members everywhere", together)
		t.Logf("joined in %v", took)

		n.Partition([]string{memC})
		cDead := map[string]Status{"a": StatusAlive, "b": StatusAlive, "c": StatusDead}
		took = waitChange(t, changed, time.Minute, "a and b to see c dead",
			expect(map[*Gossip]map[string]Status{a: cDead, b: cDead}))
		t.Logf("c declared dead %v after the partition", took)
		if got := statuses(c); got["c"] != StatusAlive {
			t.Errorf("c sees itself %v, want alive", got["c"])
		}

		n.Heal()
		took = waitChange(t, changed, time.Minute, "c alive again everywhere", together)
		t.Logf("c alive again %v after the heal", took)

		// Once a and b have stopped gossiping to the dead c
		// (GossipToTheDeadTime), memberlist alone never merges the two
		// sides again: one side has to rejoin the other (Rejoin).
		n.Partition([]string{memC})
		waitChange(t, changed, time.Minute, "a and b to see c dead again",
			expect(map[*Gossip]map[string]Status{a: cDead, b: cDead}))
		time.Sleep(5 * c.cfg.GossipToTheDeadTime)
		n.Heal()
		// a rejoins c by its ID: the gossip address is in the member table.
		if k, err := a.Rejoin([]string{"c", "a"}); k != 1 || err != nil {
			t.Fatalf("rejoin = %d, %v; want 1, nil", k, err)
		}
		took = waitChange(t, changed, time.Minute, "c alive everywhere after the rejoin", together)
		t.Logf("c alive again %v after the rejoin", took)

		for _, g := range nodes {
			if err := g.Close(); err != nil {
				t.Errorf("Close(%s) = %v", g.cfg.Meta.ID, err)
			}
		}
	})
	goleak.VerifyNone(t)
}
