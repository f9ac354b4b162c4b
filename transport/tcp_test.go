package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func echo(_ context.Context, req *Request) ([]byte, error) {
	return append([]byte(req.From+"|"+req.Method+"|"), req.Body...), nil
}

// newTCP starts a TCP transport (serving h unless h is nil) that is closed
// when the test ends.
func newTCP(t testing.TB, id string, h Handler, mutate func(*TCPConfig)) (*TCP, *syncBuffer) {
	t.Helper()
	cfg := DefaultTCPConfig()
	cfg.NodeID = id
	if mutate != nil {
		mutate(&cfg)
	}
	logs := &syncBuffer{}
	tr, err := NewTCP(cfg, zerolog.New(logs))
	if err != nil {
		t.Fatalf("NewTCP: %v", err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	if h != nil {
		if err := tr.Serve(h); err != nil {
			t.Fatalf("Serve: %v", err)
		}
	}
	return tr, logs
}

// waitFor polls cond (real network activity has no fake clock to step).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestTCPCall(t *testing.T) {
	srv, _ := newTCP(t, "srv", echo, nil)
	cli, _ := newTCP(t, "cli", nil, nil)
	out, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.Addr(), "kv.get", []byte("key"))
	if err != nil {
		t.Fatalf("Call: %v", err)
	}
	if got, want := string(out), "cli|kv.get|key"; got != want {
		t.Fatalf("reply %q, want %q", got, want)
	}
	cm, sm := cli.Metrics(), srv.Metrics()
	if cm.Calls != 1 || cm.Errors != 0 || cm.ConnsDialed != 1 || sm.Served != 1 || sm.ConnsAccepted != 1 {
		t.Fatalf("metrics: client %+v server %+v", cm, sm)
	}
	// Request frame: prefix + array + id + kind + "kv.get" + "cli" + bin "key" + 3 empty strs.
	reqSize := uint64(prefixSize + 1 + 1 + 1 + 7 + 4 + 5 + 3)
	if cm.BytesOut != reqSize || sm.BytesIn != reqSize {
		t.Fatalf("request bytes: client out %d, server in %d, want %d", cm.BytesOut, sm.BytesIn, reqSize)
	}
	if cm.BytesIn != sm.BytesOut || cm.BytesIn == 0 {
		t.Fatalf("reply bytes: client in %d, server out %d", cm.BytesIn, sm.BytesOut)
	}
}

func TestTCPAddr(t *testing.T) {
	tr, _ := newTCP(t, "n", nil, nil)
	host, port, err := net.SplitHostPort(tr.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr %q: want 127.0.0.1 and a resolved port", tr.Addr())
	}
	adv, _ := newTCP(t, "n", nil, func(c *TCPConfig) { c.AdvertiseAddr = "node1.example:7000" })
	if got := adv.Addr(); got != "node1.example:7000" {
		t.Fatalf("Addr with AdvertiseAddr = %q", got)
	}
}

// TestTCPMultiplexing runs 1000 concurrent calls and checks they share
// exactly ConnsPerPeer connections.
func TestTCPMultiplexing(t *testing.T) {
	for _, conns := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("conns=%d", conns), func(t *testing.T) {
			var inflight, peak atomic.Int64
			release := make(chan struct{})
			h := func(ctx context.Context, req *Request) ([]byte, error) {
				n := inflight.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				defer inflight.Add(-1)
				select {
				case <-release:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				return req.Body, nil
			}
			srv, _ := newTCP(t, "srv", h, nil)
			cli, _ := newTCP(t, "cli", nil, func(c *TCPConfig) { c.ConnsPerPeer = conns })
			const calls = 1000
			ctx := ctxTimeout(t, 20*time.Second)
			errs := make(chan error, calls)
			for i := 0; i < calls; i++ {
				go func() {
					body := binary.BigEndian.AppendUint32(nil, uint32(i))
					out, err := cli.Call(ctx, srv.Addr(), "m", body)
					if err == nil && !bytes.Equal(out, body) {
						err = fmt.Errorf("call %d got reply %x", i, out)
					}
					errs <- err
				}()
			}
			// Every call reaches the handler before any is answered: they
			// are all in flight at once over the shared connections.
			waitFor(t, "all calls in flight", func() bool { return inflight.Load() == calls })
			close(release)
			for i := 0; i < calls; i++ {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			if peak.Load() != calls {
				t.Fatalf("peak concurrency %d, want %d", peak.Load(), calls)
			}
			if got := cli.Metrics().ConnsDialed; got != uint64(conns) {
				t.Fatalf("dialled %d connections, want %d", got, conns)
			}
			if got := srv.Metrics().ConnsAccepted; got != uint64(conns) {
				t.Fatalf("server accepted %d connections, want %d", got, conns)
			}
			if got := cli.Metrics().Calls; got != calls {
				t.Fatalf("Calls = %d", got)
			}
			// The 1000 replies, released at once, share write syscalls.
			sm := srv.Metrics()
			if sm.FramesOut != calls || sm.FramesIn != calls || sm.Flushes >= sm.FramesOut {
				t.Fatalf("server wrote %d frames in %d flushes (read %d): no batching", sm.FramesOut, sm.Flushes, sm.FramesIn)
			}
			t.Logf("client: %d frames in %d flushes; server: %d frames in %d flushes",
				cli.Metrics().FramesOut, cli.Metrics().Flushes, sm.FramesOut, sm.Flushes)
		})
	}
}

func TestTCPDeadline(t *testing.T) {
	release := make(chan struct{})
	var handlerCtxDone atomic.Bool
	slow := func(ctx context.Context, req *Request) ([]byte, error) {
		if req.Method == "fast" {
			return []byte("ok"), nil
		}
		select {
		case <-release:
			return []byte("late"), nil
		case <-ctx.Done():
			handlerCtxDone.Store(true)
			return nil, ctx.Err()
		}
	}
	srv, _ := newTCP(t, "srv", slow, nil)
	cli, _ := newTCP(t, "cli", nil, func(c *TCPConfig) { c.DefaultTimeout = 150 * time.Millisecond })

	t.Run("ctx deadline", func(t *testing.T) {
		start := time.Now()
		_, err := cli.Call(ctxTimeout(t, 100*time.Millisecond), srv.Addr(), "slow", nil)
		elapsed := time.Since(start)
		if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want ErrTimeout and DeadlineExceeded", err)
		}
		if elapsed < 100*time.Millisecond || elapsed > 2*time.Second {
			t.Fatalf("returned after %v, want about 100ms", elapsed)
		}
	})
	t.Run("default timeout", func(t *testing.T) {
		start := time.Now()
		_, err := cli.Call(context.Background(), srv.Addr(), "slow", nil)
		elapsed := time.Since(start)
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
		if elapsed < 150*time.Millisecond || elapsed > 2*time.Second {
			t.Fatalf("returned after %v, want about 150ms", elapsed)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctxTimeout(t, 5*time.Second))
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := cli.Call(ctx, srv.Addr(), "slow", nil)
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("expired before call", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), -time.Second)
		defer cancel()
		if _, err := cli.Call(ctx, srv.Addr(), "fast", nil); !errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
	})

	// The three abandoned handlers now reply; the replies are discarded.
	close(release)
	waitFor(t, "late replies", func() bool { return cli.Metrics().LateReplies == 3 })
	if handlerCtxDone.Load() {
		t.Fatal("server handler ctx was cancelled by a client-side timeout")
	}
	out, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.Addr(), "fast", nil)
	if err != nil || string(out) != "ok" {
		t.Fatalf("call after timeouts: %q, %v", out, err)
	}
	m := cli.Metrics()
	if m.Timeouts != 3 || m.Errors != 4 || m.Calls != 5 || m.ConnsDialed != 2 {
		t.Fatalf("metrics %+v: want 3 timeouts, 4 errors, 5 calls, 2 conns", m)
	}
}

type codedErr struct{ code, msg string }

func (e codedErr) Error() string { return e.msg }
func (e codedErr) Code() string  { return e.code }

func TestTCPRemoteErrors(t *testing.T) {
	tests := []struct {
		method   string
		err      error
		wantCode string
		wantMsg  string
	}{
		{"plain", errors.New("disk on fire"), CodeInternal, "disk on fire"},
		{"coded", codedErr{"not_found", "no such key"}, "not_found", "no such key"},
		{"wrapped", fmt.Errorf("get k1: %w", codedErr{"stale", "old epoch"}), "stale", "get k1: old epoch"},
		{"empty code", codedErr{"", "x"}, CodeInternal, "x"},
		{"remote", fmt.Errorf("proxy: %w", &RemoteError{Code: "busy", Message: "try later"}), "busy", "try later"},
	}
	errByMethod := map[string]error{}
	for _, tt := range tests {
		errByMethod[tt.method] = tt.err
	}
	srv, _ := newTCP(t, "srv", func(_ context.Context, req *Request) ([]byte, error) {
		return []byte("ignored"), errByMethod[req.Method]
	}, nil)
	cli, _ := newTCP(t, "cli", nil, nil)
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			out, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.Addr(), tt.method, nil)
			var re *RemoteError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v (%T), want *RemoteError", err, err)
			}
			if re.Code != tt.wantCode || re.Message != tt.wantMsg || out != nil {
				t.Fatalf("got code %q msg %q out %q, want %q %q", re.Code, re.Message, out, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestTCPUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	cli, _ := newTCP(t, "cli", nil, nil)
	_, err = cli.Call(ctxTimeout(t, 5*time.Second), addr, "m", nil)
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, ErrNotSent) {
		t.Fatalf("err = %v, want ErrUnreachable and ErrNotSent (the dial failed)", err)
	}
	if m := cli.Metrics(); m.DialFailures != 1 || m.ConnsDialed != 0 || m.Errors != 1 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestTCPPeerRestart(t *testing.T) {
	srv1, _ := newTCP(t, "srv", func(context.Context, *Request) ([]byte, error) { return []byte("one"), nil }, nil)
	addr := srv1.Addr()
	cli, _ := newTCP(t, "cli", nil, func(c *TCPConfig) { c.ConnsPerPeer = 1 })
	ctx := ctxTimeout(t, 10*time.Second)
	if out, err := cli.Call(ctx, addr, "m", nil); err != nil || string(out) != "one" {
		t.Fatalf("first call: %q %v", out, err)
	}
	if err := srv1.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "client to notice the closed connection", func() bool { return cli.openConns() == 0 })
	if _, err := cli.Call(ctx, addr, "m", nil); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("call while down: %v, want ErrUnreachable", err)
	}
	_, _ = newTCP(t, "srv", func(context.Context, *Request) ([]byte, error) { return []byte("two"), nil },
		func(c *TCPConfig) { c.ListenAddr = addr })
	if out, err := cli.Call(ctx, addr, "m", nil); err != nil || string(out) != "two" {
		t.Fatalf("call after restart: %q %v", out, err)
	}
	if m := cli.Metrics(); m.ConnsDialed != 2 || m.DialFailures != 1 {
		t.Fatalf("metrics %+v: want 2 dials and 1 failure", m)
	}
}

// TestTCPConnFailureFailsPending kills the server under pending calls.
func TestTCPConnFailureFailsPending(t *testing.T) {
	started := make(chan struct{}, 10)
	srv, _ := newTCP(t, "srv", func(ctx context.Context, _ *Request) ([]byte, error) {
		started <- struct{}{}
		<-ctx.Done()
		return []byte("too late"), nil
	}, nil)
	cli, _ := newTCP(t, "cli", nil, nil)
	const n = 10
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := cli.Call(ctxTimeout(t, 10*time.Second), srv.Addr(), "m", nil)
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		<-started
	}
	start := time.Now()
	_ = srv.Close()
	for i := 0; i < n; i++ {
		if err := <-errs; !errors.Is(err, ErrUnreachable) {
			t.Fatalf("pending call got %v, want ErrUnreachable", err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("pending calls failed after %v", d)
	}
}

func TestTCPClose(t *testing.T) {
	var handlersDone atomic.Int32
	started := make(chan struct{}, 10)
	srv, _ := newTCP(t, "srv", func(ctx context.Context, _ *Request) ([]byte, error) {
		defer handlersDone.Add(1)
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}, nil)
	cli, _ := newTCP(t, "cli", nil, nil)
	const n = 5
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := cli.Call(ctxTimeout(t, 10*time.Second), srv.Addr(), "m", nil)
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		<-started
	}
	if err := cli.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i := 0; i < n; i++ {
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Fatalf("pending call got %v, want ErrClosed", err)
		}
	}
	if err := cli.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := cli.Call(context.Background(), srv.Addr(), "m", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Call after Close: %v, want ErrClosed", err)
	}
	if err := cli.Serve(echo); !errors.Is(err, ErrClosed) {
		t.Fatalf("Serve after Close: %v, want ErrClosed", err)
	}
	// Server Close cancels and waits for its handlers.
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if got := handlersDone.Load(); got != n {
		t.Fatalf("%d handlers returned by the time Close did, want %d", got, n)
	}
	// Concurrent Close calls all wait and return nil.
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Close(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

func TestTCPServeTwice(t *testing.T) {
	tr, _ := newTCP(t, "n", echo, nil)
	if err := tr.Serve(echo); !errors.Is(err, ErrServing) {
		t.Fatalf("second Serve: %v, want ErrServing", err)
	}
	if err := tr.Serve(nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Serve(nil): %v", err)
	}
}

// TestTCPRejectsBadFrames sends broken frames on raw connections: each
// closes its connection with a logged error, and the server keeps serving.
func TestTCPRejectsBadFrames(t *testing.T) {
	tests := []struct {
		name string
		wire []byte
		log  string
	}{
		{"oversized length", []byte{0xff, 0xff, 0xff, 0xf0}, "frame too large"},
		{"just over MaxFrameSize", binary.BigEndian.AppendUint32(nil, 64<<20+1), "frame too large"},
		{"garbage", append([]byte{0, 0, 0, 11}, "hello world"...), "bad frame"},
		{"bin32 claims 4 GiB", []byte{0, 0, 0, 12, 0x97, 1, 1, 0xa1, 'm', 0xa0, 0xc6, 0xff, 0xff, 0xff, 0xff, 1}, "bad frame"},
		{"reply on inbound connection", appendFrame(nil, &frame{ID: 1, Kind: kindResponse}), "unexpected kind"},
	}
	srv, logs := newTCP(t, "srv", echo, nil)
	cli, _ := newTCP(t, "cli", nil, nil)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := net.Dial("tcp", srv.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			if _, err := raw.Write(tt.wire); err != nil {
				t.Fatal(err)
			}
			_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := raw.Read(make([]byte, 16))
			if n != 0 || !errors.Is(err, io.EOF) {
				t.Fatalf("read after bad frame: n=%d err=%v, want EOF (server closed)", n, err)
			}
			if got := srv.Metrics().FramesRejected; got != uint64(i+1) {
				t.Fatalf("FramesRejected = %d, want %d", got, i+1)
			}
			if l := logs.String(); !strings.Contains(l, `"level":"error"`) || !strings.Contains(l, tt.log) {
				t.Fatalf("log lacks an error about %q:\n%s", tt.log, l)
			}
			out, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.Addr(), "m", []byte("still"))
			if err != nil || string(out) != "cli|m|still" {
				t.Fatalf("server stopped serving: %q %v", out, err)
			}
		})
	}
}

// TestTCPClientRejectsBadReply has a fake server answer with garbage.
func TestTCPClientRejectsBadReply(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, _, err := readFrame(bufioReader(c), 1<<20); err != nil {
			return
		}
		_, _ = c.Write([]byte{0xff, 0xff, 0xff, 0xff})
		_, _ = io.Copy(io.Discard, c) // until the client hangs up
	}()
	cli, logs := newTCP(t, "cli", nil, nil)
	_, err = cli.Call(ctxTimeout(t, 5*time.Second), ln.Addr().String(), "m", nil)
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v, want ErrUnreachable wrapping ErrFrameTooLarge", err)
	}
	<-done
	if cli.Metrics().FramesRejected != 1 || !strings.Contains(logs.String(), "frame too large") {
		t.Fatalf("metrics %+v, logs %s", cli.Metrics(), logs.String())
	}
}

func TestTCPFrameSizeLimits(t *testing.T) {
	const max = MinMaxFrameSize
	srv, _ := newTCP(t, "srv", func(_ context.Context, req *Request) ([]byte, error) {
		if req.Method == "big-reply" {
			return make([]byte, max), nil
		}
		return req.Body, nil
	}, func(c *TCPConfig) { c.MaxFrameSize = max })
	cli, _ := newTCP(t, "cli", nil, func(c *TCPConfig) { c.MaxFrameSize = max })
	ctx := ctxTimeout(t, 10*time.Second)

	// A 4 MiB value fits.
	body := bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16)
	out, err := cli.Call(ctx, srv.Addr(), "echo", body)
	if err != nil || !bytes.Equal(out, body) {
		t.Fatalf("4 MiB call: len %d err %v", len(out), err)
	}
	// A request over the limit fails before it is sent.
	sent := cli.Metrics().BytesOut
	if _, err := cli.Call(ctx, srv.Addr(), "echo", make([]byte, max)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized request: %v, want ErrFrameTooLarge", err)
	}
	if cli.Metrics().BytesOut != sent {
		t.Fatal("oversized request was written")
	}
	// A reply over the limit comes back as a RemoteError.
	_, err = cli.Call(ctx, srv.Addr(), "big-reply", nil)
	var re *RemoteError
	if !errors.As(err, &re) || re.Code != CodeFrameTooLarge || !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized reply: %v", err)
	}
	if _, err := cli.Call(ctx, srv.Addr(), "", nil); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("empty method: %v, want ErrBadFrame", err)
	}
}

// The caller's size check counts the request ID at its widest: a body
// that fits only with a short ID fails before it is sent, instead of
// reaching the peer over the limit, which would close the connection and
// fail every other call on it.
func TestTCPRequestSizeCountsTheID(t *testing.T) {
	const max = MinMaxFrameSize
	srv, _ := newTCP(t, "srv", func(_ context.Context, req *Request) ([]byte, error) { return nil, nil },
		func(c *TCPConfig) { c.MaxFrameSize = max })
	cli, _ := newTCP(t, "cli", nil, func(c *TCPConfig) { c.MaxFrameSize = max })
	ctx := ctxTimeout(t, 10*time.Second)
	for range 300 { // IDs past 255 take three bytes
		if _, err := cli.Call(ctx, srv.Addr(), "echo", nil); err != nil {
			t.Fatal(err)
		}
	}
	body := 0 // the largest body whose frame fits with a one-byte ID
	for n := max - 64; n <= max; n++ {
		f := frame{Kind: kindRequest, Method: "echo", From: "cli", Body: make([]byte, n)}
		if f.size() <= max {
			body = n
		}
	}
	sent := cli.Metrics().BytesOut
	if _, err := cli.Call(ctx, srv.Addr(), "echo", make([]byte, body)); !errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrUnreachable) {
		t.Fatalf("a request that fits only with a short ID: %v, want ErrFrameTooLarge before sending", err)
	}
	if cli.Metrics().BytesOut != sent || srv.Metrics().FramesRejected != 0 {
		t.Fatalf("the request was sent (%d bytes) and rejected %d times", cli.Metrics().BytesOut-sent, srv.Metrics().FramesRejected)
	}
	if _, err := cli.Call(ctx, srv.Addr(), "echo", nil); err != nil {
		t.Fatalf("the connection did not survive: %v", err)
	}
}

func TestTCPConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*TCPConfig)
		ok     bool
	}{
		{"default with id", func(*TCPConfig) {}, true},
		{"no node id", func(c *TCPConfig) { c.NodeID = "" }, false},
		{"no listen addr", func(c *TCPConfig) { c.ListenAddr = "" }, false},
		{"zero dial timeout", func(c *TCPConfig) { c.DialTimeout = 0 }, false},
		{"zero default timeout", func(c *TCPConfig) { c.DefaultTimeout = 0 }, false},
		{"negative write timeout", func(c *TCPConfig) { c.WriteTimeout = -1 }, false},
		{"frame size below 4 MiB", func(c *TCPConfig) { c.MaxFrameSize = 4 << 20 }, false},
		{"minimum frame size", func(c *TCPConfig) { c.MaxFrameSize = MinMaxFrameSize }, true},
		{"frame size over 4 GiB", func(c *TCPConfig) { c.MaxFrameSize = 1 << 32 }, false},
		{"zero conns", func(c *TCPConfig) { c.ConnsPerPeer = 0 }, false},
		{"too many conns", func(c *TCPConfig) { c.ConnsPerPeer = 65 }, false},
		{"tiny write buffer", func(c *TCPConfig) { c.WriteBufferSize = 100 }, false},
		{"tiny read buffer", func(c *TCPConfig) { c.ReadBufferSize = 100 }, false},
		{"zero queue", func(c *TCPConfig) { c.SendQueueLen = 0 }, false},
		{"inflight budget below a frame", func(c *TCPConfig) { c.MaxInflightBytes = 64 << 20 }, false},
		{"inflight budget fitting a frame", func(c *TCPConfig) { c.MaxInflightBytes = 74 << 20 }, true},
		{"zero handlers", func(c *TCPConfig) { c.MaxHandlers = 0 }, false},
		{"mutual TLS", func(c *TCPConfig) { c.TLS = testTLS(t, testCA(t), "n1") }, true},
		{"TLS without CAs", func(c *TCPConfig) { c.TLS = testTLS(t, testCA(t), "n1"); c.TLS.ClientCAs = nil }, false},
		{"TLS without a certificate", func(c *TCPConfig) { c.TLS = testTLS(t, testCA(t), "n1"); c.TLS.Certificates = nil }, false},
		{"TLS without Identify", func(c *TCPConfig) { c.TLS = testTLS(t, testCA(t), "n1"); c.Identify = nil }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultTCPConfig()
			cfg.NodeID = "n1"
			tt.mutate(&cfg)
			err := cfg.Validate()
			if tt.ok != (err == nil) {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
			if !tt.ok {
				if _, err := NewTCP(cfg, zerolog.Nop()); !errors.Is(err, ErrInvalidConfig) {
					t.Fatalf("NewTCP accepted an invalid config: %v", err)
				}
			}
		})
	}
}
