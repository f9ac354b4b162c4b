package gossip

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// memCluster runs Gossips on a MemNetwork. Create it inside a
// testing/synctest bubble: time is then fake, and waiting costs nothing.
type memCluster struct {
	t       *testing.T
	net     *MemNetwork
	changed chan struct{} // any node's OnChange, coalesced
	nodes   []*Gossip
	// log, if set, receives every node's log instead of testLogger's.
	log io.Writer
}

// newMemCluster returns an empty cluster whose nodes are closed when the
// test ends.
func newMemCluster(t *testing.T) *memCluster {
	c := &memCluster{t: t, net: NewMemNetwork(), changed: make(chan struct{}, 1)}
	t.Cleanup(func() {
		for _, g := range c.nodes {
			_ = g.Close()
		}
		time.Sleep(memClusterSettle)
	})
	return c
}

// start starts node id on addr with a staged-or-not join intent; edit, if
// not nil, adjusts its configuration first.
func (c *memCluster) start(id, addr string, edit func(*Config)) *Gossip {
	c.t.Helper()
	tr, err := c.net.NewTransport(addr)
	if err != nil {
		c.t.Fatal(err)
	}
	cfg := DefaultConfig().Fast()
	cfg.Transport = tr
	cfg.Meta = Meta{ID: id, Cluster: "memnet", HTTPAddr: "http://" + id, RPCAddr: "rpc://" + id, State: StateUp, Intent: IntentJoin}
	cfg.OnChange = func() {
		select {
		case c.changed <- struct{}{}:
		default:
		}
	}
	if edit != nil {
		edit(&cfg)
	}
	log := testLogger()
	if c.log != nil {
		log = zerolog.New(c.log).With().Str("node", id).Logger()
	}
	g, err := New(cfg, log)
	if err != nil {
		_ = tr.Shutdown()
		c.t.Fatalf("New(%s): %v", id, err)
	}
	c.nodes = append(c.nodes, g)
	return g
}

// join joins g to the cluster through seed.
func (c *memCluster) join(g, seed *Gossip) {
	c.t.Helper()
	if k, err := g.Join([]string{seed.Addr()}); k != 1 || err != nil {
		c.t.Fatalf("%s joining %s: %d, %v", g.cfg.Meta.ID, seed.cfg.Meta.ID, k, err)
	}
}

// wait checks cond after every OnChange until it holds, failing the test
// after a minute of fake time.
func (c *memCluster) wait(what string, cond func() error) {
	c.t.Helper()
	took := waitChange(c.t, c.changed, time.Minute, what, cond)
	c.t.Logf("%s after %v", what, took)
}

// allSee is a condition: every node in nodes lists exactly ids, alive.
func allSee(nodes []*Gossip, ids ...string) func() error {
	return func() error {
		for _, g := range nodes {
			st := statuses(g)
			if len(st) != len(ids) {
				return fmt.Errorf("%s sees %v, want %v alive", g.cfg.Meta.ID, st, ids)
			}
			for _, id := range ids {
				if st[id] != StatusAlive {
					return fmt.Errorf("%s sees %v, want %v alive", g.cfg.Meta.ID, st, ids)
				}
			}
		}
		return nil
	}
}

// everyone is a condition: check holds for member id as every node in
// nodes sees it.
func everyone(nodes []*Gossip, id string, check func(Meta) error) func() error {
	return func() error {
		for _, g := range nodes {
			m, ok := g.Member(id)
			if !ok {
				return fmt.Errorf("%s does not know %s", g.cfg.Meta.ID, id)
			}
			if err := check(m.Meta); err != nil {
				return fmt.Errorf("%s sees %s: %v", g.cfg.Meta.ID, id, err)
			}
		}
		return nil
	}
}
