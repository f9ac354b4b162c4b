package antientropy

import (
	"fmt"
	"time"

	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/version"
)

// Config parameterises the anti-entropy Service. Start from DefaultConfig
// and set NodeID.
type Config struct {
	// NodeID is this node's ID in the ring. Required.
	NodeID string

	// Partitions is the ring's partition count (a power of two); it must
	// equal Ring().PartitionCount(). Default 256.
	Partitions int
	// LeavesPerPartition is the number of leaves of each partition's tree
	// (a power of two). At ~4k keys per partition the default puts about 4
	// keys in a leaf, so a differing key costs a listing of a few keys.
	// Memory is Partitions × LeavesPerPartition × ~8.3 bytes (2.1 MiB at
	// the defaults). Default 1024.
	LeavesPerPartition int
	// Fanout is the number of children of an inner tree node (a power of
	// two, 2..256). Larger means fewer round trips per exchange but more
	// hashes per differing node. With 1M keys differing in 1000, a pass
	// moved 683 KB at fanout 32, 552 KB at 16 and 467 KB at 8
	// (BenchmarkExchange). Default 16 (1024 leaves → 64 → 4 → root: four
	// round trips down to a differing leaf).
	Fanout int
	// N is the replication factor used to find a partition's replicas:
	// the first N entries of its preference list (Replicates narrows it
	// per key). Default 3.
	N int
	// MaxN, if set, returns the largest n of any bucket now. A partition
	// is then exchanged with its first max(N, MaxN()) nodes, so keys of a
	// bucket created later with a larger n reach all their replicas.
	MaxN func() int

	// Interval is the time between two background partition exchanges:
	// each tick exchanges one partition (prioritized ones first, then
	// round-robin over the partitions this node replicates) with each of
	// its other replicas. Default 10s.
	Interval time.Duration
	// BytesPerSecond caps the bytes this node's exchanges and sweeps move
	// (requests plus replies), with a token bucket; 0 means no cap.
	// Default 8 MiB/s.
	BytesPerSecond int64
	// BurstBytes is the token bucket's depth. Default 1 MiB.
	BurstBytes int64
	// MaxHashesPerCall caps the tree nodes asked for in one ae.hashes call.
	// Default 4096.
	MaxHashesPerCall int
	// MaxLeavesPerCall caps the leaves listed in one ae.leafkeys call.
	// Default 256.
	MaxLeavesPerCall int
	// MaxKeysPerCall caps the keys of one ae.fetch or ae.push call.
	// Default 512.
	MaxKeysPerCall int
	// MaxBatchBytes caps the record bytes of one ae.fetch reply or ae.push
	// request (a single larger record still travels alone). Default 4 MiB.
	MaxBatchBytes int
	// MaxSettled caps the remembered unresolvable leaf differences (see
	// ExchangeResult.Stuck); past it the memory is cleared. Default 65536.
	MaxSettled int

	// TombstoneGrace is how long after its latest write time a tombstone
	// is kept at least, even once every replica holds it. It must exceed
	// the longest time an older version can still be in flight (hint
	// retention, replication retries), or such a version could return
	// after the reap. Default 1h.
	TombstoneGrace time.Duration
	// SweepInterval is the time between two tombstone sweeps; each sweeps
	// one partition. Default 30s.
	SweepInterval time.Duration
	// SweepBatch is the number of tombstones asked about in one ae.hastomb
	// call. Default 512.
	SweepBatch int
	// ReapInterval is the time between two calls of the store's Reap.
	// Default 1m.
	ReapInterval time.Duration
	// ReapBatch is the most records one Reap call deletes. Default 10000.
	ReapBatch int
	// StrayInterval is the time between two passes over one partition
	// for records of keys this node does not replicate (the ring moved,
	// or a bucket's n is smaller than the partition's): each is handed to
	// the key's replicas as hints and dropped here. Default 30s.
	StrayInterval time.Duration
	// StrayBatch is the most such records one pass hands off. Default 512.
	StrayBatch int

	// Replicates reports whether node should hold key k (k is the encoded
	// key; buckets may have different n). Records are pushed only to, and
	// served only to, nodes that should hold them. nil means every replica
	// of a partition holds all its keys.
	Replicates func(k []byte, node string) bool
	// DecodeSet decodes canonical set bytes. Set bytes from peers are
	// checked first as a format byte followed by one msgpack value, with
	// sane lengths (see checkMsgpack). Default store.DecodeSet.
	DecodeSet func([]byte) (version.Set, error)
}

// DefaultConfig returns the defaults. NodeID must still be set.
func DefaultConfig() Config {
	return Config{
		NodeID:             "",               // required
		Partitions:         256,              // the ring's default
		LeavesPerPartition: 1024,             // ~4 keys per leaf at 4k keys per partition
		Fanout:             16,               // 4 levels: 1024 leaves, 64, 4, root
		N:                  3,                // replicas per partition
		Interval:           10 * time.Second, // one partition exchange per 10 s
		BytesPerSecond:     8 << 20,          // 8 MiB/s of exchange traffic
		BurstBytes:         1 << 20,          // 1 MiB bucket
		MaxHashesPerCall:   4096,             // hashes per ae.hashes
		MaxLeavesPerCall:   256,              // leaves per ae.leafkeys
		MaxKeysPerCall:     512,              // keys per ae.fetch / ae.push
		MaxBatchBytes:      4 << 20,          // record bytes per ae.fetch / ae.push
		MaxSettled:         1 << 16,          // remembered unresolvable leaves
		TombstoneGrace:     time.Hour,        // keep tombstones at least 1 h
		SweepInterval:      30 * time.Second, // one partition sweep per 30 s
		SweepBatch:         512,              // tombstones per ae.hastomb
		ReapInterval:       time.Minute,      // store.Reap once a minute
		ReapBatch:          10000,            // records per Reap call
		StrayInterval:      30 * time.Second, // one partition checked for strays per 30 s
		StrayBatch:         512,              // strays handed off per pass
		Replicates:         nil,              // every replica holds every key
		DecodeSet:          store.DecodeSet,  // the store's canonical codec
	}
}

// Validate reports the first invalid field, wrapping ErrConfig.
func (c Config) Validate() error {
	if c.NodeID == "" {
		return fmt.Errorf("%w: empty NodeID", ErrConfig)
	}
	if _, err := c.shape(); err != nil {
		return err
	}
	if c.Partitions*c.LeavesPerPartition > 1<<22 {
		return fmt.Errorf("%w: %d partitions × %d leaves exceeds 4M leaves", ErrConfig, c.Partitions, c.LeavesPerPartition)
	}
	positive := []struct {
		name string
		v    int64
	}{
		{"N", int64(c.N)},
		{"Interval", int64(c.Interval)},
		{"MaxHashesPerCall", int64(c.MaxHashesPerCall)},
		{"MaxLeavesPerCall", int64(c.MaxLeavesPerCall)},
		{"MaxKeysPerCall", int64(c.MaxKeysPerCall)},
		{"MaxBatchBytes", int64(c.MaxBatchBytes)},
		{"MaxSettled", int64(c.MaxSettled)},
		{"TombstoneGrace", int64(c.TombstoneGrace)},
		{"SweepInterval", int64(c.SweepInterval)},
		{"SweepBatch", int64(c.SweepBatch)},
		{"ReapInterval", int64(c.ReapInterval)},
		{"ReapBatch", int64(c.ReapBatch)},
		{"StrayInterval", int64(c.StrayInterval)},
		{"StrayBatch", int64(c.StrayBatch)},
	}
	for _, f := range positive {
		if f.v <= 0 {
			return fmt.Errorf("%w: %s must be positive, got %d", ErrConfig, f.name, f.v)
		}
	}
	switch {
	case c.BytesPerSecond < 0:
		return fmt.Errorf("%w: negative BytesPerSecond", ErrConfig)
	case c.BytesPerSecond > 0 && c.BurstBytes <= 0:
		return fmt.Errorf("%w: BurstBytes must be positive with a byte rate", ErrConfig)
	case c.MaxHashesPerCall > maxIndexPerCall:
		return fmt.Errorf("%w: MaxHashesPerCall above %d", ErrConfig, maxIndexPerCall)
	case c.MaxLeavesPerCall > maxLeavesPerCall:
		return fmt.Errorf("%w: MaxLeavesPerCall above %d", ErrConfig, maxLeavesPerCall)
	case c.MaxKeysPerCall > maxHashesPerCall:
		return fmt.Errorf("%w: MaxKeysPerCall above %d", ErrConfig, maxHashesPerCall)
	case c.SweepBatch > maxItemsPerCall:
		return fmt.Errorf("%w: SweepBatch above %d", ErrConfig, maxItemsPerCall)
	case c.DecodeSet == nil:
		return fmt.Errorf("%w: nil DecodeSet", ErrConfig)
	}
	return nil
}

func (c Config) shape() (Shape, error) {
	return shapeFor(c.Partitions, c.LeavesPerPartition, c.Fanout)
}
