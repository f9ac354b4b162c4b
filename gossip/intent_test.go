package gossip

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/quorumkv/quorumkv/internal/clock"
)

func TestSetIntent(t *testing.T) {
	g := bareGossip("a", "c")
	clk := clock.NewFake()
	g.clk = clk
	now := clk.Now().UnixNano()
	g.tbl.setMember(versioned{Meta: Meta{ID: "b", Cluster: "c", State: StateUp, Joined: 50}, Ver: 3})
	g.tbl.setMember(versioned{Meta: Meta{ID: "gone", Cluster: "c", State: StateRemoved}, Ver: 3})

	for _, tc := range []struct {
		name string
		id   string
		in   Intent
		err  error
	}{
		{"unknown member", "zz", Intent{Intent: IntentLeave}, ErrUnknownMember},
		{"tombstone", "gone", Intent{Intent: IntentJoin}, ErrRemoved},
		{"no intent", "b", Intent{}, ErrBadMeta},
		{"unknown intent", "b", Intent{Intent: "evict"}, ErrBadMeta},
		{"long seed", "b", Intent{Intent: IntentJoin, Seed: strings.Repeat("s", MaxIDLen+1)}, ErrBadMeta},
		{"negative join time", "b", Intent{Intent: IntentJoin, Joined: -1}, ErrBadMeta},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := g.SetIntent(tc.id, tc.in); !errors.Is(err, tc.err) {
				t.Fatalf("SetIntent = %v, want %v", err, tc.err)
			}
		})
	}
	if n := len(g.queue.GetBroadcasts(0, 1400)); n != 0 {
		t.Fatalf("failed calls queued %d broadcasts", n)
	}

	// Each call outbids the last even if the clock stands still, and is
	// at least the clock's reading.
	var last int64
	for i, tc := range []struct {
		in         Intent
		wantJoined int64
	}{
		{Intent{Intent: IntentLeave, Staged: true}, 50},
		{Intent{Intent: IntentJoin, Seed: "old", Joined: 10}, 10}, // a replacement takes the old join time
		{Intent{Intent: IntentJoin, Seed: "old", Joined: 99}, 10}, // never a later one
		{Intent{Intent: IntentRemove}, 10},
	} {
		m, err := g.SetIntent("b", tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if m.Intent != tc.in.Intent || m.Staged != tc.in.Staged || m.Seed != tc.in.Seed || m.Joined != tc.wantJoined {
			t.Fatalf("call %d: meta %+v, want %+v joined %d", i, m, tc.in, tc.wantJoined)
		}
		if m.IntentVer < now || m.IntentVer <= last {
			t.Fatalf("call %d: intent version %d, want >= %d and > %d", i, m.IntentVer, now, last)
		}
		last = m.IntentVer
		if got, _ := g.Member("b"); got.Meta != m {
			t.Fatalf("call %d: table holds %+v, returned %+v", i, got.Meta, m)
		}
		// The whole entry is broadcast.
		msgs := g.queue.GetBroadcasts(0, 1400)
		if len(msgs) != 1 {
			t.Fatalf("call %d: %d broadcasts queued, want 1", i, len(msgs))
		}
		if dm, err := decodeMessage(msgs[0]); err != nil || dm.member == nil || dm.member.Meta != m {
			t.Fatalf("call %d: broadcast %+v, %v", i, dm.member, err)
		}
	}
	if got, _ := g.Member("b"); got.Meta.HTTPAddr != "" || got.Meta.State != StateUp {
		t.Fatalf("SetIntent touched node-owned fields: %+v", got.Meta)
	}
	if _, err := g.SetIntent("a", Intent{Intent: IntentLeave}); err != nil {
		t.Fatalf("SetIntent on self: %v", err)
	}
	if m, _ := g.Member("a"); m.Meta.Intent != IntentLeave {
		t.Fatalf("self holds %+v", m.Meta)
	}
	clk.Advance(time.Hour)
	if m, _ := g.SetIntent("b", Intent{Intent: IntentJoin}); m.IntentVer != clk.Now().UnixNano() {
		t.Fatalf("intent version %d, want the clock's %d", m.IntentVer, clk.Now().UnixNano())
	}
}

// hasGroup checks a member's operator group.
func hasGroup(want opGroup) func(Meta) error {
	return func(m Meta) error {
		if m.group() != want {
			return fmt.Errorf("group %+v, want %+v", m.group(), want)
		}
		return nil
	}
}

// An operator's intent set on one node reaches every node, the target's
// own entry included; the target's later UpdateMeta spreads its own fields
// but cannot undo the intent, nor can a restart from a wiped disk; a
// replacement takes an earlier join time; a tombstone takes no intent.
func TestIntentSpreadsAndBeatsTheTarget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newMemCluster(t)
		a := c.start("a", memA, nil)
		b := c.start("b", memB, nil)
		x := c.start("x", memC, func(cfg *Config) {
			cfg.Meta.Staged = true  // the node's --stage flag
			cfg.Meta.IntentVer = 99 // ignored: the initial intent is at version 0
		})
		nodes := []*Gossip{a, b, x}
		c.join(b, a)
		c.join(x, a)
		c.wait("three alive members", allSee(nodes, "a", "b", "x"))
		c.wait("x's initial intent everywhere", everyone(nodes, "x", hasGroup(opGroup{Intent: IntentJoin, Staged: true})))

		set, err := a.SetIntent("x", Intent{Intent: IntentLeave, Staged: true})
		if err != nil {
			t.Fatal(err)
		}
		if set.IntentVer <= 0 || set.MemberIntent() != IntentLeave {
			t.Fatalf("SetIntent returned %+v", set)
		}
		c.wait("the operator's intent everywhere, x included", everyone(nodes, "x", hasGroup(set.group())))

		// x advertises progress later; the operator-owned fields of its
		// argument, however recent they claim to be, are ignored.
		m := self(t, x)
		m.Seen, m.Synced = 7, 6
		m.Intent, m.Staged, m.IntentVer = IntentJoin, false, math.MaxInt64
		if err := x.UpdateMeta(m); err != nil {
			t.Fatal(err)
		}
		c.wait("x's progress with the operator's intent everywhere", everyone(nodes, "x", func(m Meta) error {
			if m.Seen != 7 || m.Synced != 6 {
				return fmt.Errorf("seen %d, synced %d; want 7, 6", m.Seen, m.Synced)
			}
			return hasGroup(set.group())(m)
		}))

		// A replacement takes the old node's seed and join time; the
		// earliest join time sticks, on the node itself too.
		rep, err := a.SetIntent("b", Intent{Intent: IntentJoin, Seed: "old", Joined: 1})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Joined != 1 || rep.RingSeed() != "old" {
			t.Fatalf("SetIntent returned %+v", rep)
		}
		mb := self(t, b) // b may not have heard yet: it may still hold its own
		mb.Joined = 0
		if err := b.UpdateMeta(mb); err != nil {
			t.Fatal(err)
		}
		c.wait("b's new seed and join time everywhere", everyone(nodes, "b", func(m Meta) error {
			if m.Joined != 1 {
				return fmt.Errorf("joined %d, want 1", m.Joined)
			}
			return hasGroup(rep.group())(m)
		}))

		// x restarts on a wiped disk with its initial intent: the
		// cluster's remembers the operator's, and x learns it back.
		_ = x.Close()
		c.wait("x dead", func() error {
			for _, g := range []*Gossip{a, b} {
				if m, _ := g.Member("x"); m.Status != StatusDead {
					return fmt.Errorf("%s sees x %v", g.cfg.Meta.ID, m.Status)
				}
			}
			return nil
		})
		x = c.start("x", memC, nil)
		if m := self(t, x); m.group() != (opGroup{Intent: IntentJoin}) {
			t.Fatalf("wiped x starts with %+v", m.group())
		}
		c.join(x, b)
		nodes = []*Gossip{a, b, x}
		c.wait("the operator's intent everywhere after x's restart", everyone(nodes, "x", hasGroup(set.group())))

		// A tombstone takes no intent.
		if err := a.Remove("x"); err != nil {
			t.Fatal(err)
		}
		c.wait("b to see x removed", func() error {
			if m, _ := b.Member("x"); !m.Meta.Removed() {
				return fmt.Errorf("b sees x %+v", m.Meta)
			}
			return nil
		})
		if _, err := b.SetIntent("x", Intent{Intent: IntentJoin}); !errors.Is(err, ErrRemoved) {
			t.Fatalf("SetIntent on a tombstone = %v, want ErrRemoved", err)
		}
	})
	goleak.VerifyNone(t)
}

// A node restarted from its persisted state keeps the intent an operator
// set over the initial intent of its configuration.
func TestRestartKeepsPersistedIntent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newMemCluster(t)
		a := c.start("a", memA, nil)
		set, err := a.SetIntent("a", Intent{Intent: IntentRemove, Staged: true, Seed: "s"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := EncodeState(a.State())
		if err != nil {
			t.Fatal(err)
		}
		st, err := DecodeState(b)
		if err != nil {
			t.Fatal(err)
		}
		_ = a.Close()
		a = c.start("a", memA, func(cfg *Config) { cfg.Initial = st })
		if m := self(t, a); m.group() != set.group() {
			t.Fatalf("restarted with %+v, want the persisted %+v", m.group(), set.group())
		}
	})
	goleak.VerifyNone(t)
}
