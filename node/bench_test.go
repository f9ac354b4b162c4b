package node_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/testcluster"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/store"
)

// BenchmarkQuorumPut measures a coordinated N=3, W=2 write over the
// in-memory transport (Pebble on an in-memory FS, sync on), bypassing HTTP.
func BenchmarkQuorumPut(b *testing.B) {
	c := testcluster.StartWith(b, testcluster.Options{Nodes: 3, Configure: func(_ int, cfg *node.Config) {
		cfg.HeartbeatInterval = 200 * time.Millisecond
		cfg.Detector.FirstHeartbeatEstimate = 200 * time.Millisecond
	}})
	coord := c.Node(0).Coordinator()
	value := make([]byte, 1024)
	var seq atomic.Int64
	params := quorum.Params{N: 3, R: 2, W: 2, Timeout: 5 * time.Second, Sloppy: true}
	b.ReportAllocs()
	b.SetBytes(int64(len(value)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := store.EncodeKey([]byte("bench"), []byte(fmt.Sprint("k", seq.Add(1))))
			if _, err := coord.Put(context.Background(), quorum.PutRequest{Key: k, Params: params, Value: value}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkQuorumGet measures a coordinated R=2 read of an existing key.
func BenchmarkQuorumGet(b *testing.B) {
	c := testcluster.StartWith(b, testcluster.Options{Nodes: 3})
	coord := c.Node(0).Coordinator()
	params := quorum.Params{N: 3, R: 2, W: 3, Timeout: 5 * time.Second, Sloppy: true}
	k := store.EncodeKey([]byte("bench"), []byte("hot"))
	if _, err := coord.Put(context.Background(), quorum.PutRequest{Key: k, Params: params, Value: make([]byte, 1024)}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := coord.Get(context.Background(), quorum.GetRequest{Key: k, Params: params}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
