package ring

import (
	"errors"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		ok     bool
	}{
		{"default", func(*Config) {}, true},
		{"one partition", func(c *Config) { c.Partitions = 1 }, true},
		{"max partitions", func(c *Config) { c.Partitions = MaxPartitions }, true},
		{"zero partitions", func(c *Config) { c.Partitions = 0 }, false},
		{"negative partitions", func(c *Config) { c.Partitions = -256 }, false},
		{"not a power of two", func(c *Config) { c.Partitions = 100 }, false},
		{"too many partitions", func(c *Config) { c.Partitions = 2 * MaxPartitions }, false},
		{"nil hash", func(c *Config) { c.Hash = nil }, false},
		{"fallback cap", func(c *Config) { c.MaxFallbacks = 2 }, true},
		{"negative fallbacks", func(c *Config) { c.MaxFallbacks = -1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.mutate(&cfg)
			err := cfg.Validate()
			if tt.ok && err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	cfg := DefaultConfig()
	if cfg.Partitions != 256 || cfg.MaxFallbacks != 0 || cfg.Hash == nil {
		t.Fatalf("DefaultConfig() = %+v", cfg)
	}
	// The default hash is xxhash64; this is its published value for "abc".
	if got, want := cfg.Hash([]byte("abc")), uint64(0x44bc2cf5ad770999); got != want {
		t.Fatalf("default hash(abc) = %#x, want %#x", got, want)
	}
}
