package antientropy

import (
	"context"
	"errors"
	"testing"

	"github.com/quorumkv/quorumkv/version"
)

func TestHandoffConfigValidate(t *testing.T) {
	valid := DefaultHandoffConfig()
	valid.Available = func(string) bool { return true }
	valid.Deliver = func(context.Context, string, []byte, version.Set) error { return nil }
	valid.Prioritize = func(int) {}
	if err := valid.Validate(); err != nil {
		t.Fatalf("defaults with funcs: %v", err)
	}
	if err := DefaultHandoffConfig().Validate(); !errors.Is(err, ErrHandoffConfig) {
		t.Fatalf("defaults without funcs: %v", err)
	}
	tests := []struct {
		name string
		mut  func(*HandoffConfig)
	}{
		{"zero interval", func(c *HandoffConfig) { c.Interval = 0 }},
		{"negative hint rate", func(c *HandoffConfig) { c.HintsPerSecond = -1 }},
		{"negative hint burst", func(c *HandoffConfig) { c.HintBurst = -1 }},
		{"negative byte rate", func(c *HandoffConfig) { c.BytesPerSecond = -1 }},
		{"negative byte burst", func(c *HandoffConfig) { c.ByteBurst = -1 }},
		{"zero batch", func(c *HandoffConfig) { c.BatchSize = 0 }},
		{"zero deliver concurrency", func(c *HandoffConfig) { c.DeliverConcurrency = 0 }},
		{"zero owners", func(c *HandoffConfig) { c.MaxConcurrentOwners = 0 }},
		{"zero budget", func(c *HandoffConfig) { c.MaxHintBytesPerOwner = 0 }},
		{"nil Available", func(c *HandoffConfig) { c.Available = nil }},
		{"nil Deliver", func(c *HandoffConfig) { c.Deliver = nil }},
		{"nil Prioritize", func(c *HandoffConfig) { c.Prioritize = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.mut(&c)
			if err := c.Validate(); !errors.Is(err, ErrHandoffConfig) {
				t.Fatalf("Validate = %v, want ErrHandoffConfig", err)
			}
		})
	}
	// Unlimited rates are valid; bursts default to one second's worth.
	c := valid
	c.HintsPerSecond, c.BytesPerSecond = 0, 0
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if valid.hintBurst() != valid.HintsPerSecond || valid.byteBurst() != valid.BytesPerSecond {
		t.Fatalf("bursts %v %v", valid.hintBurst(), valid.byteBurst())
	}
}
