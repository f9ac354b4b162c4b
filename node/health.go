package node

import (
	"fmt"
	"net/http"
)

// Health endpoints for load balancers and orchestrators, open without a
// token (they tell whether the node serves, and why not, nothing else).
// GET /healthz answers while the process serves HTTP; GET /readyz while
// the node should get traffic: its store is open, it has joined (it knows
// the committed ring and is in it, or joining it), and a majority of the
// ring's members are reachable, so that quorum requests can succeed.

// ReadyCheck is one condition of GET /readyz.
type ReadyCheck struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// Readiness is the body of GET /readyz. Missing names the failed checks.
type Readiness struct {
	Ready   bool         `json:"ready"`
	Checks  []ReadyCheck `json:"checks"`
	Missing []string     `json:"missing,omitempty"`
}

// Readiness evaluates the node's readiness checks.
func (n *Node) Readiness() Readiness {
	var r Readiness
	add := func(name string, ok bool, detail string) {
		r.Checks = append(r.Checks, ReadyCheck{Name: name, OK: ok, Detail: detail})
		if !ok {
			r.Missing = append(r.Missing, name)
		}
	}
	if _, err := n.store.Health(); err != nil {
		add("store", false, fmt.Errorf("%w: %w", ErrStoreFailed, err).Error())
	} else {
		add("store", true, "")
	}
	self := n.cfg.ID
	v := n.view.Load()
	switch {
	case v == nil:
		add("joined", false, "no committed ring known yet")
		add("quorum", false, "no ring")
	default:
		in := v.ch.C.Contains(self) || v.ch.T.Contains(self)
		detail := ""
		if !in {
			detail = "not in the committed or the target ring (staged, or leaving done)"
		}
		add("joined", in, detail)
		members := v.ch.C.Members()
		reachable := 0
		for _, m := range members {
			if n.available(m.ID) {
				reachable++
			}
		}
		need := len(members)/2 + 1
		add("quorum", reachable >= need, fmt.Sprintf("%d of %d ring members reachable, %d needed", reachable, len(members), need))
	}
	r.Ready = len(r.Missing) == 0
	return r
}

// handleHealthz serves GET /healthz: the process serves.
func (n *Node) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "node": n.cfg.ID})
}

// handleReadyz serves GET /readyz: 200 when ready, 503 with what is
// missing otherwise.
func (n *Node) handleReadyz(w http.ResponseWriter, _ *http.Request) {
	r := n.Readiness()
	status := http.StatusOK
	if !r.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, r)
}
