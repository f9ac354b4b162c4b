package node_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quorumkv/quorumkv/internal/simcluster"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/transport"
	"github.com/quorumkv/quorumkv/version"
)

// inflate returns c with every counter raised to counter: a forged
// context naming the very nodes that issue the key's versions.
func inflate(c version.Context, counter uint64) version.Context {
	out := version.Context{VV: map[string]uint64{}}
	for n := range c.VV {
		out.VV[n] = counter
	}
	for _, d := range c.Cloud {
		out.VV[d.Node] = counter
	}
	return out
}

// readCtx reads a key with r=all and returns its X-Context and decoded
// context, failing the test unless it reads back want.
func readCtx(t *testing.T, c *simcluster.Cluster, i int, bucket, key, want string) (string, version.Context) {
	t.Helper()
	r := simDo(t, c, i, "GET", "/v1/kv/"+bucket+"/"+key+"?r=all", nil, nil)
	if r.Status != http.StatusOK || string(r.Body) != want {
		t.Fatalf("GET %s/%s via %s: %d %q, want 200 %q", bucket, key, c.ID(i), r.Status, r.Body, want)
	}
	hdr := r.Header.Get(node.HeaderContext)
	ctx, err := version.DecodeContext(store.EncodeKey([]byte(bucket), []byte(key)), hdr)
	if err != nil {
		t.Fatalf("the context of a read does not decode for its key: %v", err)
	}
	return hdr, ctx
}

// stillWritable writes a key n times, each with the context of the write
// before, through every node in turn, and reads each value back.
func stillWritable(t *testing.T, c *simcluster.Cluster, bucket, key string, n int) {
	t.Helper()
	hdr, _ := readCtx(t, c, 0, bucket, key, "v")
	for i := range n {
		val := fmt.Sprintf("w%d", i)
		r := simDo(t, c, i%c.Size(), "PUT", "/v1/kv/"+bucket+"/"+key+"?w=all", []byte(val), map[string]string{node.HeaderContext: hdr})
		if r.Status != http.StatusNoContent {
			t.Fatalf("write %d after the forged context: %d %s", i, r.Status, r.Body)
		}
		hdr, _ = readCtx(t, c, (i+1)%c.Size(), bucket, key, val)
	}
}

// startWithValue starts three nodes on simulated time with "v" stored
// under b/k on all of them, and returns b/k's store key.
func startWithValue(t *testing.T) (*simcluster.Cluster, []byte) {
	t.Helper()
	c := simcluster.Start(t, simcluster.Options{Nodes: 3})
	if r := simDo(t, c, 0, "PUT", "/v1/kv/b/k?w=all", []byte("v"), nil); r.Status != http.StatusNoContent {
		t.Fatalf("PUT: %d %s", r.Status, r.Body)
	}
	return c, store.EncodeKey([]byte("b"), []byte("k"))
}

func wantBadContext(t *testing.T, what string, r simcluster.Response) {
	t.Helper()
	if r.Status != http.StatusBadRequest || errorCode(t, r.Body) != node.CodeBadContext || !strings.Contains(string(r.Body), "read the key") {
		t.Fatalf("%s: %d %s, want 400 bad_context telling the client to read the key", what, r.Status, r.Body)
	}
}

// Issue 14, frozen counter: a context whose counters are at the maximum,
// or just past the slack, sent by a plain PUT or DELETE, is refused with
// 400 and nothing is written; the key stays writable for good.
func TestForgedCounterDoesNotFreezeAKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, ek := startWithValue(t)
		const bucket, key = "b", "k"
		_, seen := readCtx(t, c, 0, bucket, key, "v")
		pastSlack := version.CounterBound(c.Clock(0).Now().Add(time.Hour))
		for _, counter := range []uint64{version.MaxCounter, pastSlack} {
			forged := version.EncodeContext(ek, inflate(seen, counter))
			for _, method := range []string{"PUT", "DELETE"} {
				for i := range c.Size() {
					r := simDo(t, c, i, method, "/v1/kv/b/k?w=all", []byte("forged"), map[string]string{node.HeaderContext: forged})
					wantBadContext(t, fmt.Sprintf("%s at counter %d via %s", method, counter, c.ID(i)), r)
				}
			}
		}
		for i := range c.Size() {
			set, err := c.Node(i).Store().Get(ek)
			if err != nil {
				t.Fatal(err)
			}
			if len(set.Siblings) != 1 || string(set.Siblings[0].Value) != "v" || set.Plausible(c.Clock(i).Now()) != nil {
				t.Fatalf("%s holds %+v after the forged writes", c.ID(i), set)
			}
		}
		stillWritable(t, c, bucket, key, 100)
	})
}

// The same forged versions sent by a peer straight to a replica's RPC
// handler, as a merge (replication, read repair), a hint, or an apply's
// context, are refused with quorum.ErrImplausible; the replica stores
// nothing and the key stays writable.
func TestForgedCounterOverRPCIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, ek := startWithValue(t)
		const bucket, key = "b", "k"
		held, err := c.Node(0).Store().Get(ek)
		if err != nil {
			t.Fatal(err)
		}
		pastSlack := version.CounterBound(c.Clock(0).Now().Add(time.Hour))
		for _, counter := range []uint64{version.MaxCounter, pastSlack} {
			set := held.Clone()
			set.Context = inflate(held.Context, counter)
			set.Siblings[0].Dot.Counter = counter
			set.Siblings[0].Value = []byte("forged")
			for _, req := range []quorum.Request{
				{Kind: quorum.KindMerge, Set: set},
				{Kind: quorum.KindMerge, Set: set, HintFor: c.ID(2)},
				{Kind: quorum.KindApply, Write: &quorum.WriteRequest{Context: set.Context, Value: []byte("forged")}},
			} {
				req.Key, req.Partition = ek, c.Node(0).Ring().Partition(ek)
				body, err := msgpack.Marshal(&req)
				if err != nil {
					t.Fatal(err)
				}
				for i := range c.Size() {
					_, err := c.Node(i).ServeRPC(t.Context(), &transport.Request{From: c.ID((i + 1) % c.Size()), To: c.ID(i), Method: node.MethodKV, Body: body})
					var ce *quorum.CodedError
					if !errors.Is(err, quorum.ErrImplausible) || !errors.As(err, &ce) || ce.Code() != quorum.CodeImplausible {
						t.Fatalf("%s with counter %d to %s: %v, want %s", req.Kind, counter, c.ID(i), err, quorum.CodeImplausible)
					}
				}
			}
		}
		for i := range c.Size() {
			set, err := c.Node(i).Store().Get(ek)
			if err != nil {
				t.Fatal(err)
			}
			if !set.Equal(held) {
				t.Fatalf("%s holds %+v after the forged RPCs, held %+v", c.ID(i), set, held)
			}
		}
		stillWritable(t, c, bucket, key, 100)
	})
}

// Issue 14, foreign context: the context of key A sent with a write of key
// B is refused with 400 and B keeps its value; so is a context in the old
// format, which was bound to no key. The right context still resolves
// siblings in a read-modify-write.
func TestForeignContextIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := simcluster.Start(t, simcluster.Options{Nodes: 3})
		for _, kv := range [][2]string{{"a", "va"}, {"b", "vb"}} {
			if r := simDo(t, c, 0, "PUT", "/v1/kv/b/"+kv[0]+"?w=all", []byte(kv[1]), nil); r.Status != http.StatusNoContent {
				t.Fatalf("PUT %s: %d %s", kv[0], r.Status, r.Body)
			}
		}
		ctxA, _ := readCtx(t, c, 0, "b", "a", "va")
		// The same key name in another bucket is another key.
		if r := simDo(t, c, 0, "PUT", "/v1/kv/other/a?w=all", []byte("x"), nil); r.Status != http.StatusNoContent {
			t.Fatalf("PUT other/a: %d", r.Status)
		}
		for i := range c.Size() {
			wantBadContext(t, "PUT b with a's context", simDo(t, c, i, "PUT", "/v1/kv/b/b?w=all", []byte("stolen"), map[string]string{node.HeaderContext: ctxA}))
			wantBadContext(t, "DELETE b with a's context", simDo(t, c, i, "DELETE", "/v1/kv/b/b?w=all", nil, map[string]string{node.HeaderContext: ctxA}))
			wantBadContext(t, "PUT other/a with b/a's context", simDo(t, c, i, "PUT", "/v1/kv/other/a?w=all", []byte("stolen"), map[string]string{node.HeaderContext: ctxA}))
		}
		// Format 1 (a format byte and msgpack, no key binding).
		old := "AYGhdoGibjEB" // {v: {n1: 1}}
		wantBadContext(t, "PUT with a format 1 context", simDo(t, c, 1, "PUT", "/v1/kv/b/b?w=all", []byte("old"), map[string]string{node.HeaderContext: old}))
		readCtx(t, c, 1, "b", "b", "vb")
		readCtx(t, c, 2, "other", "a", "x")
		readCtx(t, c, 2, "b", "a", "va")

		// Read-modify-write: a blind write makes a sibling, the read's
		// context resolves both.
		if r := simDo(t, c, 1, "PUT", "/v1/kv/b/b?w=all", []byte("blind"), nil); r.Status != http.StatusNoContent {
			t.Fatalf("blind PUT: %d", r.Status)
		}
		r := simDo(t, c, 2, "GET", "/v1/kv/b/b?r=all", nil, nil)
		if r.Status != http.StatusMultipleChoices {
			t.Fatalf("after a blind write: %d, want 300", r.Status)
		}
		if r = simDo(t, c, 0, "PUT", "/v1/kv/b/b?w=all", []byte("resolved"), map[string]string{node.HeaderContext: r.Header.Get(node.HeaderContext)}); r.Status != http.StatusNoContent {
			t.Fatalf("resolving PUT: %d %s", r.Status, r.Body)
		}
		readCtx(t, c, 1, "b", "b", "resolved")
	})
}
