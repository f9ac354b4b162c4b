package sim

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/version"
)

// replicaState is what one node stores for a key.
type replicaState struct {
	node string
	set  version.Set
	err  error
}

// replicaStates returns the states of key k on its replicas (by the first
// running node's ring), and on any other node that keeps a record of it.
func (r *run) replicaStates(k string) (replicas, strays []replicaState) {
	ek := store.EncodeKey([]byte(bucket), []byte(k))
	var pref []string
	for _, i := range r.nodes() {
		if n := r.c.Node(i); n != nil {
			p, err := n.Ring().PreferenceList(ek, 3)
			if err == nil {
				pref = p[:3]
			}
			break
		}
	}
	for _, i := range r.nodes() {
		n := r.c.Node(i)
		if n == nil {
			continue
		}
		set, err := n.Store().Get(ek)
		st := replicaState{node: n.ID(), set: set, err: err}
		if slices.Contains(pref, n.ID()) {
			replicas = append(replicas, st)
		} else if len(set.Siblings) > 0 {
			strays = append(strays, st)
		}
	}
	return replicas, strays
}

// agree reports whether two replicas hold the same: equal sets, or
// neither a live nor a deleted version (absent, or reaped: the context a
// reap remembers may differ).
func agree(a, b version.Set) bool {
	if len(a.Siblings) == 0 && len(b.Siblings) == 0 {
		return true
	}
	return a.Equal(b)
}

// converged reports whether every key's replicas agree, no node keeps a
// record of a key it does not replicate, and no hint is pending.
func (r *run) converged() bool {
	if !r.settled() {
		return false
	}
	for _, i := range r.nodes() {
		n := r.c.Node(i)
		if n == nil {
			return false
		}
		if n.Status().HintMetrics.PendingHints != 0 {
			return false
		}
	}
	for _, k := range r.keys {
		replicas, strays := r.replicaStates(k)
		if len(strays) > 0 || len(replicas) != 3 {
			return false
		}
		for _, st := range replicas {
			if st.err != nil || !agree(st.set, replicas[0].set) {
				return false
			}
		}
	}
	return true
}

// converge waits, in simulated time, until the replicas converge or
// ConvergeWithin passes, and reports how long it took.
func (r *run) converge() (bool, time.Duration) {
	start := time.Now()
	for time.Since(start) < r.cfg.ConvergeWithin {
		if r.converged() {
			took := time.Since(start)
			r.hist.event(r.since(), "converged %v after the heal", took)
			return true, took
		}
		time.Sleep(250 * time.Millisecond)
	}
	return r.converged(), time.Since(start)
}

// divergence describes what each node holds for the keys whose replicas
// disagree.
func (r *run) divergence() string {
	var b strings.Builder
	if !r.settled() {
		b.WriteString("  the membership change is not over\n")
	}
	for _, i := range r.nodes() {
		if n := r.c.Node(i); n != nil {
			if p := n.Status().HintMetrics.PendingHints; p > 0 {
				fmt.Fprintf(&b, "  %s has %d pending hints\n", n.ID(), p)
			}
		}
	}
	for _, k := range r.keys {
		replicas, strays := r.replicaStates(k)
		same := len(strays) == 0
		for _, st := range replicas {
			same = same && st.err == nil && agree(st.set, replicas[0].set)
		}
		if same {
			continue
		}
		fmt.Fprintf(&b, "  %s:\n", k)
		for _, st := range replicas {
			fmt.Fprintf(&b, "    replica %s: %s %v\n", st.node, fmtSet(st.set), st.err)
		}
		for _, st := range strays {
			fmt.Fprintf(&b, "    stray on %s: %s\n", st.node, fmtSet(st.set))
		}
	}
	return b.String()
}

func fmtSet(s version.Set) string {
	if len(s.Siblings) == 0 {
		if s.IsEmpty() {
			return "absent"
		}
		return "reaped"
	}
	var parts []string
	for _, sib := range s.Siblings {
		v := string(sib.Value)
		if sib.Deleted {
			v = "<deleted>"
		}
		parts = append(parts, sib.Dot.String()+"="+v)
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// finalRead reads k with r=all, retrying while it fails.
func (r *run) finalRead(k string, via int) ([]string, error) {
	var last string
	nodes := r.nodes()
	for attempt := range 20 {
		i := nodes[(via+attempt)%len(nodes)]
		resp, ok := r.c.Do(i, "GET", "/v1/kv/"+bucket+"/"+k+"?r=all", nil, map[string]string{"Accept": "application/json"})
		if ok && (resp.Status == 200 || resp.Status == 300 || resp.Status == 404) {
			var env node.Envelope
			if err := json.Unmarshal(resp.Body, &env); err != nil {
				return nil, fmt.Errorf("final read of %s: %v", k, err)
			}
			return elements(env), nil
		}
		last = fmt.Sprintf("%d %s", resp.Status, resp.Body)
		time.Sleep(time.Second)
	}
	return nil, fmt.Errorf("final r=all read of %s failed 20 times: %s", k, last)
}

// allWiped reports whether lost disks can explain that op's write is
// gone: it was acknowledged by len(op.Replicas) nodes, each holding a
// durable copy, and copies move (a hint handed to its owner) but never
// fewer than that many exist until disks are lost. So at least as many
// disks must have been lost after the acknowledgement.
func (r *run) allWiped(op Op) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(op.Replicas) == 0 {
		return false
	}
	wipes := 0
	for _, at := range r.wiped {
		for _, t := range at {
			if t >= op.Complete {
				wipes++
			}
		}
	}
	return wipes >= len(op.Replicas)
}

// check counts the history and runs the checkers.
func (r *run) check(res *Result) {
	ops := r.hist.Ops()
	attempted := map[string]map[string]bool{} // key -> elements some add tried
	for _, op := range ops {
		res.Ops++
		switch op.Outcome {
		case OK:
			res.Acked++
			switch op.Kind {
			case "add":
				res.AckedAdds++
			case "delete":
				res.AckedDeletes++
			}
		case Failed:
			res.Failed++
		case Unknown:
			res.Unknown++
		}
		if op.Element != "" {
			if attempted[op.Key] == nil {
				attempted[op.Key] = map[string]bool{}
			}
			attempted[op.Key][op.Element] = true
		}
	}
	problem := func(format string, a ...any) {
		res.Problems = append(res.Problems, fmt.Sprintf(format, a...))
	}

	// Phantoms: anything read that no client tried to add to that key.
	phantom := func(k, e, where string) {
		if !attempted[k][e] {
			res.Phantoms++
			problem("phantom: %s read %q, which no client tried to add", where, e)
		}
	}
	for _, op := range ops {
		for _, e := range op.Seen {
			phantom(op.Key, e, fmt.Sprintf("c%d's %s of %s at %v", op.Client, op.Kind, op.Key, op.Invoke))
		}
	}

	// Lost: every acknowledged add is in the final read, unless a delete
	// saw its element (and so may have removed it).
	final := map[string][]string{}
	for i, k := range r.keys {
		elems, err := r.finalRead(k, i)
		if err != nil {
			problem("%v", err)
			continue
		}
		final[k] = elems
		for _, e := range elems {
			phantom(k, e, "the final read of "+k)
		}
	}
	for _, op := range ops {
		if op.Kind != "add" || op.Outcome != OK {
			continue
		}
		elems, ok := final[op.Key]
		if !ok || slices.Contains(elems, op.Element) {
			continue
		}
		excused := slices.ContainsFunc(ops, func(d Op) bool {
			return d.Kind == "delete" && d.Key == op.Key && slices.Contains(d.Seen, op.Element)
		})
		if !excused && r.allWiped(op) {
			// Every node that acknowledged it lost its disk afterwards:
			// with w=1 the write had one copy, and a lost disk took it.
			res.LostToWipes++
			continue
		}
		if !excused {
			res.Lost++
			problem("lost: %s, acknowledged as dot %s, is not in the final read of %s %v, and no delete saw it\n%s", op.Element, op.Dot, op.Key, elems, r.whereIs(op.Key, op.Dot))
		}
	}

	// Resurrected: no replica may hold a live version whose dot the
	// context of an acknowledged delete covers, unless every node that
	// acknowledged every such delete lost its disk afterwards (the
	// delete itself was lost, as a write would be).
	seen := map[string]bool{}
	for _, k := range r.keys {
		replicas, strays := r.replicaStates(k)
		for _, st := range append(replicas, strays...) {
			for _, sib := range st.set.Live() {
				id := k + "/" + sib.Dot.String()
				if seen[id] {
					continue
				}
				var covering []Op
				survived := false
				for _, op := range ops {
					if op.Kind == "delete" && op.Key == k && op.Outcome == OK && op.Context.Covers(sib.Dot) {
						covering = append(covering, op)
						survived = survived || !r.allWiped(op)
					}
				}
				if len(covering) == 0 {
					continue
				}
				seen[id] = true
				if !survived {
					res.LostToWipes++
					continue
				}
				res.Resurrected++
				problem("resurrected: %s on %s holds live %s=%q, which c%d's delete at %v (acknowledged by %v) covered",
					k, st.node, sib.Dot, sib.Value, covering[0].Client, covering[0].Invoke, covering[0].Replicas)
			}
		}
	}
}

// whereIs describes, node by node, what holds dot d of key k: the record
// and every hint, and whether each holds the version or only covers it.
func (r *run) whereIs(k string, d version.Dot) string {
	ek := store.EncodeKey([]byte(bucket), []byte(k))
	var b strings.Builder
	describe := func(what string, s version.Set) {
		switch {
		case s.Has(d):
			fmt.Fprintf(&b, "      %s holds it: %s\n", what, fmtSet(s))
		case s.Context.Covers(d):
			fmt.Fprintf(&b, "      %s covers it without holding it: %s\n", what, fmtSet(s))
		}
	}
	for _, i := range r.nodes() {
		n := r.c.Node(i)
		if n == nil {
			continue
		}
		st := n.Store()
		if s, err := st.Get(ek); err == nil {
			describe(n.ID()+"'s record", s)
		}
		for _, owner := range st.HintOwners() {
			if h, err := st.Hint(owner, ek); err == nil {
				describe(n.ID()+"'s hint for "+owner, h)
			}
		}
	}
	return b.String()
}
