package node

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	base := DefaultConfig()
	base.ID, base.DataDir = "n1", "/tmp/unused"
	if err := base.Validate(); err != nil {
		t.Fatalf("defaults with an ID and a data dir: %v", err)
	}
	for _, tc := range []struct {
		name string
		mut  func(*Config)
		want string
	}{
		{"no id", func(c *Config) { c.ID = "" }, "--id is required"},
		{"id with the actor separator", func(c *Config) { c.ID = "n1~2" }, "may not contain"},
		{"id with a space", func(c *Config) { c.ID = "n 1" }, "may not contain"},
		{"no data", func(c *Config) { c.DataDir = "" }, "--data is required"},
		{"partitions", func(c *Config) { c.Partitions = 100 }, "not a power of two"},
		{"negative row cache", func(c *Config) { c.RowCacheSize = -1 }, "row cache size -1 is negative"},
		{"zero timeout", func(c *Config) { c.RequestTimeout = 0 }, "timeouts must be positive"},
		{"negative speculation", func(c *Config) { c.SpeculateAfter = -time.Millisecond }, "speculative read delay is negative"},
		{"tls cert without key and CA", func(c *Config) { c.TLSCertFile = "n1.pem" }, "go together"},
		{"tls without a CA", func(c *Config) { c.TLSCertFile, c.TLSKeyFile = "n1.pem", "n1-key.pem" }, "go together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.mut(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	off := base
	off.RowCacheSize = 0 // the cache turned off is valid
	if err := off.Validate(); err != nil {
		t.Fatalf("row cache off: %v", err)
	}
}
