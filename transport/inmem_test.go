package transport

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
	"pgregory.net/rapid"
)

// memNet builds a network on a fake clock with serving echo transports at
// the given addresses (node IDs are "id-" + addr), closed at test end.
func memNet(t testing.TB, addrs ...string) (*Network, *clock.Fake, map[string]*Mem) {
	t.Helper()
	clk := clock.NewFake()
	n := NewNetwork(clk)
	n.SetDefaultTimeout(time.Second)
	nodes := make(map[string]*Mem)
	for _, a := range addrs {
		m := n.NewTransport(a, "id-"+a)
		if err := m.Serve(echo); err != nil {
			t.Fatal(err)
		}
		nodes[a] = m
		t.Cleanup(func() { _ = m.Close() })
	}
	return n, clk, nodes
}

// asyncCall starts a call and returns where its outcome will arrive.
type outcome struct {
	out []byte
	err error
}

func asyncCall(ctx context.Context, m *Mem, addr, method string, body []byte) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		out, err := m.Call(ctx, addr, method, body)
		ch <- outcome{out, err}
	}()
	return ch
}

func expectPending(t *testing.T, ch <-chan outcome) {
	t.Helper()
	select {
	case o := <-ch:
		t.Fatalf("call finished early: %q %v", o.out, o.err)
	default:
	}
}

func await(t *testing.T, ch <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(5 * time.Second):
		t.Fatal("call did not finish")
		return outcome{}
	}
}

func TestMemCall(t *testing.T) {
	_, _, nodes := memNet(t, "a", "b")
	out, err := nodes["a"].Call(context.Background(), "b", "kv.get", []byte("k"))
	if err != nil || string(out) != "id-a|kv.get|k" {
		t.Fatalf("Call = %q, %v", out, err)
	}
	m := nodes["a"].Metrics()
	if m.Calls != 1 || m.Errors != 0 || m.BytesOut != 1 || m.BytesIn != uint64(len(out)) {
		t.Fatalf("caller metrics %+v", m)
	}
	if s := nodes["b"].Metrics(); s.Served != 1 || s.BytesIn != 1 {
		t.Fatalf("server metrics %+v", s)
	}
}

// TestMemCopiesBodies checks that caller and handler never share memory.
func TestMemCopiesBodies(t *testing.T) {
	n := NewNetwork(clock.NewFake())
	a, b := n.NewTransport("a", "a"), n.NewTransport("b", "b")
	defer a.Close()
	defer b.Close()
	kept := []byte("server-owned")
	var seen []byte
	_ = b.Serve(func(_ context.Context, req *Request) ([]byte, error) {
		seen = req.Body
		req.Body[0] = 'X' // scribbles on its request
		return kept, nil
	})
	body := []byte("client-owned")
	out, err := a.Call(context.Background(), "b", "m", body)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != "client-owned" {
		t.Fatalf("handler's write reached the caller's body: %q", body)
	}
	if string(seen) != "Xlient-owned" {
		t.Fatalf("handler saw %q", seen)
	}
	out[0] = 'Y'
	if string(kept) != "server-owned" {
		t.Fatalf("caller's write reached the handler's reply: %q", kept)
	}
}

func TestMemPartitionAndIsolate(t *testing.T) {
	type edge struct{ from, to string }
	all := []string{"a", "b", "c", "d"}
	tests := []struct {
		name    string
		setup   func(n *Network)
		blocked []edge // every other pair is reachable
	}{
		{"no rules", func(*Network) {}, nil},
		{"two groups, d unlisted", func(n *Network) { n.Partition([]string{"a", "b"}, []string{"c"}) },
			[]edge{{"a", "c"}, {"c", "a"}, {"b", "c"}, {"c", "b"}, {"a", "d"}, {"d", "a"}, {"b", "d"}, {"d", "b"}, {"c", "d"}, {"d", "c"}}},
		{"one group cuts it off from the rest", func(n *Network) { n.Partition([]string{"a"}) },
			[]edge{{"a", "b"}, {"b", "a"}, {"a", "c"}, {"c", "a"}, {"a", "d"}, {"d", "a"}}},
		{"repartition replaces", func(n *Network) {
			n.Partition([]string{"a"})
			n.Partition([]string{"a", "b", "c"}, []string{"d"})
		}, []edge{{"a", "d"}, {"d", "a"}, {"b", "d"}, {"d", "b"}, {"c", "d"}, {"d", "c"}}},
		{"isolate", func(n *Network) { n.Isolate("b") },
			[]edge{{"a", "b"}, {"b", "a"}, {"c", "b"}, {"b", "c"}, {"d", "b"}, {"b", "d"}}},
		{"heal", func(n *Network) {
			n.Partition([]string{"a"}, []string{"b"})
			n.Isolate("c")
			n.Heal()
		}, nil},
		{"down", func(n *Network) { n.Down("c") },
			[]edge{{"a", "c"}, {"c", "a"}, {"b", "c"}, {"c", "b"}, {"d", "c"}, {"c", "d"}, {"c", "c"}}},
		{"down then up", func(n *Network) { n.Down("c"); n.Up("c") }, nil},
		{"block one way", func(n *Network) { n.Block("a", "b", true) }, []edge{{"a", "b"}}},
		{"block off", func(n *Network) { n.Block("a", "b", true); n.Block("a", "b", false) }, nil},
		{"heal leaves down", func(n *Network) { n.Down("d"); n.Heal() },
			[]edge{{"a", "d"}, {"d", "a"}, {"b", "d"}, {"d", "b"}, {"c", "d"}, {"d", "c"}, {"d", "d"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, _, nodes := memNet(t, all...)
			tt.setup(n)
			blocked := map[edge]bool{}
			for _, e := range tt.blocked {
				blocked[e] = true
			}
			for _, from := range all {
				for _, to := range all {
					_, err := nodes[from].Call(context.Background(), to, "m", nil)
					if blocked[edge{from, to}] {
						// Fails fast: no clock advance needed.
						if !errors.Is(err, ErrUnreachable) {
							t.Errorf("%s -> %s: %v, want ErrUnreachable", from, to, err)
						}
					} else if err != nil {
						t.Errorf("%s -> %s: %v, want success", from, to, err)
					}
				}
			}
		})
	}
}

func TestMemDrop(t *testing.T) {
	n, clk, nodes := memNet(t, "a", "b")
	var served atomic.Int32
	c := n.NewTransport("c", "c")
	defer c.Close()
	_ = c.Serve(func(context.Context, *Request) ([]byte, error) { served.Add(1); return nil, nil })

	n.Drop("a", "c", true)
	ch := asyncCall(context.Background(), nodes["a"], "c", "m", nil)
	waitFor(t, "call to wait on the clock", func() bool { return clk.Pending() == 1 })
	clk.Advance(time.Second - time.Nanosecond)
	expectPending(t, ch)
	clk.Advance(time.Nanosecond)
	o := await(t, ch)
	if !errors.Is(o.err, ErrTimeout) {
		t.Fatalf("dropped request: %v, want ErrTimeout", o.err)
	}
	if served.Load() != 0 {
		t.Fatal("dropped request reached the handler")
	}
	// Only that direction is affected.
	if _, err := nodes["b"].Call(context.Background(), "c", "m", nil); err != nil {
		t.Fatalf("b -> c: %v", err)
	}
	if _, err := c.Call(context.Background(), "a", "m", nil); err != nil {
		t.Fatalf("c -> a: %v", err)
	}
	n.Drop("a", "c", false)
	if _, err := nodes["a"].Call(context.Background(), "c", "m", nil); err != nil {
		t.Fatalf("after Drop off: %v", err)
	}
	if m := nodes["a"].Metrics(); m.Dropped != 1 || m.Timeouts != 1 || m.Errors != 1 || m.Calls != 2 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestMemDropReplies(t *testing.T) {
	n, clk, nodes := memNet(t, "a")
	var served atomic.Int32
	b := n.NewTransport("b", "b")
	defer b.Close()
	_ = b.Serve(func(context.Context, *Request) ([]byte, error) { served.Add(1); return []byte("r"), nil })

	n.DropReplies("a", "b", true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour) // budget 1h on the fake clock
	defer cancel()
	ch := asyncCall(ctx, nodes["a"], "b", "m", nil)
	waitFor(t, "handler to run", func() bool { return served.Load() == 1 })
	waitFor(t, "reply to be dropped", func() bool { return b.Metrics().Dropped == 1 })
	expectPending(t, ch)
	clk.Advance(time.Hour)
	if o := await(t, ch); !errors.Is(o.err, ErrTimeout) {
		t.Fatalf("lost reply: %v, want ErrTimeout", o.err)
	}
	n.DropReplies("a", "b", false)
	if out, err := nodes["a"].Call(context.Background(), "b", "m", nil); err != nil || string(out) != "r" {
		t.Fatalf("after DropReplies off: %q %v", out, err)
	}
}

func TestMemDelay(t *testing.T) {
	n, clk, nodes := memNet(t, "a")
	var served atomic.Int32
	b := n.NewTransport("b", "b")
	defer b.Close()
	_ = b.Serve(func(_ context.Context, req *Request) ([]byte, error) { served.Add(1); return req.Body, nil })

	n.Delay("a", "b", 100*time.Millisecond)
	ch := asyncCall(context.Background(), nodes["a"], "b", "m", []byte("x"))
	waitFor(t, "deadline and delay timers", func() bool { return clk.Pending() == 2 })
	clk.Advance(99 * time.Millisecond)
	expectPending(t, ch)
	if served.Load() != 0 {
		t.Fatal("delayed request delivered early")
	}
	clk.Advance(time.Millisecond)
	if o := await(t, ch); o.err != nil || string(o.out) != "x" {
		t.Fatalf("delayed call: %q %v", o.out, o.err)
	}
	if served.Load() != 1 {
		t.Fatalf("served %d", served.Load())
	}

	// A delay beyond the deadline times out without delivering.
	n.Delay("a", "b", 2*time.Second)
	ch = asyncCall(context.Background(), nodes["a"], "b", "m", nil)
	waitFor(t, "timers", func() bool { return clk.Pending() == 2 })
	clk.Advance(time.Second)
	if o := await(t, ch); !errors.Is(o.err, ErrTimeout) {
		t.Fatalf("over-long delay: %v, want ErrTimeout", o.err)
	}
	clk.Advance(time.Hour)
	if served.Load() != 1 {
		t.Fatal("request delivered after its call timed out")
	}

	// Rules are checked again on delivery.
	n.Delay("a", "b", time.Millisecond)
	ch = asyncCall(context.Background(), nodes["a"], "b", "m", nil)
	waitFor(t, "timers", func() bool { return clk.Pending() == 2 })
	n.Partition([]string{"a"}, []string{"b"})
	clk.Advance(time.Millisecond)
	if o := await(t, ch); !errors.Is(o.err, ErrUnreachable) {
		t.Fatalf("partitioned during delay: %v, want ErrUnreachable", o.err)
	}

	n.Heal()
	n.Delay("a", "b", 0)
	if _, err := nodes["a"].Call(context.Background(), "b", "m", nil); err != nil {
		t.Fatalf("delay removed: %v", err)
	}
}

func TestMemDownDuringCall(t *testing.T) {
	n, _, nodes := memNet(t, "a")
	started := make(chan struct{}, 1)
	var ctxCancelled atomic.Bool
	b := n.NewTransport("b", "b")
	defer b.Close()
	_ = b.Serve(func(ctx context.Context, req *Request) ([]byte, error) {
		if req.Method == "fast" {
			return []byte("up"), nil
		}
		started <- struct{}{}
		<-ctx.Done()
		ctxCancelled.Store(true)
		return []byte("after crash"), nil
	})
	ch := asyncCall(context.Background(), nodes["a"], "b", "slow", nil)
	<-started
	n.Down("b")
	if o := await(t, ch); !errors.Is(o.err, ErrUnreachable) || errors.Is(o.err, ErrNotSent) {
		t.Fatalf("call to crashed node: %v, want ErrUnreachable, and not ErrNotSent: the handler ran", o.err)
	}
	// A call to a node that is already down never leaves the caller.
	if _, err := nodes["a"].Call(context.Background(), "b", "fast", nil); !errors.Is(err, ErrNotSent) || !errors.Is(err, ErrUnreachable) {
		t.Fatalf("call to a down node: %v, want ErrNotSent and ErrUnreachable", err)
	}
	waitFor(t, "handler ctx cancelled", ctxCancelled.Load)
	n.Up("b")
	if out, err := nodes["a"].Call(context.Background(), "b", "fast", nil); err != nil || string(out) != "up" {
		t.Fatalf("after Up: %q %v", out, err)
	}
}

// TestMemDownFailsOwnCalls: a crashed node's own calls end too.
func TestMemDownFailsOwnCalls(t *testing.T) {
	n, clk, nodes := memNet(t, "a", "b")
	n.Drop("a", "b", true)
	ch := asyncCall(context.Background(), nodes["a"], "b", "m", nil)
	waitFor(t, "call pending", func() bool { return clk.Pending() == 1 })
	n.Down("a")
	if o := await(t, ch); !errors.Is(o.err, ErrUnreachable) {
		t.Fatalf("call from crashed node: %v, want ErrUnreachable", o.err)
	}
}

func TestMemClose(t *testing.T) {
	n, clk, nodes := memNet(t, "a", "b")
	started := make(chan struct{}, 1)
	var handlerDone atomic.Bool
	c := n.NewTransport("c", "c")
	_ = c.Serve(func(ctx context.Context, _ *Request) ([]byte, error) {
		started <- struct{}{}
		<-ctx.Done()
		handlerDone.Store(true)
		return nil, ctx.Err()
	})

	// a's own pending call fails with ErrClosed when a closes.
	n.Drop("a", "b", true)
	mine := asyncCall(context.Background(), nodes["a"], "b", "m", nil)
	waitFor(t, "call pending", func() bool { return clk.Pending() == 1 })
	// b's call being served by c fails with ErrUnreachable when c closes.
	served := asyncCall(context.Background(), nodes["b"], "c", "m", nil)
	<-started

	if err := nodes["a"].Close(); err != nil {
		t.Fatal(err)
	}
	if o := await(t, mine); !errors.Is(o.err, ErrClosed) {
		t.Fatalf("pending call of closed transport: %v, want ErrClosed", o.err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if !handlerDone.Load() {
		t.Fatal("Close returned before its handler")
	}
	if o := await(t, served); !errors.Is(o.err, ErrUnreachable) {
		t.Fatalf("call served by closed transport: %v, want ErrUnreachable", o.err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := nodes["a"].Call(context.Background(), "b", "m", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Call after Close: %v, want ErrClosed", err)
	}
	if _, err := nodes["b"].Call(context.Background(), "c", "m", nil); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Call to closed transport: %v, want ErrUnreachable", err)
	}

	// The address can be reused: a restarted process.
	c2 := n.NewTransport("c", "c")
	defer c2.Close()
	_ = c2.Serve(echo)
	if out, err := nodes["b"].Call(context.Background(), "c", "m", nil); err != nil || string(out) != "id-b|m|" {
		t.Fatalf("call to restarted c: %q %v", out, err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("NewTransport on a live address did not panic")
			}
		}()
		n.NewTransport("c", "other")
	}()
}

func TestMemServe(t *testing.T) {
	n := NewNetwork(clock.NewFake())
	a, b := n.NewTransport("a", "a"), n.NewTransport("b", "b")
	defer a.Close()
	defer b.Close()
	if _, err := a.Call(context.Background(), "b", "m", nil); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("call before Serve: %v, want ErrUnreachable", err)
	}
	if _, err := a.Call(context.Background(), "nowhere", "m", nil); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("call to unknown address: %v, want ErrUnreachable", err)
	}
	if err := b.Serve(echo); err != nil {
		t.Fatal(err)
	}
	if err := b.Serve(echo); !errors.Is(err, ErrServing) {
		t.Fatalf("second Serve: %v", err)
	}
	if err := a.Serve(nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Serve(nil): %v", err)
	}
	if _, err := a.Call(context.Background(), "b", "", nil); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("empty method: %v", err)
	}
}

func TestMemRemoteErrors(t *testing.T) {
	n := NewNetwork(clock.NewFake())
	a, b := n.NewTransport("a", "a"), n.NewTransport("b", "b")
	defer a.Close()
	defer b.Close()
	_ = b.Serve(func(_ context.Context, req *Request) ([]byte, error) {
		if req.Method == "coded" {
			return nil, fmt.Errorf("wrap: %w", codedErr{"conflict", "version mismatch"})
		}
		return nil, errors.New("plain")
	})
	for method, want := range map[string]RemoteError{
		"coded": {Code: "conflict", Message: "wrap: version mismatch"},
		"plain": {Code: CodeInternal, Message: "plain"},
	} {
		_, err := a.Call(context.Background(), "b", method, nil)
		var re *RemoteError
		if !errors.As(err, &re) || *re != want {
			t.Fatalf("%s: %v, want %+v", method, err, want)
		}
	}
}

func TestMemContext(t *testing.T) {
	_, clk, nodes := memNet(t, "a")
	n := nodes["a"].net
	b := n.NewTransport("b", "b")
	defer b.Close()
	release := make(chan struct{})
	_ = b.Serve(func(ctx context.Context, _ *Request) ([]byte, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return []byte("late"), nil
	})

	// A ctx deadline becomes a budget on the network clock.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	ch := asyncCall(ctx, nodes["a"], "b", "m", nil)
	waitFor(t, "deadline timer", func() bool { return clk.Pending() == 1 })
	clk.Advance(59 * time.Minute)
	expectPending(t, ch)
	clk.Advance(time.Minute)
	o := await(t, ch)
	if !errors.Is(o.err, ErrTimeout) || !errors.Is(o.err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrTimeout", o.err)
	}
	close(release)
	waitFor(t, "late reply counted", func() bool { return nodes["a"].Metrics().LateReplies == 1 })

	// Cancellation ends the call at once.
	n.Drop("a", "b", true)
	cctx, ccancel := context.WithCancel(context.Background())
	ch = asyncCall(cctx, nodes["a"], "b", "m", nil)
	waitFor(t, "deadline timer", func() bool { return clk.Pending() == 1 })
	ccancel()
	if o := await(t, ch); !errors.Is(o.err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", o.err)
	}
}

// TestMemReachabilityProperty checks random rule sequences against a model
// of the documented rules.
func TestMemReachabilityProperty(t *testing.T) {
	addrs := []string{"a", "b", "c", "d"}
	rapid.Check(t, func(rt *rapid.T) {
		clk := clock.NewFake()
		n := NewNetwork(clk)
		nodes := map[string]*Mem{}
		for _, a := range addrs {
			m := n.NewTransport(a, a)
			_ = m.Serve(echo)
			nodes[a] = m
		}
		defer func() {
			for _, m := range nodes {
				_ = m.Close()
			}
		}()
		// Model.
		group := map[string]int(nil)
		isolated := map[string]bool{}
		down := map[string]bool{}
		reachable := func(from, to string) bool {
			if down[from] || down[to] {
				return false
			}
			if from == to {
				return true
			}
			if isolated[from] || isolated[to] {
				return false
			}
			if group != nil {
				gf, ok := group[from]
				if !ok {
					gf = -1
				}
				gt, ok := group[to]
				if !ok {
					gt = -1
				}
				return gf == gt
			}
			return true
		}
		addr := rapid.SampledFrom(addrs)
		steps := rapid.IntRange(1, 20).Draw(rt, "steps")
		for i := 0; i < steps; i++ {
			switch rapid.IntRange(0, 5).Draw(rt, "op") {
			case 0:
				k := rapid.IntRange(1, 3).Draw(rt, "groups")
				groups := make([][]string, k)
				group = map[string]int{}
				for _, a := range addrs {
					if g := rapid.IntRange(-1, k-1).Draw(rt, "group of "+a); g >= 0 {
						groups[g] = append(groups[g], a)
						group[a] = g
					}
				}
				n.Partition(groups...)
			case 1:
				a := addr.Draw(rt, "isolate")
				isolated[a] = true
				n.Isolate(a)
			case 2:
				group, isolated = nil, map[string]bool{}
				n.Heal()
			case 3:
				a := addr.Draw(rt, "down")
				down[a] = true
				n.Down(a)
			case 4:
				a := addr.Draw(rt, "up")
				delete(down, a)
				n.Up(a)
			case 5:
				from, to := addr.Draw(rt, "from"), addr.Draw(rt, "to")
				_, err := nodes[from].Call(context.Background(), to, "m", nil)
				if want := reachable(from, to); want != (err == nil) {
					rt.Fatalf("%s -> %s: err %v, model says reachable=%v", from, to, err, want)
				}
				if err != nil && !errors.Is(err, ErrUnreachable) {
					rt.Fatalf("%s -> %s: %v, want ErrUnreachable", from, to, err)
				}
			}
		}
	})
}
