package gossip

import (
	"errors"
	"testing"

	"github.com/hashicorp/memberlist"
	"github.com/rs/zerolog"
)

// bareGossip is a Gossip without memberlist, for exercising delegates.
func bareGossip(id, cluster string) *Gossip {
	cfg := DefaultConfig()
	cfg.Meta.ID, cfg.Meta.Cluster = id, cluster
	g := &Gossip{
		cfg:     cfg,
		log:     zerolog.Nop(),
		clk:     cfg.Clock,
		tbl:     newTable(id, cluster),
		status:  make(map[string]Status),
		changed: make(chan struct{}, 1),
		spread:  make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	g.queue = &memberlist.TransmitLimitedQueue{NumNodes: func() int { return 1 }, RetransmitMult: 1}
	g.tbl.setMember(versioned{Meta: cfg.Meta, Ver: 1})
	return g
}

func node(t *testing.T, name string, m Meta) *memberlist.Node {
	t.Helper()
	b, err := encodeMeta(versioned{Meta: m, Ver: 1})
	if err != nil {
		t.Fatal(err)
	}
	return &memberlist.Node{Name: name, Meta: b}
}

func TestDelegatesAdmitOnlyThisCluster(t *testing.T) {
	g := bareGossip("a", "red")
	d := delegate{g}
	same := Meta{ID: "b", Cluster: "red", State: StateUp}
	other := Meta{ID: "x", Cluster: "blue", State: StateUp}

	if err := d.NotifyAlive(node(t, "b", same)); err != nil {
		t.Fatalf("same cluster refused: %v", err)
	}
	if err := d.NotifyAlive(node(t, "x", other)); !errors.Is(err, ErrWrongCluster) {
		t.Fatalf("NotifyAlive(other cluster) = %v", err)
	}
	if err := d.NotifyAlive(node(t, "impostor", same)); !errors.Is(err, ErrBadMeta) {
		t.Fatalf("NotifyAlive(name mismatch) = %v", err)
	}
	if err := d.NotifyAlive(&memberlist.Node{Name: "junk", Meta: []byte{1, 2, 3}}); !errors.Is(err, ErrBadMeta) {
		t.Fatalf("NotifyAlive(junk meta) = %v", err)
	}
	if err := d.NotifyMerge([]*memberlist.Node{node(t, "b", same)}); err != nil {
		t.Fatalf("merge with same cluster refused: %v", err)
	}
	if err := d.NotifyMerge([]*memberlist.Node{node(t, "b", same), node(t, "x", other)}); !errors.Is(err, ErrWrongCluster) {
		t.Fatalf("NotifyMerge(mixed) = %v", err)
	}

	// A tombstoned member is refused.
	tomb := versioned{Meta: same, Ver: 5}
	tomb.Meta.State = StateRemoved
	g.tbl.setMember(tomb)
	if err := d.NotifyAlive(node(t, "b", same)); !errors.Is(err, ErrRemoved) {
		t.Fatalf("NotifyAlive(removed) = %v", err)
	}

	// State and broadcasts naming another cluster are ignored.
	foreign := bareGossip("x", "blue")
	if _, err := foreign.SetBucket("b", DefaultBucketProps()); err != nil {
		t.Fatal(err)
	}
	d.MergeRemoteState(delegate{foreign}.LocalState(false), false)
	for _, msg := range foreign.queue.GetBroadcasts(0, 1400) {
		d.NotifyMsg(msg)
	}
	if len(g.Buckets()) != 0 {
		t.Fatalf("foreign buckets merged: %v", g.Buckets())
	}
	if _, ok := g.Member("x"); ok {
		t.Fatal("foreign member merged")
	}
	if m := g.Metrics(); m.Rejected < 6 {
		t.Fatalf("Rejected = %d, want every refusal counted", m.Rejected)
	}
}

func TestDelegateStateAndBroadcastRoundTrip(t *testing.T) {
	a, b := bareGossip("a", "c"), bareGossip("b", "c")
	pa, err := a.SetBucket("users", DefaultBucketProps())
	if err != nil {
		t.Fatal(err)
	}
	a.tbl.setMember(versioned{Meta: Meta{ID: "down", Cluster: "c", State: StateUp, Joined: 3}, Ver: 2})

	// Broadcast path.
	msgs := a.queue.GetBroadcasts(2, 1400)
	if len(msgs) != 1 {
		t.Fatalf("%d broadcasts queued, want 1", len(msgs))
	}
	delegate{b}.NotifyMsg(msgs[0])
	if got, _ := b.Bucket("users"); got != pa {
		t.Fatalf("broadcast gave %+v, want %+v", got, pa)
	}
	// b relays news once, and drops what it already has.
	if n := len(b.queue.GetBroadcasts(2, 1400)); n != 1 {
		t.Fatalf("b relayed %d messages, want 1", n)
	}
	delegate{b}.NotifyMsg(msgs[0])
	if n := len(b.queue.GetBroadcasts(2, 1400)); n != 0 {
		t.Fatalf("b relayed a stale message")
	}

	// Push-pull path carries members that memberlist never reported.
	delegate{b}.MergeRemoteState(delegate{a}.LocalState(true), true)
	m, ok := b.Member("down")
	if !ok || m.Status != StatusUnknown || m.Meta.Joined != 3 {
		t.Fatalf("b has down = %+v, %v", m, ok)
	}
	if got := len(b.Members()); got != 3 {
		t.Fatalf("b lists %d members, want 3 (a, b, down)", got)
	}

	// Garbage is counted, not applied.
	before := b.Metrics().DecodeErrors
	delegate{b}.NotifyMsg([]byte{kindBucket, 0xc1})
	delegate{b}.MergeRemoteState([]byte{kindState}, false)
	delegate{b}.MergeRemoteState(msgs[0], false) // a broadcast is not a state
	if got := b.Metrics().DecodeErrors - before; got != 3 {
		t.Fatalf("DecodeErrors grew by %d, want 3", got)
	}
}

func TestNotifyEventsTrackStatus(t *testing.T) {
	g := bareGossip("a", "c")
	d := delegate{g}
	b := Meta{ID: "b", Cluster: "c", State: StateUp}
	d.NotifyJoin(node(t, "b", b))
	if m, _ := g.Member("b"); m.Status != StatusAlive {
		t.Fatalf("after join: %v", m.Status)
	}
	d.NotifyLeave(&memberlist.Node{Name: "b"})
	if m, ok := g.Member("b"); !ok || m.Status != StatusDead {
		t.Fatalf("after leave: %+v, %v (must stay a member)", m, ok)
	}
	d.NotifyLeave(&memberlist.Node{Name: "never-seen"})
	if _, ok := g.Member("never-seen"); ok {
		t.Fatal("leave of an unknown node created a member")
	}
	if got := g.alive.Load(); got != 0 {
		t.Fatalf("alive count %d, want 0", got)
	}
	if s := StatusDead.String(); s != "dead" {
		t.Fatalf("String = %q", s)
	}
	if b, _ := StatusAlive.MarshalText(); string(b) != "alive" {
		t.Fatalf("MarshalText = %q", b)
	}
}
