package handoff

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/quorumkv/quorumkv/version"
)

// Config parameterises the package, one section per mover. Start from
// DefaultConfig and set the node's wiring (the funcs each section marks
// required).
type Config struct {
	// Hints configures hinted handoff (NewHints).
	Hints HintConfig
	// Transfers configures partition transfers (NewTransfers, ServeScan).
	Transfers TransferConfig
}

// DefaultConfig returns the defaults of every section. The funcs are left
// nil: they are the node's wiring.
func DefaultConfig() Config {
	return Config{
		Hints: HintConfig{
			Interval:             time.Second, // a round a second; Kick for one at once
			HintsPerSecond:       5000,        // 16 Deliver calls in flight of ≤ 3 ms each sustain it
			HintBurst:            0,           // one second's worth
			BytesPerSecond:       8 << 20,     // 8 MiB/s
			ByteBurst:            0,           // one second's worth
			BatchSize:            128,         // hints read per scan
			DeliverConcurrency:   16,          // Deliver calls in flight per owner
			MaxConcurrentOwners:  4,           // owners replayed at once
			MaxHintBytesPerOwner: 64 << 20,    // 64 MiB of hints per owner
			MaxHintBytesTotal:    256 << 20,   // 256 MiB of hints for all owners together: four owners' worth
		},
		Transfers: TransferConfig{
			Partitions:     256,             // the ring's default Q
			Parallel:       2,               // partitions streamed at once
			BytesPerSecond: 16 << 20,        // 16 MiB/s received
			ByteBurst:      0,               // one second's worth
			BatchBytes:     256 << 10,       // 256 KiB asked per Scan
			MaxKeys:        1024,            // records asked per Scan
			ServeMaxBytes:  1 << 20,         // 1 MiB served per Scan at most
			ServeMaxKeys:   4096,            // records served per Scan at most
			RetryMin:       time.Second,     // first wait after a failed attempt
			RetryMax:       2 * time.Minute, // the longest wait between attempts
		},
	}
}

// Validate reports the first invalid field of any section, wrapping
// ErrConfig.
func (c Config) Validate() error {
	if err := c.Hints.Validate(); err != nil {
		return fmt.Errorf("hints: %w", err)
	}
	if err := c.Transfers.Validate(); err != nil {
		return fmt.Errorf("transfers: %w", err)
	}
	return nil
}

// TransferConfig parameterises Transfers and ServeScan. Every field has a
// default (see DefaultConfig); Finish is the node's wiring and optional.
type TransferConfig struct {
	// Partitions is the ring's partition count Q, a power of two in
	// [1, 65536]: partition p is the key hashes whose top log2(Q) bits
	// are p. It must equal the ring's. Default 256.
	Partitions int
	// Parallel is how many partitions are streamed at once. Default 2.
	Parallel int
	// BytesPerSecond caps the bytes received per second over all
	// partitions (a token bucket, charged with each batch before the next
	// Scan); 0 means no cap. Default 16 MiB/s.
	BytesPerSecond float64
	// ByteBurst is how many bytes may arrive at once after an idle
	// period. Default 0, meaning one second's worth (BytesPerSecond).
	ByteBurst float64
	// BatchBytes is the byte budget asked for per Scan. Default 256 KiB.
	BatchBytes int
	// MaxKeys is the record budget asked for per Scan. Default 1024.
	MaxKeys int
	// ServeMaxBytes and ServeMaxKeys cap what ServeScan returns per
	// request, whatever the request asks for. Defaults 1 MiB and 4096.
	ServeMaxBytes int
	ServeMaxKeys  int
	// RetryMin is how long a partition waits after a failed attempt (every
	// source failed, the local store failed, or Finish failed); each
	// further failure in a row doubles the wait, up to RetryMax.
	// Defaults 1s and 2m.
	RetryMin time.Duration
	RetryMax time.Duration

	// Finish is called once a partition's stream is complete, with the
	// partition's sources; the node runs a final Merkle exchange with each
	// of them, which repairs the writes the stream raced with. The
	// partition is done when it returns nil and retried after a backoff
	// otherwise. It must honour ctx, which Close and Set (when the
	// partition is no longer gained) cancel. Optional: nil means a
	// partition is done when its stream is.
	Finish func(ctx context.Context, partition int, sources []string) error
}

// Validate reports the first invalid field, wrapping ErrConfig.
func (c TransferConfig) Validate() error {
	switch {
	case c.Partitions < 1 || c.Partitions > 1<<16 || c.Partitions&(c.Partitions-1) != 0:
		return fmt.Errorf("%w: partitions %d is not a power of two in [1, 65536]", ErrConfig, c.Partitions)
	case c.Parallel < 1:
		return fmt.Errorf("%w: parallel %d < 1", ErrConfig, c.Parallel)
	case c.BytesPerSecond < 0 || c.ByteBurst < 0:
		return fmt.Errorf("%w: negative byte rate %v or burst %v", ErrConfig, c.BytesPerSecond, c.ByteBurst)
	case c.BatchBytes < 1 || c.MaxKeys < 1:
		return fmt.Errorf("%w: batch of %d bytes, %d keys: both must be positive", ErrConfig, c.BatchBytes, c.MaxKeys)
	case c.ServeMaxBytes < 1 || c.ServeMaxKeys < 1:
		return fmt.Errorf("%w: serve caps of %d bytes, %d keys: both must be positive", ErrConfig, c.ServeMaxBytes, c.ServeMaxKeys)
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return fmt.Errorf("%w: retry waits %v..%v: need 0 < RetryMin <= RetryMax", ErrConfig, c.RetryMin, c.RetryMax)
	}
	return nil
}

// byteBurst returns the effective byte burst.
func (c TransferConfig) byteBurst() float64 {
	if c.ByteBurst > 0 {
		return c.ByteBurst
	}
	return max(c.BytesPerSecond, 1)
}

// partitionBits returns log2(Partitions).
func (c TransferConfig) partitionBits() int { return bits.TrailingZeros(uint(c.Partitions)) }

// PartitionRange returns the inclusive key-hash range of partition p of
// c.Partitions.
func (c TransferConfig) PartitionRange(p int) (lo, hi uint64) {
	b := c.partitionBits()
	if b == 0 {
		return 0, math.MaxUint64
	}
	shift := 64 - b
	lo = uint64(p) << shift
	return lo, lo | (1<<shift - 1)
}

// HintConfig parameterises Hints, hinted handoff. The funcs are the
// node's wiring: Available, Deliver and Prioritize are required, Member,
// Replicas and Rehome optional. Every other field has a default (see
// DefaultConfig).
type HintConfig struct {
	// Interval is how often the replay loop looks for owners that are
	// trusted again and hold pending hints. Kick runs a round at once.
	// Default 1s.
	Interval time.Duration
	// HintsPerSecond caps replayed hints per second across all owners;
	// 0 means no cap on the count. Default 5000.
	HintsPerSecond float64
	// HintBurst is how many hints may go out at once after an idle period.
	// Default 0, meaning one second's worth (HintsPerSecond, at least 1).
	HintBurst float64
	// BytesPerSecond caps replayed hint bytes per second across all owners
	// (key plus estimated encoded set); 0 means no cap on bytes.
	// Default 8 MiB/s.
	BytesPerSecond float64
	// ByteBurst is how many bytes may go out at once after an idle period.
	// A hint larger than the burst still goes out, after waiting for the
	// bucket to refill. Default 0, meaning one second's worth
	// (BytesPerSecond).
	ByteBurst float64
	// BatchSize is how many hints a replay reads from the store per scan.
	// Default 128.
	BatchSize int
	// DeliverConcurrency is how many Deliver calls one owner's replay keeps
	// in flight. One owner's replay runs at most DeliverConcurrency/latency
	// hints per second, so this must cover the hint rate: 16 calls of up
	// to 3 ms each sustain 5000 hints/s. Default 16.
	DeliverConcurrency int
	// MaxConcurrentOwners is how many owners are replayed at the same time;
	// an owner is never replayed by two passes at once. Default 4.
	MaxConcurrentOwners int
	// MaxHintBytesPerOwner is the hint budget of one owner: Store refuses
	// (stored=false, no error) a hint that could take the owner's pending
	// hint bytes past it, and prioritizes the partition for anti-entropy
	// instead. Default 64 MiB.
	MaxHintBytesPerOwner int64
	// MaxHintBytesTotal is this node's hint budget over all owners
	// together: Store refuses (a *RefusedError for ErrHolderFull) a hint
	// that could take the pending hint bytes of every owner past it, and
	// prioritizes the partition for anti-entropy. Below
	// MaxHintBytesPerOwner it is the tighter of the two. Default 256 MiB,
	// four owners' budgets.
	MaxHintBytesTotal int64

	// Available reports whether the failure detector trusts owner. Replay
	// to an owner starts only when it returns true and stops between
	// batches when it turns false. It is called from several goroutines.
	// Required.
	Available func(owner string) bool
	// Deliver sends one hint to its owner and returns nil once the owner
	// has durably merged it (version.Sync). It must honour ctx, which is
	// cancelled by Close, and should bound its own duration. Replaying a
	// hint twice must be harmless, which Sync guarantees. An error that
	// matches version.ErrTooLarge (the owner refused the merge: the key's
	// siblings would be too large together) keeps the hint without
	// failing the pass. It is called concurrently (DeliverConcurrency per
	// owner). Required.
	Deliver func(ctx context.Context, owner string, k []byte, set version.Set) error
	// Prioritize marks a partition for priority anti-entropy. Store calls
	// it when a hint is not kept (budget full or a store error), so the
	// write still reaches its owner eventually. Required.
	Prioritize func(partition int)

	// Member reports whether owner is still a member of the ring, in the
	// committed layout or the target one. Store refuses a hint for an
	// owner that is not (a *RefusedError for ErrNotMember): nobody would
	// ever take it back. Hints of an owner that left after they were
	// stored are not waited for: each goes to every replica of its key
	// (Replicas), is kept here as a hint for the replicas that are down,
	// and is then deleted. It is called from several goroutines.
	// Optional: nil means every owner is a member.
	Member func(owner string) bool
	// Replicas returns the replicas of key k in the target layout. It is
	// what a hint of an owner that is no longer a member is retargeted
	// to. Required with Member.
	Replicas func(k []byte) []string
	// Rehome sends one hint for owner to another live node, which keeps
	// it as a hint for owner (merged with version.Sync), and returns nil
	// once that node stored it durably. While Evacuate is on, it is how
	// the hints of owners that are down leave this node. It must honour
	// ctx. Optional: without it a leaving node's hints for owners that
	// are down wait for them as usual.
	Rehome func(ctx context.Context, owner string, k []byte, set version.Set) error
}

// Validate reports the first invalid field, wrapping ErrConfig.
func (c HintConfig) Validate() error {
	switch {
	case c.Interval <= 0:
		return fmt.Errorf("%w: interval %v is not positive", ErrConfig, c.Interval)
	case c.HintsPerSecond < 0 || c.HintBurst < 0:
		return fmt.Errorf("%w: negative hint rate %v or burst %v", ErrConfig, c.HintsPerSecond, c.HintBurst)
	case c.BytesPerSecond < 0 || c.ByteBurst < 0:
		return fmt.Errorf("%w: negative byte rate %v or burst %v", ErrConfig, c.BytesPerSecond, c.ByteBurst)
	case c.BatchSize < 1:
		return fmt.Errorf("%w: batch size %d < 1", ErrConfig, c.BatchSize)
	case c.DeliverConcurrency < 1:
		return fmt.Errorf("%w: deliver concurrency %d < 1", ErrConfig, c.DeliverConcurrency)
	case c.MaxConcurrentOwners < 1:
		return fmt.Errorf("%w: max concurrent owners %d < 1", ErrConfig, c.MaxConcurrentOwners)
	case c.MaxHintBytesPerOwner < 1:
		return fmt.Errorf("%w: max hint bytes per owner %d < 1", ErrConfig, c.MaxHintBytesPerOwner)
	case c.MaxHintBytesTotal < 1:
		return fmt.Errorf("%w: max hint bytes in total %d < 1", ErrConfig, c.MaxHintBytesTotal)
	case c.Available == nil:
		return fmt.Errorf("%w: nil Available", ErrConfig)
	case c.Deliver == nil:
		return fmt.Errorf("%w: nil Deliver", ErrConfig)
	case c.Prioritize == nil:
		return fmt.Errorf("%w: nil Prioritize", ErrConfig)
	case c.Member != nil && c.Replicas == nil:
		return fmt.Errorf("%w: Member without Replicas", ErrConfig)
	}
	return nil
}

// hintBurst returns the effective hint burst.
func (c HintConfig) hintBurst() float64 {
	if c.HintBurst > 0 {
		return c.HintBurst
	}
	return max(c.HintsPerSecond, 1)
}

// byteBurst returns the effective byte burst.
func (c HintConfig) byteBurst() float64 {
	if c.ByteBurst > 0 {
		return c.ByteBurst
	}
	return max(c.BytesPerSecond, 1)
}
