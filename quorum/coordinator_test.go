package quorum

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/version"
)

// fixedPlace is a three-node ring where every key's preference list is
// a, b, c.
type fixedPlace struct{}

func (fixedPlace) PreferenceList([]byte, int) ([]string, error) { return []string{"a", "b", "c"}, nil }
func (fixedPlace) Partition([]byte) int                         { return 0 }
func (fixedPlace) Size() int                                    { return 3 }

// replicaNet delivers requests to in-memory replicas, counts the reads
// each node served, and can make a node fail or hang.
type replicaNet struct {
	mu       sync.Mutex
	replicas map[string]*Replica
	reads    map[string]int
	fail     map[string]bool
	hang     map[string]chan struct{} // closed to release the hung requests
	// hangMerges hangs only a node's merges (repairs and replication).
	hangMerges map[string]chan struct{}
	// onMerge, if set, is called when a merge reaches a node.
	onMerge func(to string)
}

func newReplicaNet() *replicaNet {
	n := &replicaNet{replicas: map[string]*Replica{}, reads: map[string]int{}, fail: map[string]bool{}, hang: map[string]chan struct{}{}, hangMerges: map[string]chan struct{}{}}
	for _, id := range []string{"a", "b", "c"} {
		n.replicas[id] = NewReplica(ReplicaConfig{Self: id, MaxSiblings: 10}, mapStore{}, mapHints{}, clock.NewFake())
	}
	return n
}

func (n *replicaNet) Send(ctx context.Context, to string, req *Request) (*Response, error) {
	n.mu.Lock()
	if req.Kind == KindRead {
		n.reads[to]++
	}
	fail, hang := n.fail[to], n.hang[to]
	if req.Kind == KindMerge && n.hangMerges[to] != nil {
		hang = n.hangMerges[to]
	}
	onMerge := n.onMerge
	n.mu.Unlock()
	if req.Kind == KindMerge && onMerge != nil {
		onMerge(to)
	}
	if fail {
		return nil, errors.New("refused")
	}
	if hang != nil {
		select {
		case <-hang:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	n.mu.Lock() // mapStore is not safe for concurrent use
	defer n.mu.Unlock()
	return n.replicas[to].Handle(ctx, req)
}

func (n *replicaNet) readCounts() map[string]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]int{}
	for k, v := range n.reads {
		out[k] = v
	}
	return out
}

func newTestCoordinator(t *testing.T, net *replicaNet, clk clock.Clock, fanout Fanout) *Coordinator {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Self = "a"
	cfg.ReadFanout = fanout
	c, err := New(cfg, func() Placement { return fixedPlace{} }, func(string) bool { return true }, net, clk, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

var params323 = Params{N: 3, R: 2, W: 3, Sloppy: true}

func putAll(t *testing.T, c *Coordinator, key, value string) {
	t.Helper()
	if _, err := c.Put(context.Background(), PutRequest{Key: []byte(key), Params: params323, Value: []byte(value)}); err != nil {
		t.Fatal(err)
	}
}

func TestCoordinatorReadFanout(t *testing.T) {
	tests := []struct {
		fanout Fanout
		want   map[string]int
	}{
		{FanoutQuorum, map[string]int{"a": 1, "b": 1}},
		{FanoutAll, map[string]int{"a": 1, "b": 1, "c": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.fanout.String(), func(t *testing.T) {
			net := newReplicaNet()
			c := newTestCoordinator(t, net, clock.Real(), tt.fanout)
			putAll(t, c, "k", "v")
			got, err := c.Get(context.Background(), GetRequest{Key: []byte("k"), Params: params323})
			if err != nil || len(got.Set.Siblings) != 1 || string(got.Set.Siblings[0].Value) != "v" {
				t.Fatalf("Get = %+v, %v", got.Set, err)
			}
			if err := c.Close(); err != nil { // waits for late replies
				t.Fatal(err)
			}
			reads := net.readCounts()
			if len(reads) != len(tt.want) {
				t.Fatalf("reads went to %v, want %v", reads, tt.want)
			}
			for node, n := range tt.want {
				if reads[node] != n {
					t.Fatalf("reads went to %v, want %v", reads, tt.want)
				}
			}
		})
	}
}

// A failed replica is replaced by the idle one at once, without waiting
// for the speculative delay.
func TestCoordinatorReadAsksNextOnFailure(t *testing.T) {
	net := newReplicaNet()
	clk := clock.NewFake() // never advanced: no speculation can happen
	c := newTestCoordinator(t, net, clk, FanoutQuorum)
	putAll(t, c, "k", "v")
	net.mu.Lock()
	net.fail["b"] = true
	net.mu.Unlock()
	got, err := c.Get(context.Background(), GetRequest{Key: []byte("k"), Params: params323})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "c"}; !sameNodes(got.Receipt.Replicas, want) {
		t.Fatalf("answered by %v, want %v", got.Receipt.Replicas, want)
	}
	if n := c.Metrics().SpeculativeReads; n != 0 {
		t.Fatalf("SpeculativeReads = %d, want 0", n)
	}
}

// timerWatch is a fake clock that reports every timer made for d, so a
// test can step time once the code under test is waiting on it.
type timerWatch struct {
	*clock.Fake
	d       time.Duration
	created chan struct{}
}

func (w timerWatch) NewTimer(d time.Duration) clock.Timer {
	t := w.Fake.NewTimer(d)
	if d == w.d {
		w.created <- struct{}{}
	}
	return t
}

// A replica that does not answer makes the read ask the idle one once the
// speculative delay passes on the coordinator's clock, and not before.
func TestCoordinatorReadSpeculates(t *testing.T) {
	net := newReplicaNet()
	delay := DefaultConfig().SpeculateAfter
	clk := timerWatch{Fake: clock.NewFake(), d: delay, created: make(chan struct{}, 4)}
	c := newTestCoordinator(t, net, clk, FanoutQuorum)
	putAll(t, c, "k", "v")
	release := make(chan struct{})
	net.mu.Lock()
	net.hang["b"] = release
	net.mu.Unlock()
	defer close(release)

	type result struct {
		r   GetResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := c.Get(context.Background(), GetRequest{Key: []byte("k"), Params: params323})
		done <- result{r, err}
	}()
	// A bound on a hung test, not a wait for the feature.
	guard := time.After(5 * time.Second)
	select {
	case <-clk.created:
	case <-guard:
		t.Fatal("the read made no speculation timer")
	}
	clk.Advance(delay - time.Millisecond)
	if n := net.readCounts()["c"]; n != 0 {
		t.Fatalf("c was asked %d times before the %v speculative delay", n, delay)
	}
	select {
	case r := <-done:
		t.Fatalf("the read answered without its second replica: %+v", r)
	default:
	}
	clk.Advance(time.Millisecond)
	var res result
	select {
	case res = <-done:
	case <-guard:
		t.Fatal("the read never speculated")
	}
	if res.err != nil {
		t.Fatal(res.err)
	}
	if want := []string{"a", "c"}; !sameNodes(res.r.Receipt.Replicas, want) {
		t.Fatalf("answered by %v, want %v", res.r.Receipt.Replicas, want)
	}
	if n := c.Metrics().SpeculativeReads; n != 1 {
		t.Fatalf("SpeculativeReads = %d, want 1", n)
	}
}

func sameNodes(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	seen := map[string]bool{}
	for _, g := range got {
		seen[g] = true
	}
	for _, w := range want {
		if !seen[w] {
			return false
		}
	}
	return true
}

func TestParseFanout(t *testing.T) {
	for _, f := range []Fanout{FanoutQuorum, FanoutAll} {
		got, err := ParseFanout(f.String())
		if err != nil || got != f {
			t.Fatalf("ParseFanout(%q) = %v, %v", f, got, err)
		}
	}
	if _, err := ParseFanout("some"); !errors.Is(err, ErrBadParam) {
		t.Fatalf("ParseFanout(some) = %v, want ErrBadParam", err)
	}
}

// Close cancels the background work of finished requests (here a write's
// last ack, from a replica that hangs) instead of waiting for their
// deadlines.
func TestCoordinatorCloseStopsBackgroundWork(t *testing.T) {
	net := newReplicaNet()
	release := make(chan struct{})
	defer close(release)
	net.hang["c"] = release
	c := newTestCoordinator(t, net, clock.Real(), FanoutAll)
	p := Params{N: 3, R: 2, W: 2, Sloppy: true, Timeout: 30 * time.Second}
	if _, err := c.Put(context.Background(), PutRequest{Key: []byte("k"), Params: p, Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close still waits after 5 s for a write whose deadline is 30 s away")
	}
}

// A read whose deadline passes while it waits for a blocking repair
// answers with what it read, and counts one timeout, also when a late
// stale reply is waiting for its own repair then.
func TestCoordinatorReadDeadlineDuringRepair(t *testing.T) {
	net := newReplicaNet()
	st := mapStore{"k": written("a", "v1")}
	net.replicas["a"] = NewReplica(ReplicaConfig{Self: "a", MaxSiblings: 10}, st, mapHints{}, clock.NewFake())
	release, lateC := make(chan struct{}), make(chan struct{})
	defer close(release)
	net.hang["c"] = lateC         // c answers, stale, once the read has answered
	net.hangMerges["b"] = release // b answers stale, and its repair hangs
	var once sync.Once
	net.onMerge = func(to string) {
		if to == "b" { // the answer's repair of b: the read has answered
			once.Do(func() { close(lateC) })
		}
	}
	c := newTestCoordinator(t, net, clock.Real(), FanoutAll)
	p := Params{N: 3, R: 2, W: 2, Sloppy: true, Timeout: 300 * time.Millisecond}
	got, err := c.Get(context.Background(), GetRequest{Key: []byte("k"), Params: p})
	if err != nil || len(got.Set.Siblings) != 1 || string(got.Set.Siblings[0].Value) != "v1" {
		t.Fatalf("Get = %v, %v; want v1", got.Set.Dots(), err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if n := c.Metrics().Timeouts; n != 1 {
		t.Fatalf("one read's deadline counted %d timeouts", n)
	}
}

// Operations that race with Close either finish or fail with ErrClosed,
// and Close waits for their background work (run with -race: an Add on
// the WaitGroup racing with Close's Wait is reported).
func TestCoordinatorCloseDuringOperations(t *testing.T) {
	net := newReplicaNet()
	c := newTestCoordinator(t, net, clock.Real(), FanoutAll)
	p := Params{N: 3, R: 2, W: 2, Sloppy: true, Timeout: 5 * time.Second}
	var wg sync.WaitGroup
	var started sync.WaitGroup // every worker finished one write
	started.Add(8)
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := []byte{byte('a' + i)}
			var seen version.Context // each write supersedes the last
			first := true
			for {
				res, err := c.Put(context.Background(), PutRequest{Key: key, Params: p, Context: seen, Value: []byte("v")})
				seen = res.Context
				if first {
					first = false
					started.Done()
				}
				if err == nil {
					_, err = c.Get(context.Background(), GetRequest{Key: key, Params: p})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	started.Wait() // operations are running: Close races with them
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrClosed) && !errors.Is(err, ErrNotEnoughReplicas) {
			t.Fatalf("an operation racing with Close failed with %v", err)
		}
	}
}

// applyThenFail fails every apply at a with err: after applying it, as a
// connection reset after the request went out does, unless err says it
// was not applied.
type applyThenFail struct {
	*replicaNet
	err error
}

func (n applyThenFail) Send(ctx context.Context, to string, req *Request) (*Response, error) {
	if to == "a" && req.Kind == KindApply {
		if !errors.Is(n.err, ErrNotApplied) {
			_, _ = n.replicaNet.Send(ctx, to, req)
		}
		return nil, n.err
	}
	return n.replicaNet.Send(ctx, to, req)
}

// An apply whose outcome is unknown is not issued again elsewhere: a was
// perhaps applied, and a second issuer would give this one write a second
// version, a sibling of the first. One known not to have been applied is.
func TestCoordinatorReissuesOnlyWhatWasNotApplied(t *testing.T) {
	for _, tt := range []struct {
		name    string
		err     error
		wantErr bool
	}{
		{"outcome unknown", errors.New("connection reset after the request went out"), true},
		{"not applied", fmt.Errorf("%w: refused", ErrNotApplied), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			net := newReplicaNet()
			cfg := DefaultConfig()
			cfg.Self = "x" // not a replica: a remote primary issues
			c, err := New(cfg, func() Placement { return fixedPlace{} }, func(string) bool { return true },
				applyThenFail{net, tt.err}, clock.Real(), zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			p := Params{N: 3, R: 2, W: 2, Sloppy: true, Timeout: 5 * time.Second}
			_, err = c.Put(context.Background(), PutRequest{Key: []byte("k"), Params: p, Value: []byte("v")})
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("Put = %v, want an error: %v", err, tt.wantErr)
			}
			issuers := map[string]bool{}
			for _, id := range []string{"a", "b", "c"} {
				set, _ := net.replicas[id].store.Get([]byte("k"))
				for _, d := range set.Dots() {
					issuers[d.Node] = true
				}
			}
			if len(issuers) > 1 {
				t.Fatalf("one write got versions from %v", issuers)
			}
		})
	}
}

// kindCounter wraps a Sender and counts the requests of each kind.
type kindCounter struct {
	Sender
	mu    sync.Mutex
	kinds map[Kind]int
}

func (k *kindCounter) Send(ctx context.Context, to string, req *Request) (*Response, error) {
	k.mu.Lock()
	k.kinds[req.Kind]++
	k.mu.Unlock()
	return k.Sender.Send(ctx, to, req)
}

// No coordinator marks a tombstone reapable, whatever acked the delete: a
// delete with n below the bucket's n reached only some replicas (the
// others keep the live value), and even one acked by every replica says
// nothing of hints and strays elsewhere. Reaping is decided by
// anti-entropy's sweep, which asks every node. The replica side refuses a
// mark from a coordinator too.
func TestCoordinatorNeverMarksTombstones(t *testing.T) {
	for _, n := range []int{1, 3} {
		net := newReplicaNet()
		kc := &kindCounter{Sender: net, kinds: map[Kind]int{}}
		cfg := DefaultConfig()
		cfg.Self = "a"
		c, err := New(cfg, func() Placement { return fixedPlace{} }, func(string) bool { return true }, kc, clock.Real(), zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		p := Params{N: n, R: 1, W: n, Sloppy: true}
		if _, err := c.Put(context.Background(), PutRequest{Key: []byte("k"), Params: p, Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
		got, err := c.Get(context.Background(), GetRequest{Key: []byte("k"), Params: p})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Put(context.Background(), PutRequest{Key: []byte("k"), Params: p, Context: got.Set.Context, Deleted: true}); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil { // waits for the late acks
			t.Fatal(err)
		}
		if m := kc.kinds[KindMarkReapable]; m != 0 {
			t.Fatalf("n=%d: the coordinator sent %d reapable marks", n, m)
		}
	}
	r := NewReplica(ReplicaConfig{Self: "a", MaxSiblings: 10}, mapStore{}, mapHints{}, clock.NewFake())
	if _, err := r.Handle(context.Background(), &Request{Kind: KindMarkReapable, Key: []byte("k")}); err == nil {
		t.Fatal("a replica took a reapable mark from a coordinator")
	}
}
