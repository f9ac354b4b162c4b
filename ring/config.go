package ring

import (
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// HashFunc maps a key to a position on the ring. Every node of a cluster must
// use the same function. The partition of a key is the top log2(Partitions)
// bits of its hash, so the function must spread keys over the high bits.
type HashFunc func(key []byte) uint64

// MaxPartitions is the largest allowed Config.Partitions. Member indices in the
// precomputed tables are 16-bit, and a ring never has more members than
// partitions.
const MaxPartitions = 1 << 16

// Config parameterises a Ring. All nodes of a cluster must use the same
// Partitions and Hash; MaxFallbacks is local (it only trims results).
type Config struct {
	// Partitions is Q, the number of equal slices of the hash space (the
	// virtual nodes). A power of two in [1, MaxPartitions]. It can never change
	// for the life of a cluster, so pick it for the largest cluster you expect:
	// at least ~10 partitions per node keeps the imbalance at or under 10%.
	// Default 256 (good for up to ~25 nodes).
	Partitions int
	// Hash maps keys to ring positions. Default xxhash.Sum64.
	Hash HashFunc
	// MaxFallbacks caps the fallback nodes returned after the n primaries by
	// the preference-list lookups; 0 means no cap (all other members, in
	// fallback order). It bounds the work and the size of the returned slice
	// per lookup on large clusters. Default 0.
	MaxFallbacks int
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{
		Partitions:   256,
		Hash:         xxhash.Sum64,
		MaxFallbacks: 0,
	}
}

// Validate reports the first invalid field, wrapping ErrInvalidConfig.
func (c Config) Validate() error {
	if c.Partitions < 1 || c.Partitions > MaxPartitions || c.Partitions&(c.Partitions-1) != 0 {
		return fmt.Errorf("%w: partitions %d is not a power of two in [1, %d]",
			ErrInvalidConfig, c.Partitions, MaxPartitions)
	}
	if c.Hash == nil {
		return fmt.Errorf("%w: nil hash", ErrInvalidConfig)
	}
	if c.MaxFallbacks < 0 {
		return fmt.Errorf("%w: negative max fallbacks %d", ErrInvalidConfig, c.MaxFallbacks)
	}
	return nil
}
