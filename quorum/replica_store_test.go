package quorum

import (
	"context"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/version"
)

// A dot stays unique after its key was reaped and forgotten here, even
// with the clock stepped back: another replica that has not reaped yet
// still holds the tombstone, whose context names this node's old dots. A
// new write issued under a reused dot would be covered by that context and
// silently dropped wherever the two meet.
func TestReplicaDotsOutliveAReapAndAClockStep(t *testing.T) {
	fake := clock.NewFake()
	fake.Set(clock.Epoch.Add(24 * time.Hour))
	clk := clock.NewSkewed(fake)
	cfg := store.DefaultConfig()
	cfg.Dir, cfg.FS, cfg.Clock = "/db", vfs.NewMem(), clk
	cfg.ReapMemory = time.Minute
	st, err := store.Open(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := NewReplica(ReplicaConfig{Self: "a", MaxSiblings: 10}, st, mapHints{}, clk)
	ctx := context.Background()
	k := store.EncodeKey([]byte("b"), []byte("k"))
	apply := func(w *WriteRequest) *Response {
		t.Helper()
		resp, err := r.Handle(ctx, &Request{Kind: KindApply, Key: k, Write: w})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	v1 := apply(&WriteRequest{Value: []byte("v1")})
	dead := apply(&WriteRequest{Context: v1.Set.Context, Deleted: true})
	other := dead.Set.Clone() // replica b holds the tombstone and has not reaped

	if err := st.MarkReapable(k, dead.Set, clk.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Reap(clk.Now(), 0); err != nil {
		t.Fatal(err)
	}
	fake.Advance(time.Hour)
	if _, err := st.Reap(clk.Now(), 0); err != nil { // the memory goes too
		t.Fatal(err)
	}
	if got, _ := st.Get(k); !got.IsEmpty() {
		t.Fatalf("key not forgotten: %+v", got)
	}
	clk.Step(-2 * time.Hour)

	w := apply(&WriteRequest{Value: []byte("new")})
	if other.Context.Covers(w.Dot) {
		t.Fatalf("new write issued %v, which b's tombstone context %v covers", w.Dot, other.Context)
	}
	if got := version.Sync(other, w.Set); len(got.Live()) != 1 || string(got.Live()[0].Value) != "new" {
		t.Fatalf("b merging the new write keeps %v: the write was lost", got.Dots())
	}
}

// A node whose disk was lost issues under a new actor name: its new
// versions must not claim, through the vector entry of its old name, the
// dots its lost store issued, which other replicas still hold.
func TestReplicaIssuesUnderANewNameAfterALostDisk(t *testing.T) {
	fake := clock.NewFake()
	open := func() *store.Store {
		cfg := store.DefaultConfig()
		cfg.Dir, cfg.FS, cfg.Clock = "/db", vfs.NewMem(), fake
		st, err := store.Open(cfg, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	ctx := context.Background()
	k := store.EncodeKey([]byte("b"), []byte("k"))
	before, err := NewReplica(ReplicaConfig{Self: "n2", MaxSiblings: 10}, open(), mapHints{}, fake).
		Handle(ctx, &Request{Kind: KindApply, Key: k, Write: &WriteRequest{Value: []byte("acked before the disk was lost")}})
	if err != nil {
		t.Fatal(err)
	}
	fake.Advance(time.Second)
	after, err := NewReplica(ReplicaConfig{Self: "n2", MaxSiblings: 10}, open(), mapHints{}, fake).
		Handle(ctx, &Request{Kind: KindApply, Key: k, Write: &WriteRequest{Value: []byte("after")}})
	if err != nil {
		t.Fatal(err)
	}
	if before.Dot.Node == after.Dot.Node {
		t.Fatalf("both stores issued as %s", after.Dot.Node)
	}
	if got := version.Sync(before.Set, after.Set); len(got.Live()) != 2 {
		t.Fatalf("merged %v: the write acknowledged before the disk was lost vanished", got.Dots())
	}
}
