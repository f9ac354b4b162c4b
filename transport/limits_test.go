package transport

import (
	"encoding/binary"
	"errors"
	"net"
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
	cli, _ := newTCP(t, "cli", nil, nil)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
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
