package gossip

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// Cluster tests run real memberlist instances over UDP/TCP on 127.0.0.1
// with Config.Fast intervals. memberlist keeps wall-clock time, so these
// tests poll with a deadline instead of driving a fake clock.

const waitLimit = 15 * time.Second

func testLogger() zerolog.Logger {
	if os.Getenv("GOSSIP_TEST_LOG") != "" {
		return zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).With().Timestamp().Logger()
	}
	return zerolog.Nop()
}

func nodeConfig(id, cluster string) Config {
	cfg := DefaultConfig().Fast()
	cfg.BindAddr = "127.0.0.1:0"
	cfg.Meta = Meta{
		ID:       id,
		Cluster:  cluster,
		HTTPAddr: "127.0.0.1:8" + fmt.Sprint(len(id)) + "01/" + id,
		RPCAddr:  "127.0.0.1:9" + fmt.Sprint(len(id)) + "01/" + id,
		State:    StateUp,
	}
	return cfg
}

func startNode(t *testing.T, cfg Config) *Gossip {
	t.Helper()
	g, err := New(cfg, testLogger())
	if err != nil {
		t.Fatalf("New(%s): %v", cfg.Meta.ID, err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

func join(t *testing.T, g *Gossip, seeds ...*Gossip) {
	t.Helper()
	addrs := make([]string, len(seeds))
	for i, s := range seeds {
		addrs[i] = s.Addr()
	}
	n, err := g.Join(addrs)
	if err != nil || n != len(seeds) {
		t.Fatalf("Join(%v) = %d, %v; want %d, nil", addrs, n, err, len(seeds))
	}
}

// waitFor polls cond until it holds or waitLimit passes, and returns how
// long it took.
func waitFor(t *testing.T, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < waitLimit {
		if err = cond(); err == nil {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s: %v", waitLimit, what, err)
	return 0
}

func self(t *testing.T, g *Gossip) Meta {
	t.Helper()
	m, ok := g.Member(g.cfg.Meta.ID)
	if !ok {
		t.Fatal("node does not know itself")
	}
	return m.Meta
}

// sees reports nil when g lists exactly want (by meta) with the given
// statuses.
func sees(g *Gossip, want []Meta, status map[string]Status) error {
	got := g.Members()
	if len(got) != len(want) {
		return fmt.Errorf("%s sees %d members, want %d: %+v", g.cfg.Meta.ID, len(got), len(want), got)
	}
	for i, m := range got {
		if m.Meta != want[i] {
			return fmt.Errorf("%s: member %d = %+v, want %+v", g.cfg.Meta.ID, i, m.Meta, want[i])
		}
		if s, ok := status[m.Meta.ID]; ok && m.Status != s {
			return fmt.Errorf("%s sees %s %v, want %v", g.cfg.Meta.ID, m.Meta.ID, m.Status, s)
		}
	}
	return nil
}

// joinThree joins b and c through a and waits until all three see the
// three of them alive. It returns their metas and the time that took.
func joinThree(t *testing.T, a, b, c *Gossip) ([]Meta, time.Duration) {
	t.Helper()
	join(t, b, a)
	join(t, c, a)
	want := metas(t, a, b, c)
	took := waitFor(t, "3 alive members everywhere", func() error {
		for _, g := range []*Gossip{a, b, c} {
			if err := sees(g, want, allAlive("a", "b", "c")); err != nil {
				return err
			}
		}
		return nil
	})
	return want, took
}

func metas(t *testing.T, nodes ...*Gossip) []Meta {
	out := make([]Meta, len(nodes))
	for i, g := range nodes {
		out[i] = self(t, g)
	}
	sortMetas(out)
	return out
}

func allAlive(ids ...string) map[string]Status {
	m := make(map[string]Status)
	for _, id := range ids {
		m[id] = StatusAlive
	}
	return m
}

func TestThreeNodesJoinThroughSeed(t *testing.T) {
	var changes atomic.Int64
	var nodes []*Gossip
	for _, id := range []string{"a", "b", "c"} {
		var me atomic.Pointer[Gossip]
		cfg := nodeConfig(id, "test")
		cfg.OnChange = func() {
			changes.Add(1)
			if g := me.Load(); g != nil {
				_ = g.Members() // would deadlock if called under g's lock
			}
		}
		g := startNode(t, cfg)
		me.Store(g)
		nodes = append(nodes, g)
	}
	_, took := joinThree(t, nodes[0], nodes[1], nodes[2])
	t.Logf("converged in %v", took)
	for _, g := range nodes {
		if got := self(t, g); got.Joined == 0 || got.HTTPAddr != g.cfg.Meta.HTTPAddr || got.RPCAddr != g.cfg.Meta.RPCAddr {
			t.Errorf("self meta %+v does not reflect config %+v", got, g.cfg.Meta)
		}
		m := g.Metrics()
		if m.Members != 3 || m.Alive != 3 || m.Joins < 3 {
			t.Errorf("%s metrics %+v, want 3 members, 3 alive, >= 3 joins", g.cfg.Meta.ID, m)
		}
	}
	waitFor(t, "OnChange calls", func() error {
		if changes.Load() == 0 {
			return errors.New("OnChange never called")
		}
		return nil
	})
	var notes uint64
	for _, g := range nodes {
		notes += g.Metrics().Notifications
	}
	if int64(notes) != changes.Load() {
		t.Errorf("Notifications = %d, OnChange calls = %d", notes, changes.Load())
	}
}

func TestDownNodeStaysMemberAndRestartRejoins(t *testing.T) {
	a := startNode(t, nodeConfig("a", "test"))
	b := startNode(t, nodeConfig("b", "test"))
	cCfg := nodeConfig("c", "test")
	c := startNode(t, cCfg)
	want, _ := joinThree(t, a, b, c)
	persisted := c.State()
	cJoined := self(t, c).Joined
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil { // idempotent
		t.Fatalf("second Close: %v", err)
	}
	if _, err := c.Join([]string{a.Addr()}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Join after Close = %v, want ErrClosed", err)
	}

	// Status changes, membership does not.
	took := waitFor(t, "c dead but still a member", func() error {
		for _, g := range []*Gossip{a, b} {
			if err := sees(g, want, map[string]Status{"a": StatusAlive, "b": StatusAlive, "c": StatusDead}); err != nil {
				return err
			}
		}
		return nil
	})
	t.Logf("failure detected in %v", took)

	// Restart c under the same ID on a new port, from its persisted state.
	cCfg.Initial = persisted
	cCfg.Meta.Joined = 0 // taken from the persisted state
	c2 := startNode(t, cCfg)
	if got := self(t, c2).Joined; got != cJoined {
		t.Fatalf("restarted Joined = %d, want persisted %d", got, cJoined)
	}
	for i := range want { // c's gossip listens on a new port now
		if want[i].ID == "c" {
			want[i].GossipAddr = c2.Addr()
		}
	}
	if err := sees(c2, want, map[string]Status{"a": StatusUnknown, "b": StatusUnknown, "c": StatusAlive}); err != nil {
		t.Fatalf("restored view before joining: %v", err)
	}
	join(t, c2, b)
	waitFor(t, "c alive again everywhere", func() error {
		for _, g := range []*Gossip{a, b, c2} {
			if err := sees(g, want, allAlive("a", "b", "c")); err != nil {
				return err
			}
		}
		return nil
	})
}

func TestBucketPropsReachAllNodes(t *testing.T) {
	nodes := []*Gossip{
		startNode(t, nodeConfig("a", "test")),
		startNode(t, nodeConfig("b", "test")),
		startNode(t, nodeConfig("c", "test")),
	}
	join(t, nodes[1], nodes[0])
	join(t, nodes[2], nodes[0])
	waitFor(t, "3 members", func() error {
		for _, g := range nodes {
			if n := len(g.Members()); n != 3 {
				return fmt.Errorf("%s sees %d", g.cfg.Meta.ID, n)
			}
		}
		return nil
	})

	set, err := nodes[1].SetBucket("users", BucketProps{N: 5, R: 3, W: 2, Conflict: ConflictLWW})
	if err != nil {
		t.Fatal(err)
	}
	if set.UpdatedBy != "b" || set.Updated == 0 {
		t.Fatalf("SetBucket did not stamp: %+v", set)
	}
	took := waitFor(t, "bucket on every node", func() error {
		for _, g := range nodes {
			if got, ok := g.Bucket("users"); !ok || got != set {
				return fmt.Errorf("%s has %+v, %v", g.cfg.Meta.ID, got, ok)
			}
		}
		return nil
	})
	t.Logf("bucket props reached all nodes in %v", took)

	// Concurrent conflicting updates converge on the later stamp.
	pa, err := nodes[0].SetBucket("logs", BucketProps{N: 3, R: 1, W: 1, Conflict: ConflictSiblings})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := nodes[2].SetBucket("logs", BucketProps{N: 2, R: 2, W: 2, Conflict: ConflictLWW})
	if err != nil {
		t.Fatal(err)
	}
	winner := pa
	if pc.supersedes(pa) {
		winner = pc
	}
	waitFor(t, "conflicting updates to converge", func() error {
		for _, g := range nodes {
			if got, _ := g.Bucket("logs"); got != winner {
				return fmt.Errorf("%s has %+v, want %+v", g.cfg.Meta.ID, got, winner)
			}
		}
		return nil
	})

	if _, err := nodes[0].SetBucket("bad", BucketProps{N: 2, R: 3, W: 1, Conflict: ConflictLWW}); !errors.Is(err, ErrBadR) {
		t.Fatalf("SetBucket(R > N) = %v, want ErrBadR", err)
	}
	if _, err := nodes[0].SetBucket("", DefaultBucketProps()); !errors.Is(err, ErrBucketName) {
		t.Fatalf("SetBucket(\"\") = %v, want ErrBucketName", err)
	}
	if _, ok := nodes[0].Bucket("bad"); ok {
		t.Fatal("invalid props were stored")
	}
}

func TestLateJoinerLearnsDownMembersAndBuckets(t *testing.T) {
	a := startNode(t, nodeConfig("a", "test"))
	b := startNode(t, nodeConfig("b", "test"))
	c := startNode(t, nodeConfig("c", "test"))
	want3, _ := joinThree(t, a, b, c)
	props, err := a.SetBucket("photos", DefaultBucketProps())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	waitFor(t, "c dead", func() error {
		for _, g := range []*Gossip{a, b} {
			if m, _ := g.Member("c"); m.Status != StatusDead {
				return fmt.Errorf("%s sees c %v", g.cfg.Meta.ID, m.Status)
			}
		}
		return nil
	})

	d := startNode(t, nodeConfig("d", "test"))
	join(t, d, b)
	want4 := append(slices.Clone(want3), self(t, d))
	sortMetas(want4)
	waitFor(t, "d to learn c and the bucket", func() error {
		if err := sees(d, want4, map[string]Status{"a": StatusAlive, "b": StatusAlive, "c": StatusUnknown, "d": StatusAlive}); err != nil {
			return err
		}
		if got, ok := d.Bucket("photos"); !ok || got != props {
			return fmt.Errorf("d has bucket %+v, %v", got, ok)
		}
		return nil
	})
	if m := d.Metrics(); m.PushPullMerges == 0 {
		t.Errorf("d merged no push-pull state: %+v", m)
	}
}

func TestClustersWithDifferentNamesStayApart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		label bool
	}{
		{"label and delegates", true},
		{"delegates only", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var nodes []*Gossip
			for _, n := range []struct{ id, cluster string }{
				{"r1", "red"}, {"r2", "red"}, {"b1", "blue"}, {"b2", "blue"},
			} {
				cfg := nodeConfig(n.id, n.cluster)
				cfg.disableLabel = !tc.label
				nodes = append(nodes, startNode(t, cfg))
			}
			r1, r2, b1, b2 := nodes[0], nodes[1], nodes[2], nodes[3]
			join(t, r2, r1)
			join(t, b2, b1)
			if _, err := b1.Join([]string{r1.Addr()}); !errors.Is(err, ErrJoin) {
				t.Fatalf("cross-cluster Join = %v, want ErrJoin", err)
			}
			if _, err := r2.Join([]string{b2.Addr()}); !errors.Is(err, ErrJoin) {
				t.Fatalf("cross-cluster Join = %v, want ErrJoin", err)
			}
			if !tc.label {
				var rejected uint64
				for _, g := range nodes {
					rejected += g.Metrics().Rejected
				}
				if rejected == 0 {
					t.Error("no delegate rejected the foreign cluster")
				}
			}
			// Give gossip and several push-pull rounds a chance to leak.
			time.Sleep(4 * nodes[0].cfg.PushPullInterval)
			for _, g := range nodes {
				ids := []string{}
				for _, m := range g.Members() {
					ids = append(ids, m.Meta.ID)
					if m.Meta.Cluster != g.cfg.Meta.Cluster {
						t.Errorf("%s lists %s of cluster %s", g.cfg.Meta.ID, m.Meta.ID, m.Meta.Cluster)
					}
				}
				if len(ids) != 2 {
					t.Errorf("%s sees %v, want its own 2 nodes", g.cfg.Meta.ID, ids)
				}
				if n := g.ml.NumMembers(); n != 2 {
					t.Errorf("%s: memberlist has %d live nodes, want 2", g.cfg.Meta.ID, n)
				}
			}
		})
	}
}

func TestRemoveTombstonesMember(t *testing.T) {
	a := startNode(t, nodeConfig("a", "test"))
	b := startNode(t, nodeConfig("b", "test"))
	cCfg := nodeConfig("c", "test")
	c := startNode(t, cCfg)
	join(t, b, a)
	join(t, c, a)
	waitFor(t, "3 members", func() error {
		for _, g := range []*Gossip{a, b} {
			if m, _ := g.Member("c"); m.Status != StatusAlive {
				return fmt.Errorf("%s sees c %v", g.cfg.Meta.ID, m.Status)
			}
		}
		return nil
	})
	stale := c.State()
	_ = c.Close()

	if err := a.Remove("a"); !errors.Is(err, ErrRemoveSelf) {
		t.Fatalf("Remove(self) = %v", err)
	}
	if err := a.Remove("zz"); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("Remove(unknown) = %v", err)
	}
	if err := a.Remove("c"); err != nil {
		t.Fatal(err)
	}
	if err := a.Remove("c"); err != nil {
		t.Fatalf("second Remove = %v, want nil", err)
	}
	waitFor(t, "tombstone on b", func() error {
		m, ok := b.Member("c")
		if !ok || !m.Meta.Removed() {
			return fmt.Errorf("b has c = %+v, %v", m, ok)
		}
		return nil
	})
	for _, g := range []*Gossip{a, b} {
		for _, m := range g.Members() {
			if m.Meta.ID == "c" {
				t.Errorf("%s still lists c", g.cfg.Meta.ID)
			}
		}
		if got := g.Metrics(); got.Members != 2 || got.Removed != 1 {
			t.Errorf("%s metrics %+v, want 2 members, 1 removed", g.cfg.Meta.ID, got)
		}
	}
	persisted := b.State()
	if i := slices.IndexFunc(persisted.Members, func(m Meta) bool { return m.ID == "c" }); i < 0 || !persisted.Members[i].Removed() {
		t.Fatalf("persisted state lacks the tombstone: %+v", persisted.Members)
	}

	// c restarting from the tombstoned state refuses to start.
	cCfg.Initial = persisted
	if _, err := New(cCfg, testLogger()); !errors.Is(err, ErrRemoved) {
		t.Fatalf("New with own tombstone = %v, want ErrRemoved", err)
	}
	// c restarting from its stale state learns it was removed, and is not
	// resurrected on a or b.
	cCfg.Initial = stale
	c2 := startNode(t, cCfg)
	_, _ = c2.Join([]string{a.Addr()})
	waitFor(t, "c to learn its tombstone", func() error {
		if m, _ := c2.Member("c"); !m.Meta.Removed() {
			return fmt.Errorf("c sees itself as %+v", m.Meta)
		}
		return nil
	})
	time.Sleep(2 * a.cfg.PushPullInterval)
	for _, g := range []*Gossip{a, b} {
		if m, _ := g.Member("c"); !m.Meta.Removed() {
			t.Errorf("%s resurrected c: %+v", g.cfg.Meta.ID, m)
		}
	}
}

func TestUpdateMetaPropagates(t *testing.T) {
	a := startNode(t, nodeConfig("a", "test"))
	b := startNode(t, nodeConfig("b", "test"))
	join(t, b, a)
	m := self(t, a)
	m.HTTPAddr = "10.0.0.1:8080"
	m.Joined = 0 // keeps the current one
	if err := a.UpdateMeta(m); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to see a's new address", func() error {
		got, _ := b.Member("a")
		if got.Meta.HTTPAddr != "10.0.0.1:8080" || got.Meta.Joined != self(t, a).Joined {
			return fmt.Errorf("b sees %+v", got.Meta)
		}
		return nil
	})
	for _, bad := range []Meta{
		{ID: "other", Cluster: "test", State: StateUp},
		{ID: "a", Cluster: "other", State: StateUp},
		{ID: "a", Cluster: "test", State: StateRemoved},
	} {
		if err := a.UpdateMeta(bad); !errors.Is(err, ErrMetaImmutable) {
			t.Errorf("UpdateMeta(%+v) = %v, want ErrMetaImmutable", bad, err)
		}
	}
	if err := a.UpdateMeta(Meta{ID: "a", Cluster: "test"}); !errors.Is(err, ErrBadMeta) {
		t.Errorf("UpdateMeta without state = %v, want ErrBadMeta", err)
	}
}

func TestJoinUnreachableSeedFails(t *testing.T) {
	cfg := nodeConfig("a", "test")
	cfg.JoinAttempts = 2
	cfg.TCPTimeout = 200 * time.Millisecond
	a := startNode(t, cfg)
	if n, err := a.Join(nil); n != 0 || err != nil {
		t.Fatalf("Join(nil) = %d, %v", n, err)
	}
	// A port nobody listens on: bind one, note it, close it.
	dead := startNode(t, nodeConfig("dead", "test"))
	addr := dead.Addr()
	_ = dead.Close()
	if n, err := a.Join([]string{addr}); n != 0 || !errors.Is(err, ErrJoin) {
		t.Fatalf("Join(dead seed) = %d, %v; want 0, ErrJoin", n, err)
	}
}

// A host name as the bind address (as in a container: --gossip n1:7946)
// is resolved: the node binds and advertises an IP address others can
// reach, not "::", and another node joins it through the name.
func TestBindAddrHostName(t *testing.T) {
	cfg := nodeConfig("named", "c")
	cfg.BindAddr = "localhost:0"
	a := startNode(t, cfg)
	host, _, err := net.SplitHostPort(a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() || !ip.IsLoopback() {
		t.Fatalf("advertises %s, want a loopback IP address", a.Addr())
	}
	b := startNode(t, nodeConfig("other", "c"))
	_, port, _ := net.SplitHostPort(a.Addr())
	if n, err := b.Join([]string{net.JoinHostPort("localhost", port)}); err != nil || n != 1 {
		t.Fatalf("join through the name: %d, %v", n, err)
	}
	if _, err := resolveHost("no-such-host.invalid"); err == nil {
		t.Fatal("an unknown host name resolved")
	}
}
