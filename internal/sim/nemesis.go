package sim

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// nemesis injects faults until the fault phase ends: every 1 to 4 s it
// picks one, and each ends by itself after a while (a crashed node
// restarts, a partition heals). The heal at the end of the phase ends
// whatever is still going on.
func (r *run) nemesis(rng *rand.Rand) {
	type fault func(rng *rand.Rand) (undo func(), what string)
	var faults []struct {
		weight int
		f      fault
	}
	for _, c := range []struct {
		kind   string
		weight int
		f      fault
	}{
		{"partition", 3, r.partition},
		{"oneway", 2, r.oneWay},
		{"crash", 3, r.crash},
		{"wipe", 1, r.wipe},
		{"pause", 2, r.pause},
		{"clock", 2, r.stepClock},
	} {
		if r.faultKinds[c.kind] {
			faults = append(faults, struct {
				weight int
				f      fault
			}{c.weight, c.f})
		}
	}
	total := 0
	for _, f := range faults {
		total += f.weight
	}
	if total == 0 {
		return // only message faults: the fates do it all
	}
	for {
		wait := time.Duration(1000+rng.IntN(3000)) * time.Millisecond
		if !r.sleepFaulting(wait) {
			return
		}
		pick := rng.IntN(total)
		var f fault
		for _, c := range faults {
			if pick -= c.weight; pick < 0 {
				f = c.f
				break
			}
		}
		undo, what := f(rng)
		if what == "" {
			continue
		}
		r.mu.Lock()
		r.faults++
		r.mu.Unlock()
		r.hist.event(r.since(), "%s", what)
		if undo == nil {
			continue
		}
		// Most faults last 2 to 10 s; one in eight lasts 15 to 25 s, longer
		// than a tombstone's grace and its reap memory together.
		d := time.Duration(2000+rng.IntN(8000)) * time.Millisecond
		if rng.IntN(8) == 0 {
			d = time.Duration(15000+rng.IntN(10000)) * time.Millisecond
		}
		r.undos.Go(func() {
			if r.sleepFaulting(d) {
				undo()
			}
		})
	}
}

// sleepFaulting sleeps d of simulated time, or until the fault phase ends;
// it reports whether the phase is still on.
func (r *run) sleepFaulting(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return r.faultPhase()
	case <-r.faulting:
		return false
	}
}

func (r *run) names(is []int) string {
	var out []string
	for _, i := range is {
		out = append(out, r.c.ID(i))
	}
	return strings.Join(out, " ")
}

// partition splits the nodes in two at random.
func (r *run) partition(rng *rand.Rand) (func(), string) {
	ids := r.nodes()
	perm := rng.Perm(len(ids))
	for k, p := range perm {
		perm[k] = ids[p]
	}
	cut := 1 + rng.IntN(len(ids)-1)
	a, b := perm[:cut], perm[cut:]
	r.c.Partition(a, b)
	return func() {
		r.c.Heal()
		r.hist.event(r.since(), "partition %s | %s healed", r.names(a), r.names(b))
	}, fmt.Sprintf("partition %s | %s", r.names(a), r.names(b))
}

// oneWay cuts the traffic from one node to another, in one direction.
func (r *run) oneWay(rng *rand.Rand) (func(), string) {
	ids := r.nodes()
	k := rng.IntN(len(ids))
	i, j := ids[k], ids[(k+1+rng.IntN(len(ids)-1))%len(ids)]
	r.c.Block(i, j, true)
	return func() {
		r.c.Block(i, j, false)
		r.hist.event(r.since(), "block %s -> %s lifted", r.c.ID(i), r.c.ID(j))
	}, fmt.Sprintf("block %s -> %s (one way)", r.c.ID(i), r.c.ID(j))
}

// victim picks a running node that is not paused, leaving at least one
// node running.
func (r *run) victim(rng *rand.Rand) (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var up []int
	for _, i := range r.nodesLocked() {
		if r.c.Running(i) && !r.paused[i] {
			up = append(up, i)
		}
	}
	if len(up) < 2 {
		return 0, false
	}
	return up[rng.IntN(len(up))], true
}

// crash kills a node (kill -9: unsynced writes lost) and restarts it later.
func (r *run) crash(rng *rand.Rand) (func(), string) {
	i, ok := r.victim(rng)
	if !ok {
		return nil, ""
	}
	r.c.Crash(i)
	r.setCrashed(i, true)
	return func() { r.restart(i) }, fmt.Sprintf("kill -9 %s", r.c.ID(i))
}

// wipe crashes a node and loses its disk; it restarts empty.
func (r *run) wipe(rng *rand.Rand) (func(), string) {
	i, ok := r.victim(rng)
	if !ok {
		return nil, ""
	}
	r.c.Wipe(i)
	r.mu.Lock()
	r.wiped[r.c.ID(i)] = append(r.wiped[r.c.ID(i)], r.since())
	r.mu.Unlock()
	r.setCrashed(i, true)
	return func() { r.restart(i) }, fmt.Sprintf("wipe %s (its disk is lost)", r.c.ID(i))
}

func (r *run) setCrashed(i int, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on {
		r.crashed[i] = true
	} else {
		delete(r.crashed, i)
	}
}

// restart starts a crashed node again. r.mu is not held while the node
// starts (which takes simulated time): a goroutine waiting for a mutex is
// not idle to the synctest bubble, whose clock would then never move.
func (r *run) restart(i int) bool {
	r.mu.Lock()
	crashed := r.crashed[i]
	delete(r.crashed, i)
	r.mu.Unlock()
	if !crashed {
		return true
	}
	if err := r.c.TryRestart(i); err != nil {
		// A wiped node that reaches nobody cannot join: it is tried again.
		r.setCrashed(i, true)
		r.hist.event(r.since(), "restart %s failed: %v", r.c.ID(i), err)
		return false
	}
	r.hist.event(r.since(), "restart %s", r.c.ID(i))
	return true
}

// pause stops a node as SIGSTOP does, for longer than the failure
// detector takes to suspect it.
func (r *run) pause(rng *rand.Rand) (func(), string) {
	i, ok := r.victim(rng)
	if !ok {
		return nil, ""
	}
	r.mu.Lock()
	r.paused[i] = true
	r.mu.Unlock()
	r.c.Pause(i)
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.paused[i] {
			r.c.Resume(i)
			delete(r.paused, i)
			r.hist.event(r.since(), "resume %s", r.c.ID(i))
		}
	}, fmt.Sprintf("pause %s (SIGSTOP)", r.c.ID(i))
}

// stepClock steps a node's clock forward or back, to an offset of up to
// two thirds of the tombstone grace from the true time: clocks must agree
// to better than the grace period, which exists to cover a tombstone's
// copies still in flight (the README says so).
func (r *run) stepClock(rng *rand.Rand) (func(), string) {
	ids := r.nodes()
	i := ids[rng.IntN(len(ids))]
	limit := 2 * r.cfg.Grace / 3
	target := time.Duration(rng.Int64N(int64(2*limit))) - limit
	d := target - r.c.Clock(i).Offset()
	r.c.StepClock(i, d)
	return nil, fmt.Sprintf("clock of %s steps %+v (now %+v)", r.c.ID(i), d.Round(time.Millisecond), r.c.Clock(i).Offset().Round(time.Millisecond))
}
