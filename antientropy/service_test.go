package antientropy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/transport"
	"github.com/rs/zerolog"
)

// wallTimeout bounds waits on background goroutines; it only turns a hang
// into a failure.
const wallTimeout = 10 * time.Second

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); !errors.Is(err, ErrConfig) {
		t.Fatalf("default config without NodeID: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"partitions not a power of two", func(c *Config) { c.Partitions = 100 }},
		{"leaves not a power of two", func(c *Config) { c.LeavesPerPartition = 1000 }},
		{"fanout 1", func(c *Config) { c.Fanout = 1 }},
		{"too many leaves", func(c *Config) { c.Partitions, c.LeavesPerPartition = 65536, 1024 }},
		{"zero N", func(c *Config) { c.N = 0 }},
		{"zero interval", func(c *Config) { c.Interval = 0 }},
		{"negative rate", func(c *Config) { c.BytesPerSecond = -1 }},
		{"rate without burst", func(c *Config) { c.BurstBytes = 0 }},
		{"zero grace", func(c *Config) { c.TombstoneGrace = 0 }},
		{"huge leaf batch", func(c *Config) { c.MaxLeavesPerCall = maxLeavesPerCall + 1 }},
		{"nil decoder", func(c *Config) { c.DecodeSet = nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.NodeID = "a"
			tc.mutate(&cfg)
			if err := cfg.Validate(); !errors.Is(err, ErrConfig) {
				t.Fatalf("err %v, want ErrConfig", err)
			}
		})
	}
	cfg := DefaultConfig()
	cfg.NodeID = "a"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestServiceLifecycle(t *testing.T) {
	cfg := testConfig()
	cfg.NodeID = "a"
	st := newMemStore()
	net := newMemNet()
	rg := &fakeRing{q: cfg.Partitions, members: []string{"a", "b"}}
	deps := Deps{Store: st, Ring: func() Ring { return rg }, Caller: memCaller{net, "a"}, Clock: clock.NewFake()}
	for _, bad := range []Deps{{Ring: deps.Ring, Caller: deps.Caller}, {Store: st, Caller: deps.Caller}, {Store: st, Ring: deps.Ring}} {
		if _, err := New(cfg, bad, zerolog.Nop()); !errors.Is(err, ErrConfig) {
			t.Fatalf("missing dependency: %v", err)
		}
	}
	svc, err := New(cfg, deps, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	req := &transport.Request{From: "b", Method: MethodHashes, Body: encodeMsg(&HashesRequest{Shape: svc.shape.code(), Level: 0})}
	if _, err := svc.HandleRPC(context.Background(), req); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("RPC before Start: %v", err)
	}
	if _, err := svc.RunOnce(context.Background()); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("RunOnce before Start: %v", err)
	}
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(); err == nil {
		t.Fatal("second Start succeeded")
	}
	if _, err := svc.HandleRPC(context.Background(), req); err != nil {
		t.Fatalf("RPC after Start: %v", err)
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := svc.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := svc.HandleRPC(context.Background(), req); !errors.Is(err, ErrClosed) {
		t.Fatalf("RPC after Close: %v", err)
	}
	if _, err := svc.RunOnce(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("RunOnce after Close: %v", err)
	}
	if err := svc.Start(); err == nil {
		t.Fatal("Start after Close succeeded")
	}

	// A ring with another partition count is refused.
	cfg.Partitions = 8
	svc, err = New(cfg, deps, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if err := svc.Start(); !errors.Is(err, ErrConfig) {
		t.Fatalf("Start with a mismatched ring: %v", err)
	}
}

func TestHandleRPCRejectsBadRequests(t *testing.T) {
	c := newTestCluster(t, testConfig(), "a", "b")
	svc := c.node("a").svc
	code := svc.shape.code()
	tests := []struct {
		name   string
		method string
		body   []byte
		want   error
	}{
		{"unknown method", "ae.nope", nil, ErrUnknownMethod},
		{"garbage", MethodHashes, []byte{0xc1, 0xff}, ErrBadRequest},
		{"shape mismatch", MethodHashes, encodeMsg(&HashesRequest{Shape: code + 1}), ErrShapeMismatch},
		{"partition out of range", MethodHashes, encodeMsg(&HashesRequest{Shape: code, Partition: 4}), ErrBadRequest},
		{"level out of range", MethodHashes, encodeMsg(&HashesRequest{Shape: code, Level: 9}), ErrBadRequest},
		{"node out of range", MethodHashes, encodeMsg(&HashesRequest{Shape: code, Level: 0, Index: []uint32{64}}), ErrBadRequest},
		{"leaf out of range", MethodLeafKeys, encodeMsg(&LeafKeysRequest{Shape: code, Leaves: []uint32{64}}), ErrBadRequest},
		{"fetch outside partition", MethodFetch, encodeMsg(&FetchRequest{Shape: code, Partition: 0, Hashes: []uint64{1 << 63}}), ErrBadRequest},
		{"push empty key", MethodPush, encodeMsg(&PushRequest{Shape: code, Records: []Record{{Hash: 1, Set: []byte{1}}}}), ErrBadRequest},
		{"push undecodable set", MethodPush, encodeMsg(&PushRequest{Shape: code, Records: []Record{{Hash: 1, Key: []byte("k"), Set: []byte{0xff}}}}), ErrBadRequest},
		{"hastomb undecodable set", MethodHasTomb, encodeMsg(&HasTombRequest{Shape: code, Items: []Record{{Hash: 1, Key: []byte("k"), Set: []byte{0xff}}}}), ErrBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := svc.HandleRPC(context.Background(), &transport.Request{From: "b", Method: tc.method, Body: tc.body})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
	if m := svc.Metrics(); m.RPCErrors != uint64(len(tests)) {
		t.Fatalf("RPCErrors %d, want %d", m.RPCErrors, len(tests))
	}
}

// TestBackgroundLoopConverges: with only the fake clock moving, the
// exchange loops of both nodes visit every partition, one per Interval,
// and the replicas converge.
func TestBackgroundLoopConverges(t *testing.T) {
	c := newTestCluster(t, testConfig(), "a", "b")
	ticks := make(chan string, 64)
	for _, id := range []string{"a", "b"} {
		svc := c.node(id).svc
		svc.mu.Lock()
		svc.hooks.afterTick = func(loop string) {
			if loop == "exchange" {
				ticks <- id
			}
		}
		svc.mu.Unlock()
	}
	for i := range 40 {
		c.write("a", "ka"+string(rune('a'+i%26))+strings.Repeat("x", i), "v", false, true)
		c.write("b", "kb"+strings.Repeat("y", i), "w", false, true)
	}
	if c.rootsEqual("a", "b") {
		t.Fatal("replicas equal before any exchange")
	}
	// Both nodes replicate all 4 partitions: 4 ticks each cover them.
	for range c.cfg.Partitions {
		c.clk.Advance(c.cfg.Interval)
		for range 2 {
			select {
			case <-ticks:
			case <-time.After(wallTimeout):
				t.Fatal("exchange tick did not run")
			}
		}
	}
	if !c.rootsEqual("a", "b") {
		t.Fatal("replicas differ after a full background round")
	}
	if err := storesEqual(c.node("a").st, c.node("b").st); err != nil {
		t.Fatal(err)
	}
	// Each loop ran one exchange per partition. Both loops run in the same
	// tick, so which side moves a key varies; between them, each of the 80
	// keys that one side lacked was moved at least once.
	var moved uint64
	for _, id := range []string{"a", "b"} {
		m := c.node(id).svc.Metrics()
		if m.Exchanges != uint64(c.cfg.Partitions) {
			t.Fatalf("%s: %d exchanges, want %d: %+v", id, m.Exchanges, c.cfg.Partitions, m)
		}
		moved += m.KeysPushed + m.KeysPulled
	}
	if moved < 80 {
		t.Fatalf("%d keys moved in all, want at least 80", moved)
	}
}

// TestPrioritizeFirstAndPersisted: a prioritized partition is exchanged
// before the round-robin order, survives a restart, and is cleared once it
// was exchanged with every replica (and stays cleared after a restart).
func TestPrioritizeFirstAndPersisted(t *testing.T) {
	c := newTestCluster(t, testConfig(), "a", "b")
	a := c.node("a")
	if p, _ := a.svc.nextPartition(); p != 0 {
		t.Fatalf("first partition %d, want 0", p)
	}
	a.svc.Prioritize(3)
	a.svc.Prioritize(2)
	a.svc.Prioritize(99) // ignored
	if got := a.svc.Prioritized(); len(got) != 2 || got[0] != 2 || got[1] != 3 {
		t.Fatalf("prioritized %v", got)
	}
	if p, _ := a.svc.nextPartition(); p != 2 {
		t.Fatalf("next partition %d, want prioritized 2", p)
	}
	// Restart a over the same store: the queue is still there.
	_ = a.svc.Close()
	a = c.addNode("a", a.st)
	if got := a.svc.Prioritized(); len(got) != 2 || got[0] != 2 || got[1] != 3 {
		t.Fatalf("prioritized after restart %v", got)
	}
	// Run orders prioritized partitions first, then clears them.
	if got := a.svc.replicated(); got[0] != 2 || got[1] != 3 {
		t.Fatalf("run order %v", got)
	}
	c.net.setDown("b", true)
	if _, err := a.svc.Run(context.Background(), []int{2}); err == nil {
		t.Fatal("exchange with a down peer succeeded")
	}
	if got := a.svc.Prioritized(); len(got) != 2 {
		t.Fatalf("a failed exchange cleared the priority: %v", got)
	}
	c.net.setDown("b", false)
	if _, err := a.svc.Run(context.Background(), []int{2}); err != nil {
		t.Fatal(err)
	}
	if got := a.svc.Prioritized(); len(got) != 1 || got[0] != 3 {
		t.Fatalf("prioritized after exchanging 2: %v", got)
	}
	_ = a.svc.Close()
	a = c.addNode("a", a.st)
	if got := a.svc.Prioritized(); len(got) != 1 || got[0] != 3 {
		t.Fatalf("prioritized after second restart: %v", got)
	}
}

// TestReplicatesFilterSettles: keys of a bucket with n=1 live only on
// their primary. Exchanges never copy them to the other replica, and once
// an exchange found a leaf it cannot fix, later exchanges skip it (no
// listing, no transfer) instead of repeating the work every time — until
// the leaf changes.
func TestReplicatesFilterSettles(t *testing.T) {
	cfg := testConfig()
	cfg.Replicates = func(k []byte, node string) bool {
		return node == "a" || !bytes.Contains(k, []byte("solo"))
	}
	c := newTestCluster(t, cfg, "a", "b")
	for i := range 30 {
		c.write("a", "solo"+strings.Repeat("s", i), "only on a", false, true)
	}
	for _, dir := range [][2]string{{"a", "b"}, {"b", "a"}} {
		rep := c.exchange(dir[0], dir[1])
		if rep.KeysPushed != 0 || rep.KeysPulled != 0 || rep.KeysDiffering == 0 {
			t.Fatalf("%v: first exchange %+v", dir, rep)
		}
		rep = c.exchange(dir[0], dir[1])
		if rep.KeysDiffering != 0 || rep.Traffic.LeafKeys != 0 || rep.Traffic.Records != 0 {
			t.Fatalf("%v: second exchange repeated the work: %+v", dir, rep)
		}
	}
	if n := c.node("b").st.len(); n != 0 {
		t.Fatalf("b holds %d keys it must not", n)
	}
	if m := c.node("a").svc.Metrics(); m.LeavesSettled == 0 {
		t.Fatalf("no settled leaves: %+v", m)
	}
	// A key both should hold, written into the same partitions later, still
	// moves: the settled memory matches hash pairs, not leaves.
	for i := range 30 {
		c.write("a", "shared"+strings.Repeat("s", i), "both", false, true)
	}
	rep := c.exchange("a", "b")
	if rep.KeysPushed != 30 {
		t.Fatalf("shared keys pushed %d, want 30 (%+v)", rep.KeysPushed, rep)
	}
	if n := c.node("b").st.len(); n != 30 {
		t.Fatalf("b holds %d keys, want 30", n)
	}
}

// TestInconsistentLeafIsRebuilt: a leaf whose stored hash does not match
// its records (as after a lost write event) is detected when an exchange
// lists it and rebuilt from the store.
func TestInconsistentLeafIsRebuilt(t *testing.T) {
	c := newTestCluster(t, testConfig(), "a", "b")
	c.write("a", "k1", "x", false, true)
	c.exchange("a", "b")
	if !c.rootsEqual("a", "b") {
		t.Fatal("not converged")
	}
	a := c.node("a")
	h := a.st.hash(testKey("k1"))
	p, leaf := a.svc.shape.Partition(h), a.svc.shape.Leaf(h)
	pt := a.svc.forest.part(p)
	pt.mu.Lock()
	pt.tree.Apply(leaf, 0xdead) // corrupt, without a write event
	pt.mu.Unlock()
	rep := c.exchange("a", "b")
	if rep.KeysDiffering != 0 || rep.LeavesDiffering != 1 {
		t.Fatalf("exchange %+v", rep)
	}
	m := a.svc.Metrics()
	if m.Inconsistencies != 1 || m.LeafRebuilds != 1 {
		t.Fatalf("inconsistencies %d, leaf rebuilds %d", m.Inconsistencies, m.LeafRebuilds)
	}
	if !c.rootsEqual("a", "b") {
		t.Fatal("leaf not repaired")
	}
}

func TestByteBucket(t *testing.T) {
	clk := clock.NewFake()
	b := newByteBucket(clk, 1000, 500)
	ctx := context.Background()
	if err := b.wait(ctx); err != nil {
		t.Fatal(err)
	}
	b.charge(2500) // 500 tokens, so 2000 in debt: 2 s to repay
	done := make(chan error, 1)
	go func() { done <- b.wait(ctx) }()
	waitTimers(t, clk, 1)
	clk.Advance(1900 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("wait returned while in debt")
	default:
	}
	clk.Advance(100 * time.Millisecond)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wallTimeout):
		t.Fatal("wait did not return once repaid")
	}
	if b.waitedTotal() != 2*time.Second {
		t.Fatalf("waited %v, want 2s", b.waitedTotal())
	}
	// Refill is capped at the burst.
	clk.Advance(time.Hour)
	b.charge(600)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.wait(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	b.mu.Lock()
	tokens := b.tokens
	b.mu.Unlock()
	if tokens != -100 {
		t.Fatalf("tokens %v, want -100 (burst 500 - 600)", tokens)
	}
}

// waitTimers waits until the fake clock has n pending timers (a goroutine
// reached its timer).
func waitTimers(t *testing.T, clk *clock.Fake, n int) {
	t.Helper()
	deadline := time.Now().Add(wallTimeout)
	for clk.Pending() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d timers pending, want %d", clk.Pending(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestExchangeRateLimited: an exchange pass waits for the byte bucket and
// only finishes as the (fake) clock lets tokens in.
func TestExchangeRateLimited(t *testing.T) {
	cfg := testConfig()
	cfg.BytesPerSecond = 1000
	cfg.BurstBytes = 1000
	cfg.Interval = time.Hour // keep the background loops out of it
	// Small calls (each at most ~1.5 KB), so the bound below is tight.
	cfg.MaxLeavesPerCall, cfg.MaxKeysPerCall, cfg.MaxBatchBytes = 8, 8, 800
	c := newTestCluster(t, cfg, "a", "b")
	idle := c.clk.Pending() // the loops' tickers
	for i := range 100 {
		c.write("a", "key"+strings.Repeat("k", i), strings.Repeat("v", 100), false, true)
	}
	type result struct {
		rep Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := c.node("a").svc.RunOnce(context.Background())
		done <- result{rep, err}
	}()
	var advanced time.Duration
	for {
		select {
		case r := <-done:
			if r.err != nil {
				t.Fatal(r.err)
			}
			total := r.rep.Traffic.Total()
			// A call starts only when the bucket is out of debt, so all
			// calls but the last fit in burst + rate × time: moving total
			// bytes at 1000 B/s with a 1000 B burst takes at least
			// (total - 1000 - 1500) ms of clock.
			if total < 10_000 || advanced < time.Duration(total-2500)*time.Millisecond {
				t.Fatalf("moved %d bytes with the clock advanced %v", total, advanced)
			}
			if !c.rootsEqual("a", "b") {
				t.Fatal("not converged")
			}
			if w := c.node("a").svc.Metrics().RateWait; w <= 0 {
				t.Fatalf("RateWait %v", w)
			}
			return
		case <-time.After(time.Millisecond):
			if c.clk.Pending() > idle { // a rate-limit timer is waiting
				c.clk.Advance(100 * time.Millisecond)
				advanced += 100 * time.Millisecond
			}
		}
		if advanced > time.Hour {
			t.Fatal("exchange never finished")
		}
	}
}

// TestCloseCancelsRun: Close cancels a Run blocked on the rate limit and
// waits for it.
func TestCloseCancelsRun(t *testing.T) {
	cfg := testConfig()
	cfg.BytesPerSecond = 1
	cfg.BurstBytes = 1
	c := newTestCluster(t, cfg, "a", "b")
	c.write("a", "k", "v", false, true)
	idle := c.clk.Pending()
	done := make(chan error, 1)
	go func() {
		_, err := c.node("a").svc.RunOnce(context.Background())
		done <- err
	}()
	waitTimers(t, c.clk, idle+1) // blocked on the rate limit
	if err := c.node("a").svc.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled run: %v", err)
		}
	case <-time.After(wallTimeout):
		t.Fatal("run did not end after Close")
	}
}

// TestMaxNReachesExtraReplicas: with N=2 and a bucket whose n is 3, keys
// of that bucket reach their third replica once MaxN reports the larger
// n; keys of n=2 buckets still stay off it.
func TestMaxNReachesExtraReplicas(t *testing.T) {
	for _, tt := range []struct {
		name   string
		maxN   func() int
		wantOn int // "wide" keys on their third replica
	}{
		{"without MaxN", nil, 0},
		{"with MaxN", func() int { return 3 }, 40},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.N = 2
			cfg.MaxN = tt.maxN
			members := []string{"a", "b", "c"}
			var c *testCluster
			// n=3 for keys containing "wide", n=2 otherwise, as the
			// node derives it from the key's bucket.
			pref := func(k []byte) []string {
				a := c.node("a")
				prefs, _ := c.ring.PartitionPreference(a.svc.shape.Partition(a.st.hash(k)), 3)
				return prefs
			}
			cfg.Replicates = func(k []byte, node string) bool {
				n := 2
				if bytes.Contains(k, []byte("wide")) {
					n = 3
				}
				return slices.Contains(pref(k)[:n], node)
			}
			c = newTestCluster(t, cfg, members...)
			for i := range 40 {
				for _, kind := range []string{"wide", "narrow"} {
					key := fmt.Sprintf("%s%02d", kind, i)
					c.write(pref(testKey(key))[0], key, "v", false, true) // on its first replica
				}
			}
			for _, id := range members {
				if _, err := c.node(id).svc.RunOnce(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			on, stray := 0, 0
			for i := range 40 {
				for _, kind := range []string{"wide", "narrow"} {
					k := testKey(fmt.Sprintf("%s%02d", kind, i))
					for _, id := range members {
						held := !c.node(id).st.get(k).IsEmpty()
						should := cfg.Replicates(k, id)
						switch {
						case held && !should:
							stray++
						case !held && should && kind == "narrow":
							t.Fatalf("%s missing on its replica %s", k, id)
						case held && should && kind == "wide":
							on++
						}
					}
				}
			}
			if stray != 0 {
				t.Fatalf("%d keys on nodes that do not replicate them", stray)
			}
			// Each wide key has 3 replicas; the first two always converge.
			if got := on - 2*40; got != tt.wantOn {
				t.Fatalf("wide keys on their third replica: %d, want %d", got, tt.wantOn)
			}
		})
	}
}

// A record the store refuses to merge as too large (store.ErrTooLarge) is
// skipped and counted: the exchange succeeds and moves the partition's
// other keys, the refused leaf is not fetched again while it is unchanged
// (no loop), and the key moves once a new write changes it.
func TestExchangeSkipsMergeTooLarge(t *testing.T) {
	c := newTestCluster(t, testConfig(), "a", "b")
	for i := range 30 {
		c.write("a", fmt.Sprintf("k%d", i), "v", false, true)
	}
	big := testKey("k7")
	for _, id := range []string{"a", "b"} {
		st := c.node(id).st
		st.mu.Lock()
		st.tooLarge = map[string]bool{string(big): true}
		st.mu.Unlock()
	}
	if rep := c.exchange("a", "b"); rep.KeysPushed != 29 {
		t.Fatalf("a→b pushed %d, want 29: %+v", rep.KeysPushed, rep)
	}
	c.write("b", "k7", "concurrent", false, false)
	if rep := c.exchange("a", "b"); rep.KeysPulled != 0 || rep.KeysPushed != 0 {
		t.Fatalf("second a→b: %+v", rep)
	}
	if m := c.node("b").svc.Metrics(); m.MergesTooLarge != 2 {
		t.Fatalf("b's MergesTooLarge = %d, want 2", m.MergesTooLarge)
	}
	if m := c.node("a").svc.Metrics(); m.MergesTooLarge != 1 || m.ExchangeErrors != 0 {
		t.Fatalf("a: %+v", m)
	}
	for _, id := range []string{"a", "b"} {
		st := c.node(id).st
		st.mu.Lock()
		st.tooLarge = nil
		st.mu.Unlock()
	}
	// The refused leaf is settled: it is not fetched again every round
	// while nothing changes. A new write to the key changes its hash.
	if rep := c.exchange("a", "b"); rep.KeysDiffering != 0 {
		t.Fatalf("unchanged refused leaf exchanged again: %+v", rep)
	}
	c.write("a", "k7", "resolved", false, true)
	if rep := c.exchange("a", "b"); rep.KeysPushed != 1 || rep.KeysPulled != 1 {
		t.Fatalf("after a new write: %+v", rep)
	}
	if a, b := c.node("a").st.get(big), c.node("b").st.get(big); !a.Equal(b) || len(a.Siblings) != 2 {
		t.Fatalf("k7 on a %v, on b %v", a.Dots(), b.Dots())
	}
}
