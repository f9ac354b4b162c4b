package node_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/quorumkv/quorumkv/handoff"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/version"
)

// Membership commands of the cluster scripts:
//
//	add [stage] [transfer-rate=B]   start one more node joining the running ones
//	leave NODE [via=NODE] [stage] [force]
//	remove NODE [via=NODE] [stage] [force]
//	replace OLD NEW [via=NODE] [stage] [force]
//	commit [via=NODE]   clear [via=NODE]   plan [via=NODE] [waiting]
//	await change [limit=D]   await left NODE [limit=D]   await transfer NODE partitions=K
//	rings [layout]   every running node's committed epoch and ring, and
//	                 a hash of its layout (members, seeds, join times)
//	placed BUCKET/PREFIX keys=N [n=3]
//	                 where fill's keys are: per key, how many of its
//	                 committed replicas hold the value written; and how
//	                 many rows sit on nodes that are not replicas
//	transfers NODE   a node's partitions done (with the keys received)
//	                 and those begun
//	disk NODE        a node's hand-off summary
//
// via= picks the node that takes the operator's command (n1 by default).

func (s *script) membership(d *datadriven.TestData, pos []string) (string, error) {
	via := 0
	if v := arg(d, "via", ""); v != "" {
		i, err := s.node(v)
		if err != nil {
			return "", err
		}
		via = i
	}
	flag := func(name string) bool { return slices.Contains(pos, name) }
	switch d.Cmd {
	case "add":
		i := s.c.Add(func(cfg *node.Config) {
			cfg.Stage = flag("stage")
			if v := arg(d, "transfer-rate", ""); v != "" {
				cfg.TransferRate, _ = strconv.ParseInt(v, 10, 64)
			}
		})
		return s.c.ID(i) + "\n", nil
	case "leave", "remove":
		if len(pos) < 1 {
			return "", fmt.Errorf("%s NODE", d.Cmd)
		}
		body := map[string]any{"node": pos[0], "stage": flag("stage"), "force": flag("force")}
		return s.admin(via, d.Cmd, body)
	case "replace":
		if len(pos) < 2 {
			return "", fmt.Errorf("replace OLD NEW")
		}
		body := map[string]any{"old": pos[0], "new": pos[1], "stage": flag("stage"), "force": flag("force")}
		return s.admin(via, d.Cmd, body)
	case "commit", "clear":
		return s.admin(via, d.Cmd, nil)
	case "plan":
		r, ok := s.c.Do(via, "GET", "/v1/cluster/plan", nil, nil)
		if !ok || r.Status != 200 {
			return "", fmt.Errorf("plan: %d %s", r.Status, r.Body)
		}
		var p node.Plan
		if err := json.Unmarshal(r.Body, &p); err != nil {
			return "", err
		}
		return describePlan(p, flag("waiting")), nil
	case "rings":
		var b strings.Builder
		nodes, _ := s.targets(nil)
		for _, i := range nodes {
			st := s.c.Node(i).Status()
			var ring []string
			for _, m := range st.Members {
				if m.InRing {
					ring = append(ring, m.ID)
				}
			}
			fmt.Fprintf(&b, "%s: epoch=%d ring=%s", s.c.ID(i), st.Epoch, strings.Join(ring, ","))
			if r := s.c.Node(i).Ring(); r != nil && flag("layout") {
				// Join times come from the clock: stable only for the
				// nodes a script starts with.
				fmt.Fprintf(&b, " layout=%08x", r.Version()>>32)
			}
			b.WriteString("\n")
		}
		return b.String(), nil
	case "placed":
		return s.placed(d, pos)
	case "transfers":
		i, err := s.node(pos[0])
		if err != nil {
			return "", err
		}
		st := s.c.Node(i).Status().Transfers
		var b strings.Builder
		fmt.Fprintf(&b, "%s: partitions=%d/%d\n", st.Node, st.Done, st.Total)
		for _, p := range st.Transfers {
			switch {
			case p.State == handoff.StateDone:
				fmt.Fprintf(&b, "  p%d done keys=%d\n", p.Partition, p.Keys)
			case p.State != handoff.StateQueued && p.Keys > 0:
				// How far is a matter of timing; that it began is not.
				fmt.Fprintf(&b, "  p%d begun\n", p.Partition)
			}
		}
		return b.String(), nil
	case "disk":
		i, err := s.node(pos[0])
		if err != nil {
			return "", err
		}
		st := s.c.Node(i).Lost()
		return fmt.Sprintf("%s: pending=%d finished=%d rows-dropped=%d\n", s.c.ID(i), len(st.Pending), st.PartitionsFinished, st.RowsDropped), nil
	}
	return "", fmt.Errorf("unknown command %q", d.Cmd)
}

// admin posts an administration command and prints its outcome.
func (s *script) admin(via int, op string, body map[string]any) (string, error) {
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	r, ok := s.c.Do(via, "POST", "/v1/cluster/"+op, b, nil)
	if !ok {
		return "", fmt.Errorf("%s: %s is down", op, s.c.ID(via))
	}
	if r.Status != 200 {
		var e struct{ Code, Error string }
		_ = json.Unmarshal(r.Body, &e)
		return fmt.Sprintf("%d %s: %s\n", r.Status, e.Code, e.Error), nil
	}
	var p node.Plan
	if err := json.Unmarshal(r.Body, &p); err != nil {
		return "", err
	}
	return "200\n" + describePlan(p, false), nil
}

// describePlan prints a plan without its per-partition detail.
func describePlan(p node.Plan, waiting bool) string {
	var b strings.Builder
	change := func(name string, c node.PlanChange) {
		fmt.Fprintf(&b, "%s: changing=%v committed=%s target=%s", name, c.Changing, strings.Join(c.Committed, ","), strings.Join(c.Target, ","))
		for _, l := range []struct {
			k string
			v []string
		}{{"joining", c.Joining}, {"leaving", c.Leaving}, {"removing", c.Removing}} {
			if len(l.v) > 0 {
				fmt.Fprintf(&b, " %s=%s", l.k, strings.Join(l.v, ","))
			}
		}
		b.WriteString("\n")
		if len(c.WaitingSeen) > 0 && waiting {
			fmt.Fprintf(&b, "  waiting to see it: %s\n", strings.Join(c.WaitingSeen, ","))
		}
		if c.Error != "" {
			fmt.Fprintf(&b, "  error: %s\n", c.Error)
		}
		gains := map[string]int{}
		for _, m := range c.Moves {
			gains[m.To]++
		}
		for _, id := range slices.Sorted(maps.Keys(gains)) {
			fmt.Fprintf(&b, "  %s gains %d partitions\n", id, gains[id])
		}
		if c.Changing {
			fmt.Fprintf(&b, "  moving: %d partitions, %d keys\n", c.Partitions, c.Keys)
		}
	}
	change("current", p.Current)
	for _, st := range p.Staged {
		fmt.Fprintf(&b, "staged: %s %s", st.Node, st.Intent)
		if st.Replaces != "" {
			fmt.Fprintf(&b, " replacing %s", st.Replaces)
		}
		b.WriteString("\n")
	}
	if p.AfterCommit != nil {
		change("after commit", *p.AfterCommit)
	}
	return b.String()
}

// awaitChange waits until every running node has committed the same ring
// and no change is in progress, then prints it.
func (s *script) awaitChange(limit time.Duration) (string, error) {
	var last string
	s.c.Await(limit, "the membership change to complete", func() bool {
		nodes, _ := s.targets(nil)
		var seen string
		for _, i := range nodes {
			st := s.c.Node(i).Status()
			if st.Change != nil || st.Epoch == 0 {
				return false
			}
			var ring []string
			for _, m := range st.Members {
				if m.InRing {
					ring = append(ring, m.ID)
				} else if m.Intent == "leave" || m.Intent == "remove" {
					return false // a departed member not tombstoned yet
				}
			}
			cur := fmt.Sprintf("epoch=%d ring=%s", st.Epoch, strings.Join(ring, ","))
			if seen != "" && cur != seen {
				return false
			}
			seen = cur
		}
		last = seen
		return true
	})
	return last + "\n", nil
}

// awaitLeft waits until node i has left the cluster, then stops it, as
// its server process exits.
func (s *script) awaitLeft(i int, limit time.Duration) {
	s.c.Await(limit, s.c.ID(i)+" to leave", func() bool {
		select {
		case <-s.c.Node(i).Left():
			return true
		default:
			return false
		}
	})
	s.c.Stop(i)
}

// placed checks where fill's keys are against node 0's committed ring.
func (s *script) placed(d *datadriven.TestData, pos []string) (string, error) {
	if len(pos) != 1 {
		return "", fmt.Errorf("placed BUCKET/PREFIX keys=N [n=3]")
	}
	keys, err := strconv.Atoi(arg(d, "keys", ""))
	if err != nil {
		return "", fmt.Errorf("placed: keys=N: %v", err)
	}
	n, err := strconv.Atoi(arg(d, "n", "3"))
	if err != nil {
		return "", err
	}
	nodes, _ := s.targets(nil)
	r := s.c.Node(nodes[0]).Ring()
	holding := map[int]int{}
	strays := 0
	for k := range keys {
		key, err := encodedKey(fmt.Sprintf("%s%d", pos[0], k))
		if err != nil {
			return "", err
		}
		pref, err := r.PreferenceList(key, n)
		if err != nil {
			return "", err
		}
		pref = pref[:n]
		held := 0
		for _, i := range nodes {
			set, err := s.c.Node(i).Store().Get(key)
			if err != nil {
				return "", err
			}
			if slices.Contains(pref, s.c.ID(i)) {
				if holds(set, fmt.Sprint("v", k)) {
					held++
				}
			} else if !set.IsEmpty() {
				strays++
			}
		}
		holding[held]++
	}
	var b strings.Builder
	for _, h := range slices.Sorted(maps.Keys(holding)) {
		fmt.Fprintf(&b, "%d of %d replicas hold it: %d keys\n", h, n, holding[h])
	}
	fmt.Fprintf(&b, "rows on nodes that are not replicas: %d\n", strays)
	return b.String(), nil
}

// holds reports whether set is the single live value v.
func holds(set version.Set, v string) bool {
	return len(set.Siblings) == 1 && !set.Siblings[0].Deleted && string(set.Siblings[0].Value) == v
}
