package handoff

import (
	"context"
	"errors"
	"testing"

	"github.com/quorumkv/quorumkv/version"
)

func TestHintsConfigValidate(t *testing.T) {
	valid := DefaultConfig().Hints
	valid.Available = func(string) bool { return true }
	valid.Deliver = func(context.Context, string, []byte, version.Set) error { return nil }
	valid.Prioritize = func(int) {}
	if err := valid.Validate(); err != nil {
		t.Fatalf("defaults with funcs: %v", err)
	}
	if err := DefaultConfig().Hints.Validate(); !errors.Is(err, ErrConfig) {
		t.Fatalf("defaults without funcs: %v", err)
	}
	tests := []struct {
		name string
		mut  func(*HintConfig)
	}{
		{"zero interval", func(c *HintConfig) { c.Interval = 0 }},
		{"negative hint rate", func(c *HintConfig) { c.HintsPerSecond = -1 }},
		{"negative hint burst", func(c *HintConfig) { c.HintBurst = -1 }},
		{"negative byte rate", func(c *HintConfig) { c.BytesPerSecond = -1 }},
		{"negative byte burst", func(c *HintConfig) { c.ByteBurst = -1 }},
		{"zero batch", func(c *HintConfig) { c.BatchSize = 0 }},
		{"zero deliver concurrency", func(c *HintConfig) { c.DeliverConcurrency = 0 }},
		{"zero owners", func(c *HintConfig) { c.MaxConcurrentOwners = 0 }},
		{"zero budget", func(c *HintConfig) { c.MaxHintBytesPerOwner = 0 }},
		{"nil Available", func(c *HintConfig) { c.Available = nil }},
		{"nil Deliver", func(c *HintConfig) { c.Deliver = nil }},
		{"nil Prioritize", func(c *HintConfig) { c.Prioritize = nil }},
		{"Member without Replicas", func(c *HintConfig) { c.Member = func(string) bool { return true } }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.mut(&c)
			if err := c.Validate(); !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate = %v, want ErrConfig", err)
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
