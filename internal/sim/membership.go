package sim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Memberships are the membership changes a run can make during its fault
// phase (Config.Membership): a node joins, or a member leaves (in a
// cluster of three, after a node joins, so that n replicas remain), or
// both, one after the other. "random" lets the seed pick one of the three
// or none.
var Memberships = []string{"join", "leave", "both"}

// planMembership decides the run's membership change.
func (r *run) planMembership(rng *rand.Rand) (join, leave bool) {
	m := r.cfg.Membership
	if m == "random" {
		m = append([]string{""}, Memberships...)[rng.IntN(len(Memberships)+1)]
	}
	switch m {
	case "join":
		return true, false
	case "leave":
		return r.cfg.Nodes < 4, true // three nodes cannot lose one
	case "both":
		return true, true
	}
	return false, false
}

// membership makes the run's membership change while the nemesis goes
// on: a join after 2 to 8 s, then a leave 2 to 8 s later, each asked of a
// random running node until one accepts it.
func (r *run) membership(rng *rand.Rand, join, leave bool) {
	if join {
		if !r.sleepFaulting(time.Duration(2000+rng.IntN(6000)) * time.Millisecond) {
			return
		}
		i, err := r.c.TryAdd(nil)
		r.mu.Lock()
		r.joined = append(r.joined, i)
		if err != nil {
			r.crashed[i] = true // started again by a later restart
		}
		r.mu.Unlock()
		r.hist.event(r.since(), "%s joins (started with --join)", r.c.ID(i))
		if err != nil {
			r.hist.event(r.since(), "%s does not start yet: %v", r.c.ID(i), err)
		}
	}
	if !leave {
		return
	}
	if !r.sleepFaulting(time.Duration(2000+rng.IntN(6000)) * time.Millisecond) {
		return
	}
	who := rng.IntN(r.cfg.Nodes) // one of the nodes the run started with
	body, _ := json.Marshal(map[string]string{"node": r.c.ID(who)})
	for r.faultPhase() {
		via, err := r.anyNode(rng)
		if err == nil {
			resp, ok := r.c.Do(via, "POST", "/v1/cluster/leave", body, nil)
			if ok && resp.Status == 200 {
				r.mu.Lock()
				r.leaving = append(r.leaving, who)
				r.mu.Unlock()
				r.hist.event(r.since(), "%s is asked to leave (via %s)", r.c.ID(who), r.c.ID(via))
				return
			}
			if ok && resp.Status != 503 {
				r.hist.event(r.since(), "leave %s refused by %s: %d %s", r.c.ID(who), r.c.ID(via), resp.Status, resp.Body)
			}
		}
		time.Sleep(time.Second)
	}
}

// reapLeft stops the nodes that have left, as their server processes
// exit, and reports whether every node asked to leave has.
func (r *run) reapLeft() bool {
	r.mu.Lock()
	leaving := slices.Clone(r.leaving)
	r.mu.Unlock()
	all := true
	for _, i := range leaving {
		if r.isDeparted(i) {
			continue
		}
		n := r.c.Node(i)
		if n == nil {
			all = false
			continue
		}
		select {
		case <-n.Left():
			r.c.Stop(i)
			r.mu.Lock()
			r.departed[i] = true
			r.mu.Unlock()
			r.hist.event(r.since(), "%s has left; its process exits", r.c.ID(i))
		default:
			all = false
		}
	}
	return all
}

// watchLeft reaps the nodes that leave during the fault phase.
func (r *run) watchLeft() {
	for r.sleepFaulting(250 * time.Millisecond) {
		r.reapLeft()
	}
}

// isLeaving reports whether node id was asked to leave.
func (r *run) isLeaving(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, i := range r.leaving {
		if r.c.ID(i) == id {
			return true
		}
	}
	return false
}

func (r *run) isDeparted(i int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.departed[i]
}

// nodes returns the indices of the cluster's nodes, up or down, except
// those that have left.
func (r *run) nodes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nodesLocked()
}

func (r *run) nodesLocked() []int {
	var out []int
	for i := range r.c.Size() {
		if !r.departed[i] {
			out = append(out, i)
		}
	}
	return out
}

// settled reports whether every node that has not left is up, agrees on
// the committed epoch, and has no membership change in progress.
func (r *run) settled() bool {
	if !r.reapLeft() {
		r.reissueLeaves()
		return false
	}
	var epoch uint64
	for k, i := range r.nodes() {
		n := r.c.Node(i)
		if n == nil {
			return false
		}
		st := n.Status()
		if st.Change != nil || k > 0 && st.Epoch != epoch {
			return false
		}
		epoch = st.Epoch
	}
	return true
}

// membershipSummary says what the run's membership did.
func (r *run) membershipSummary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := ""
	for _, i := range r.joined {
		s += fmt.Sprintf(" +%s", r.c.ID(i))
	}
	for _, i := range r.leaving {
		if r.departed[i] {
			s += fmt.Sprintf(" -%s", r.c.ID(i))
		} else {
			s += fmt.Sprintf(" (-%s)", r.c.ID(i))
		}
	}
	return s
}

// reissueLeaves asks again, as an operator would, for a leave that no
// running node knows of: the node that took it lost its disk before it
// told anyone.
func (r *run) reissueLeaves() {
	r.mu.Lock()
	leaving := slices.Clone(r.leaving)
	r.mu.Unlock()
	for _, i := range leaving {
		if r.isDeparted(i) {
			continue
		}
		id, known, via := r.c.ID(i), false, -1
		for _, j := range r.nodes() {
			n := r.c.Node(j)
			if n == nil {
				continue
			}
			via = j
			for _, m := range n.Status().Members {
				known = known || m.ID == id && m.Intent == "leave"
			}
		}
		if known || via < 0 {
			continue
		}
		body, _ := json.Marshal(map[string]string{"node": id})
		if resp, ok := r.c.Do(via, "POST", "/v1/cluster/leave", body, nil); ok && resp.Status == 200 {
			r.hist.event(r.since(), "%s is asked to leave again (via %s): no node knew of the first request", id, r.c.ID(via))
		}
	}
}
