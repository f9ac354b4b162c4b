package gossip

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

// testKey is a 32-byte key of one repeated byte.
func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// withKeys sets a node's keys.
func withKeys(keys ...[]byte) func(*Config) {
	return func(c *Config) { c.Keys = keys }
}

// fingerprints names keys by fingerprint, in order.
func fingerprints(keys [][]byte) []string {
	out := []string{}
	for _, k := range keys {
		out = append(out, KeyFingerprint(k))
	}
	return out
}

func TestKeyFingerprint(t *testing.T) {
	a, b := KeyFingerprint(testKey(1)), KeyFingerprint(testKey(2))
	if len(a) != 8 || strings.Trim(a, "0123456789abcdef") != "" {
		t.Fatalf("fingerprint %q: want 8 lowercase hex digits", a)
	}
	if a == b || a != KeyFingerprint(testKey(1)) {
		t.Fatalf("fingerprints %q, %q: want stable and distinct", a, b)
	}
}

// The key operations of one Gossip, each step's keys checked in order.
func TestKeyOperations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newMemCluster(t)
		k1, k2, k3 := testKey(1), make([]byte, 16), bytes.Repeat([]byte{3}, 24)
		g := c.start("a", memA, withKeys(k1))
		for _, step := range []struct {
			name string
			do   func() error
			err  error
			want [][]byte
		}{
			{"start", func() error { return nil }, nil, [][]byte{k1}},
			{"install short", func() error { return g.InstallKey(k1[:15]) }, ErrBadKey, [][]byte{k1}},
			{"use not installed", func() error { return g.UseKey(k2) }, ErrKeyNotInstalled, [][]byte{k1}},
			{"install", func() error { return g.InstallKey(k2) }, nil, [][]byte{k1, k2}},
			{"install again", func() error { return g.InstallKey(k2) }, nil, [][]byte{k1, k2}},
			{"install third", func() error { return g.InstallKey(k3) }, nil, [][]byte{k1, k2, k3}},
			{"remove primary", func() error { return g.RemoveKey(k1) }, ErrRemovePrimary, [][]byte{k1, k2, k3}},
			{"remove middle", func() error { return g.RemoveKey(k2) }, nil, [][]byte{k1, k3}},
			{"remove absent", func() error { return g.RemoveKey(k2) }, nil, [][]byte{k1, k3}},
			{"use", func() error { return g.UseKey(k3) }, nil, [][]byte{k3, k1}},
			{"remove old primary", func() error { return g.RemoveKey(k1) }, nil, [][]byte{k3}},
			{"remove bad", func() error { return g.RemoveKey(nil) }, ErrBadKey, [][]byte{k3}},
		} {
			if err := step.do(); !errors.Is(err, step.err) || (step.err == nil) != (err == nil) {
				t.Fatalf("%s: %v, want %v", step.name, err, step.err)
			}
			if got, want := fingerprints(g.Keys()), fingerprints(step.want); !slices.Equal(got, want) {
				t.Fatalf("%s: keys %v, want %v", step.name, got, want)
			}
		}
		g.Keys()[0][0] ^= 0xff // a copy
		if !bytes.Equal(g.Keys()[0], k3) {
			t.Fatal("Keys shares the keyring's bytes")
		}

		plain := c.start("b", memB, nil)
		if plain.Keys() != nil {
			t.Fatalf("a Gossip without keys lists %d", len(plain.Keys()))
		}
		for name, op := range map[string]func([]byte) error{"install": plain.InstallKey, "use": plain.UseKey, "remove": plain.RemoveKey} {
			if err := op(k1); !errors.Is(err, ErrNoKeyring) {
				t.Errorf("%s without a keyring: %v, want ErrNoKeyring", name, err)
			}
		}
		_ = g.Close()
		if err := g.InstallKey(k1); !errors.Is(err, ErrClosed) {
			t.Errorf("install after Close: %v, want ErrClosed", err)
		}
	})
	goleak.VerifyNone(t)
}

// A node with another key, or with none, cannot join a keyed cluster, and
// the cluster's membership is unchanged.
func TestWrongOrMissingKeyNotAdmitted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newMemCluster(t)
		key := testKey(1)
		a := c.start("a", memA, withKeys(key))
		b := c.start("b", memB, withKeys(key))
		c.join(b, a)
		c.wait("a and b together", allSee([]*Gossip{a, b}, "a", "b"))

		for _, tc := range []struct {
			id, addr string
			keys     [][]byte
		}{
			{"wrong", memC, [][]byte{testKey(2)}},
			{"nokey", "10.0.0.4:7946", nil},
			// The right key as a secondary does not help: it sends with
			// the primary.
			{"secondary", "10.0.0.5:7946", [][]byte{testKey(2), key}},
		} {
			before := []Metrics{a.Metrics(), b.Metrics()}
			x := c.start(tc.id, tc.addr, withKeys(tc.keys...))
			if k, err := x.Join([]string{a.Addr(), b.Addr()}); k != 0 || !errors.Is(err, ErrJoin) {
				t.Errorf("%s joined %d seeds (%v), want none", tc.id, k, err)
			}
			time.Sleep(10 * a.cfg.ProbeInterval)
			if err := allSee([]*Gossip{a, b}, "a", "b")(); err != nil {
				t.Errorf("after %s tried: %v", tc.id, err)
			}
			if got := statuses(x); !maps.Equal(got, map[string]Status{tc.id: StatusAlive}) {
				t.Errorf("%s sees %v, want only itself", tc.id, got)
			}
			for i, g := range []*Gossip{a, b} {
				if m := g.Metrics(); m.Members != 2 || m.Joins != before[i].Joins {
					t.Errorf("%s after %s tried: %d members, %d joins; want 2, %d", g.cfg.Meta.ID, tc.id, m.Members, m.Joins, before[i].Joins)
				}
			}
		}
	})
	goleak.VerifyNone(t)
}

// lineLog collects log lines; it is safe for concurrent use.
type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

// since returns the lines logged after the first n.
func (l *lineLog) since(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines[n:])
}

func (l *lineLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

// A rotation on a running cluster (install the new key everywhere, use it
// everywhere, remove the old one everywhere, a node at a time) keeps every
// member alive throughout: no probe goes unanswered, no message fails to
// decrypt. Afterwards the old key no longer admits a node, and the new one
// does.
func TestKeyRotationKeepsMembersAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &lineLog{}
		c := newMemCluster(t)
		c.log = logs
		old, nw := testKey(1), testKey(2)
		a := c.start("a", memA, withKeys(old))
		b := c.start("b", memB, withKeys(old))
		cc := c.start("c", memC, withKeys(old))
		nodes := []*Gossip{a, b, cc}
		c.join(b, a)
		c.join(cc, a)
		together := allSee(nodes, "a", "b", "c")
		c.wait("three members", together)

		from := logs.len()
		for _, step := range []struct {
			name string
			op   func(*Gossip, []byte) error
			key  []byte
		}{
			{"install new", (*Gossip).InstallKey, nw},
			{"use new", (*Gossip).UseKey, nw},
			{"remove old", (*Gossip).RemoveKey, old},
		} {
			for _, g := range nodes {
				if err := step.op(g, step.key); err != nil {
					t.Fatalf("%s on %s: %v", step.name, g.cfg.Meta.ID, err)
				}
				// Mixed keyrings for a while: several probe rounds and a
				// push-pull between each node's step.
				time.Sleep(5 * a.cfg.ProbeInterval)
				if err := together(); err != nil {
					t.Fatalf("during %s: %v", step.name, err)
				}
			}
		}
		for _, g := range nodes {
			if got := fingerprints(g.Keys()); !slices.Equal(got, fingerprints([][]byte{nw})) {
				t.Errorf("%s holds %v after the rotation, want only the new key", g.cfg.Meta.ID, got)
			}
			if m := g.Metrics(); m.Leaves != 0 {
				t.Errorf("%s saw %d members fail during the rotation", g.cfg.Meta.ID, m.Leaves)
			}
		}
		// memberlist logs every suspicion, failure and message it could
		// not decrypt; none may have happened.
		for _, line := range logs.since(from) {
			if strings.Contains(line, `"component":"memberlist"`) &&
				(strings.Contains(line, `"level":"warn"`) || strings.Contains(line, `"level":"error"`) ||
					strings.Contains(strings.ToLower(line), "suspect")) {
				t.Errorf("during the rotation: %s", line)
			}
		}

		stale := c.start("stale", "10.0.0.4:7946", withKeys(old))
		if k, err := stale.Join([]string{a.Addr()}); k != 0 || err == nil {
			t.Fatalf("a node with only the old key joined: %d, %v", k, err)
		}
		fresh := c.start("fresh", "10.0.0.5:7946", withKeys(nw))
		c.join(fresh, a)
		c.wait("the new key admits a node", allSee(append(nodes, fresh), "a", "b", "c", "fresh"))
	})
	goleak.VerifyNone(t)
}
