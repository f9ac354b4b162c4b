package quorum

import "fmt"

// Target is one node a request goes to.
type Target struct {
	Node string
	// HintFor names the unreachable primary this node stands in for. The
	// node keeps the write as a durable hint for it and hands it back.
	HintFor string
	// Counts is false for a hint kept on a node that already counts as a
	// replica of the key (every node is a primary): it adds durability but
	// not a distinct replica.
	Counts bool
}

// Fallback reports whether the target is not one of the key's primaries.
func (t Target) Fallback() bool { return t.HintFor != "" && t.Counts }

// Plan picks where a request for a key goes: every available primary among
// the first n of the preference list, and for each unavailable primary the
// next available fallback after them. When no fallback is left (every node
// is a primary), the unavailable primary's write is kept as a hint on the
// first available primary, preferring self, which does not count as an
// extra replica. The plan is deterministic for the same inputs.
func Plan(pref []string, n int, available func(string) bool, self string) ([]Target, error) {
	if n < 1 || n > len(pref) {
		return nil, fmt.Errorf("%w: n=%d with %d nodes", ErrBadParam, n, len(pref))
	}
	var targets []Target
	var down []string
	next := n
	hintHolder := ""
	for _, p := range pref[:n] {
		if available(p) {
			targets = append(targets, Target{Node: p, Counts: true})
			if hintHolder == "" || p == self {
				hintHolder = p
			}
		} else {
			down = append(down, p)
		}
	}
	for _, p := range down {
		for next < len(pref) && !available(pref[next]) {
			next++
		}
		if next < len(pref) {
			targets = append(targets, Target{Node: pref[next], HintFor: p, Counts: true})
			next++
			continue
		}
		if hintHolder != "" {
			targets = append(targets, Target{Node: hintHolder, HintFor: p, Counts: false})
		}
	}
	return targets, nil
}

// Spares returns the nodes of the preference list past the first n that
// are available and not among targets, in order: where a write goes when
// a fallback it planned keeps nothing (its hint budget is full).
func Spares(pref []string, n int, targets []Target, available func(string) bool) []string {
	var out []string
next:
	for _, p := range pref[min(n, len(pref)):] {
		if !available(p) {
			continue
		}
		for _, t := range targets {
			if t.Node == p {
				continue next
			}
		}
		out = append(out, p)
	}
	return out
}
