package gossip

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func TestConfigValidate(t *testing.T) {
	valid := DefaultConfig()
	valid.Meta.ID = "a"
	for _, tc := range []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"default with id", func(*Config) {}, true},
		{"fast", func(c *Config) { *c = c.Fast() }, true},
		{"port 0", func(c *Config) { c.BindAddr = "127.0.0.1:0" }, true},
		{"transport ignores bind address", func(c *Config) {
			c.BindAddr = "nonsense"
			c.Transport = &memberlist.MockTransport{}
		}, true},
		{"key 32", func(c *Config) { c.Keys = [][]byte{make([]byte, 32)} }, true},
		{"keys 16, 24", func(c *Config) { c.Keys = [][]byte{make([]byte, 16), make([]byte, 24)} }, true},
		{"no id", func(c *Config) { c.Meta.ID = "" }, false},
		{"no cluster", func(c *Config) { c.Meta.Cluster = "" }, false},
		{"no state", func(c *Config) { c.Meta.State = "" }, false},
		{"removed state", func(c *Config) { c.Meta.State = StateRemoved }, false},
		{"bind without port", func(c *Config) { c.BindAddr = "127.0.0.1" }, false},
		{"bind bad port", func(c *Config) { c.BindAddr = "127.0.0.1:99999" }, false},
		{"bad advertise", func(c *Config) { c.AdvertiseAddr = "x" }, false},
		{"key 10", func(c *Config) { c.Keys = [][]byte{make([]byte, 10)} }, false},
		{"second key 33", func(c *Config) { c.Keys = [][]byte{make([]byte, 32), make([]byte, 33)} }, false},
		{"empty key", func(c *Config) { c.Keys = [][]byte{{}} }, false},
		{"nil clock", func(c *Config) { c.Clock = nil }, false},
		{"zero gossip interval", func(c *Config) { c.GossipInterval = 0 }, false},
		{"zero push-pull", func(c *Config) { c.PushPullInterval = 0 }, false},
		{"probe timeout over interval", func(c *Config) { c.ProbeTimeout = 2 * c.ProbeInterval }, false},
		{"zero join attempts", func(c *Config) { c.JoinAttempts = 0 }, false},
		{"zero gossip nodes", func(c *Config) { c.GossipNodes = 0 }, false},
		{"negative backoff", func(c *Config) { c.JoinBackoff = -time.Second }, false},
		{"invalid initial state", func(c *Config) {
			c.Initial.Buckets = map[string]BucketProps{"b": {N: 0}}
		}, false},
		{"initial intent", func(c *Config) { c.Meta.Intent, c.Meta.Staged = IntentJoin, true }, true},
		{"unknown initial intent", func(c *Config) { c.Meta.Intent = "evict" }, false},
		{"initial layout", func(c *Config) { c.Initial.Layout = &Layout{Epoch: 1, Members: []LayoutMember{{ID: "a"}}} }, true},
		{"invalid initial layout", func(c *Config) { c.Initial.Layout = &Layout{Epoch: 1} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid
			tc.edit(&c)
			err := c.Validate()
			if tc.ok != (err == nil) {
				t.Fatalf("Validate = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("%v does not wrap ErrInvalidConfig", err)
			}
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	if _, err := New(DefaultConfig(), testLogger()); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New without ID = %v, want ErrInvalidConfig", err)
	}
}

func TestMemberlistConfigTranslation(t *testing.T) {
	c := DefaultConfig().Fast()
	c.Meta.ID = "n1"
	c.Meta.Cluster = "prod"
	c.BindAddr = "127.0.0.1:7000"
	c.AdvertiseAddr = "10.0.0.5:7001"
	c.Keys = [][]byte{bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 32)}
	mc := c.memberlistConfig()
	if mc.Name != "n1" || mc.BindAddr != "127.0.0.1" || mc.BindPort != 7000 ||
		mc.AdvertiseAddr != "10.0.0.5" || mc.AdvertisePort != 7001 ||
		mc.Label != "quorumkv/prod" || !mc.GossipVerifyIncoming || !mc.GossipVerifyOutgoing ||
		mc.PushPullInterval != c.PushPullInterval || mc.ProbeInterval != c.ProbeInterval ||
		mc.GossipInterval != c.GossipInterval || mc.DeadNodeReclaimTime != c.DeadNodeReclaimTime {
		t.Fatalf("translated config wrong: %+v", mc)
	}
	if keys := mc.Keyring.GetKeys(); len(keys) != 2 || !bytes.Equal(keys[0], c.Keys[0]) || !bytes.Equal(keys[1], c.Keys[1]) {
		t.Fatalf("keyring holds %d keys, want Keys in order", len(keys))
	}
	c.Keys[0][0] = 9 // the keyring holds copies
	if mc.Keyring.GetPrimaryKey()[0] != 1 {
		t.Fatal("the keyring shares the caller's key bytes")
	}
	c.Keys = nil
	if mc := c.memberlistConfig(); mc.Keyring != nil {
		t.Fatal("a keyring without keys: memberlist would call that encryption on")
	}
	c.disableLabel = true
	if mc := c.memberlistConfig(); mc.Label != "" {
		t.Fatalf("label %q with disableLabel", mc.Label)
	}
}
