package handoff

import (
	"context"
	"fmt"
	"time"

	"github.com/quorumkv/quorumkv/version"
)

// Config parameterises the package, one section per mover. Start from
// DefaultConfig and set the node's wiring (the funcs each section marks
// required).
type Config struct {
	// Hints configures hinted handoff (NewHints).
	Hints HintConfig
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
		},
	}
}

// Validate reports the first invalid field of any section, wrapping
// ErrConfig.
func (c Config) Validate() error {
	if err := c.Hints.Validate(); err != nil {
		return fmt.Errorf("hints: %w", err)
	}
	return nil
}

// HintConfig parameterises Hints, hinted handoff. The three funcs are the
// node's wiring and are required; every other field has a default (see
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

	// Available reports whether the failure detector trusts owner. Replay
	// to an owner starts only when it returns true and stops between
	// batches when it turns false. It is called from several goroutines.
	// Required.
	Available func(owner string) bool
	// Deliver sends one hint to its owner and returns nil once the owner
	// has durably merged it (version.Sync). It must honour ctx, which is
	// cancelled by Close, and should bound its own duration. Replaying a
	// hint twice must be harmless, which Sync guarantees. It is called
	// concurrently (DeliverConcurrency per owner). Required.
	Deliver func(ctx context.Context, owner string, k []byte, set version.Set) error
	// Prioritize marks a partition for priority anti-entropy. Store calls
	// it when a hint is not kept (budget full or a store error), so the
	// write still reaches its owner eventually. Required.
	Prioritize func(partition int)

	// Member reports whether owner is still a member of the ring, in the
	// committed layout or the target one. Hints of an owner that is not
	// are not waited for: each goes to every replica of its key
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
