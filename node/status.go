package node

import (
	"net/http"
	"sort"
	"time"

	"github.com/quorumkv/quorumkv/antientropy"
	"github.com/quorumkv/quorumkv/gossip"
	"github.com/quorumkv/quorumkv/handoff"
)

// ClusterStatus is the body of GET /v1/cluster.
type ClusterStatus struct {
	Node         string                            `json:"node"`
	Cluster      string                            `json:"cluster"`
	Partitions   int                               `json:"partitions"`
	PhiThreshold float64                           `json:"phi_threshold"`
	Members      []MemberStatus                    `json:"members"`
	Hints        map[string]handoff.HintOwnerStats `json:"hints"`
	HintMetrics  handoff.HintMetrics               `json:"hint_totals"`
	AntiEntropy  antientropy.Metrics               `json:"antientropy"`
	Prioritized  []int                             `json:"antientropy_prioritized"`
	// Epoch is the committed layout's epoch (0: none known yet).
	Epoch uint64 `json:"epoch"`
	// Change is the membership change in progress, if any.
	Change *PlanChange `json:"change,omitempty"`
	// Transfers are this node's partition transfers and hand-offs
	// (GET /v1/cluster/transfers has every node's).
	Transfers NodeTransfers `json:"transfers"`
}

// MemberStatus is one member as this node sees it.
type MemberStatus struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http_addr"`
	RPCAddr  string `json:"rpc_addr"`
	Gossip   string `json:"gossip_status"`
	State    string `json:"state"`
	// Reachable is the failure detector's verdict.
	Reachable bool    `json:"reachable"`
	Phi       float64 `json:"phi"`
	// Intent is what the member is asked to do (join, leave, remove),
	// Staged when that waits for a commit.
	Intent string `json:"intent"`
	Staged bool   `json:"staged,omitempty"`
	// InRing: a member of the committed ring; InTarget: of the target
	// ring of the change in progress (the committed one when none).
	InRing   bool `json:"in_ring"`
	InTarget bool `json:"in_target"`
	// Share is the fraction of partitions the member owns as primary.
	Share         float64   `json:"ring_share"`
	LastHeartbeat time.Time `json:"last_heartbeat,omitzero"`
}

// Status returns the cluster as this node sees it.
func (n *Node) Status() ClusterStatus {
	var shares map[string]float64
	partitions := n.cfg.Partitions
	v := n.view.Load()
	if v != nil {
		shares = v.ch.C.Shares()
		partitions = v.ch.C.PartitionCount()
	}
	phis := map[string]gossip.PeerState{}
	for _, p := range n.detector.Snapshot() {
		phis[p.Peer] = p
	}
	st := ClusterStatus{
		Node: n.cfg.ID, Cluster: n.cfg.Cluster, Partitions: partitions,
		PhiThreshold: n.cfg.Detector.Threshold,
		Hints:        n.hints.Pending(), HintMetrics: n.hints.Metrics(),
		AntiEntropy: n.ae.Metrics(), Prioritized: n.ae.Prioritized(),
	}
	for _, m := range n.gossip.Members() {
		ms := MemberStatus{
			ID: m.Meta.ID, HTTPAddr: m.Meta.HTTPAddr, RPCAddr: m.Meta.RPCAddr,
			Gossip: m.Status.String(), State: m.Meta.State,
			Reachable: n.available(m.Meta.ID), Share: shares[m.Meta.ID],
			Intent: m.Meta.MemberIntent(), Staged: m.Meta.Staged,
		}
		if v != nil {
			ms.InRing, ms.InTarget = v.ch.C.Contains(m.Meta.ID), v.ch.T.Contains(m.Meta.ID)
		}
		if p, ok := phis[m.Meta.ID]; ok {
			ms.Phi, ms.LastHeartbeat = p.Phi, p.LastHeartbeat
		}
		st.Members = append(st.Members, ms)
	}
	sort.Slice(st.Members, func(i, j int) bool { return st.Members[i].ID < st.Members[j].ID })
	if v != nil {
		st.Epoch = v.ch.Epoch
		if v.ch.Changing || v.ch.TargetErr != nil {
			pc := n.describeBrief(v.ch)
			st.Change = &pc
		}
	}
	st.Transfers = n.localTransfers()
	return st
}

func (n *Node) handleCluster(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, n.Status())
}

// antiEntropyRun is the body of POST /v1/antientropy/run.
type antiEntropyRun struct {
	Report antientropy.Report `json:"report"`
	Took   string             `json:"took"`
	Errors string             `json:"errors,omitempty"`
}

func (n *Node) handleAntiEntropy(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		writeError(w, http.StatusBadRequest, CodeBadParameter, "this endpoint takes no parameters")
		return
	}
	start := n.clk.Now()
	rep, err := n.ae.RunOnce(r.Context())
	out := antiEntropyRun{Report: rep, Took: n.clk.Since(start).String()}
	if err != nil {
		out.Errors = err.Error()
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handleMetrics(w http.ResponseWriter, r *http.Request) {
	n.metrics.ServeHTTP(w, r)
}
