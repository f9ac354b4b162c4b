package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quorumkv/quorumkv/gossip"
	"github.com/quorumkv/quorumkv/handoff"
	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/ring"
)

// The cluster administration API: plan, commit, clear, leave, remove,
// replace and transfers. Each changes members' intents through gossip
// (gossip.SetIntent); the change itself is carried out by every member
// (membership.go). The CLI's `quorumkv cluster ...` commands call these.

// Error codes of the administration API (and not_ready of every
// endpoint that needs the ring).
const (
	CodeUnknownMember = "unknown_member"
	CodeConflict      = "conflict"
	CodeNotReady      = "not_ready"
)

// ErrNoRing is returned while a node knows no layout yet.
var ErrNoRing = errors.New("node: no ring yet: this node has not heard from its cluster")

// PlanMove is one partition a node gains in a change.
type PlanMove struct {
	Partition int      `json:"partition"`
	To        string   `json:"to"`
	From      []string `json:"from"`
	// Keys and Bytes are what the first source holds of the partition,
	// -1 when it could not be asked.
	Keys  int64 `json:"keys"`
	Bytes int64 `json:"bytes"`
}

// PlanChange is a change from the committed ring to a target ring.
type PlanChange struct {
	Changing    bool       `json:"changing"`
	Fingerprint string     `json:"fingerprint"`
	Committed   []string   `json:"committed"`
	Target      []string   `json:"target"`
	Joining     []string   `json:"joining"`
	Leaving     []string   `json:"leaving"`
	Removing    []string   `json:"removing"`
	WaitingSeen []string   `json:"waiting_to_see,omitempty"`
	WaitingSync []string   `json:"waiting_to_sync,omitempty"`
	Error       string     `json:"error,omitempty"`
	Moves       []PlanMove `json:"moves"`
	// Totals: the distinct partitions that move, and the keys and bytes
	// of every move (a partition copied to two nodes counts twice).
	Partitions int   `json:"partitions_moving"`
	Keys       int64 `json:"keys_moving"`
	Bytes      int64 `json:"bytes_moving"`
}

// StagedIntent is an intent that waits for a commit.
type StagedIntent struct {
	Node   string `json:"node"`
	Intent string `json:"intent"`
	// Replaces names the node a staged replacement takes the place of.
	Replaces string `json:"replaces,omitempty"`
}

// Plan is the body of GET /v1/cluster/plan and of the changing POSTs.
type Plan struct {
	Epoch uint64 `json:"epoch"`
	// Current is the change in progress (Changing false when none).
	Current PlanChange `json:"current"`
	// Staged lists the intents waiting for a commit, and AfterCommit the
	// change that would be in progress once they are committed.
	Staged      []StagedIntent `json:"staged"`
	AfterCommit *PlanChange    `json:"after_commit,omitempty"`
}

// IntentRequest is the body of POST /v1/cluster/{leave,remove,replace}:
// Node for leave and remove, Old and New for replace.
type IntentRequest struct {
	Node  string `json:"node,omitempty"`
	Old   string `json:"old,omitempty"`
	New   string `json:"new,omitempty"`
	Stage bool   `json:"stage"`
	Force bool   `json:"force"`
}

func (n *Node) adminRoutes(mux *routes) {
	mux.HandleFunc("GET /v1/cluster/plan", n.handlePlan)
	mux.HandleFunc("/v1/cluster/plan", methodNotAllowed("GET, HEAD"))
	mux.HandleFunc("GET /v1/cluster/transfers", n.handleTransfers)
	mux.HandleFunc("/v1/cluster/transfers", methodNotAllowed("GET, HEAD"))
	for _, op := range []string{"commit", "clear", "leave", "remove", "replace"} {
		mux.HandleFunc("POST /v1/cluster/"+op, n.handleIntent(op))
		mux.HandleFunc("/v1/cluster/"+op, methodNotAllowed("POST"))
	}
	n.gossipKeyRoutes(mux)
}

// reachable reports whether the failure detector hears from a node: the
// guard of remove and replace, which are for nodes that are gone. A node
// whose store failed (a full disk) is unavailable for requests but still
// answers, and comes back by itself: removing it takes force.
func (n *Node) reachable(id string) bool {
	return id == n.cfg.ID || n.detector.Available(id)
}

// currentView returns the view, or writes 503 when there is none yet.
func (n *Node) currentView(w http.ResponseWriter) (*memberView, bool) {
	v := n.view.Load()
	if v == nil {
		writeError(w, http.StatusServiceUnavailable, CodeNotReady, ErrNoRing.Error())
		return nil, false
	}
	return v, true
}

func (n *Node) handlePlan(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		writeError(w, http.StatusBadRequest, CodeBadParameter, "this endpoint takes no parameters")
		return
	}
	if _, ok := n.currentView(w); !ok {
		return
	}
	p, err := n.Plan(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, CodeNotReady, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// Plan describes the change in progress and the staged one, with the
// keys and bytes each move carries (asked of the sources).
func (n *Node) Plan(ctx context.Context) (Plan, error) {
	v := n.view.Load()
	if v == nil {
		return Plan{}, ErrNoRing
	}
	ch, l, metas, err := n.freshChange()
	if err != nil {
		return Plan{}, err
	}
	out := Plan{Epoch: ch.Epoch, Current: n.describe(ctx, ch)}
	if len(ch.Staged) == 0 {
		out.Staged = []StagedIntent{}
		return out, nil
	}
	unstaged := slices.Clone(metas)
	for i := range unstaged {
		unstaged[i].Staged = false
	}
	for _, m := range ch.Staged {
		si := StagedIntent{Node: m.ID, Intent: m.MemberIntent()}
		if m.Seed != "" && m.Seed != m.ID {
			si.Replaces = m.Seed
			for _, o := range metas {
				if o.RingSeed() == m.Seed && o.ID != m.ID {
					si.Replaces = o.ID
				}
			}
		}
		out.Staged = append(out.Staged, si)
	}
	after, err := computeChange(n.rings, l, unstaged)
	if err != nil {
		return Plan{}, err
	}
	d := n.describe(ctx, after)
	out.AfterCommit = &d
	return out, nil
}

// freshChange computes the change from gossip as it is now, rather than
// from the view the membership loop last built: what an operator's
// command acts on and answers with.
func (n *Node) freshChange() (change, gossip.Layout, []gossip.Meta, error) {
	l, _ := n.gossip.Layout()
	members := n.gossip.Members()
	metas := make([]gossip.Meta, len(members))
	for i, m := range members {
		metas[i] = m.Meta
	}
	ch, err := computeChange(n.rings, l, metas)
	return ch, l, metas, err
}

// orEmpty makes a nil list an empty one, so that JSON shows [].
func orEmpty(ids []string) []string {
	if ids == nil {
		return []string{}
	}
	return ids
}

func ringIDs(r *ring.Ring) []string {
	ids := []string{}
	for _, m := range r.Members() {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	return ids
}

// describeBrief renders ch without its moves.
func (n *Node) describeBrief(ch change) PlanChange {
	pc := PlanChange{
		Changing: ch.Changing, Fingerprint: strconv.FormatUint(ch.FP, 16),
		Committed: ringIDs(ch.C), Target: ringIDs(ch.T), Joining: []string{},
		Leaving: orEmpty(ch.Leaving), Removing: orEmpty(ch.Removing),
		WaitingSeen: ch.NotSeen, WaitingSync: ch.NotSynced, Moves: []PlanMove{},
	}
	if ch.TargetErr != nil {
		pc.Error = ch.TargetErr.Error()
	}
	for _, id := range pc.Target {
		if !ch.C.Contains(id) {
			pc.Joining = append(pc.Joining, id)
		}
	}
	return pc
}

// describe renders ch with its moves and their sizes.
func (n *Node) describe(ctx context.Context, ch change) PlanChange {
	pc := n.describeBrief(ch)
	if !ch.Changing {
		return pc
	}
	moves, err := ring.Moves(ch.C, ch.T, n.maxBucketN())
	if err != nil {
		pc.Error = err.Error()
		return pc
	}
	// Ask the first source that is up for the sizes of the partitions it
	// gives (the first listed is often the node being replaced).
	first := func(mv ring.Move) string {
		for _, s := range mv.Sources {
			if n.available(s) {
				return s
			}
		}
		return ""
	}
	bySource := map[string][]int{}
	for _, mv := range moves {
		if s := first(mv); s != "" {
			bySource[s] = append(bySource[s], mv.Partition)
		}
	}
	sizes := n.partitionSizes(ctx, bySource)
	parts := map[int]bool{}
	for _, mv := range moves {
		pm := PlanMove{Partition: mv.Partition, To: mv.Node, From: mv.Sources, Keys: -1, Bytes: -1}
		if s := first(mv); s != "" {
			if sz, ok := sizes[s][mv.Partition]; ok {
				pm.Keys, pm.Bytes = sz.Keys, sz.Bytes
				pc.Keys += sz.Keys
				pc.Bytes += sz.Bytes
			}
		}
		parts[mv.Partition] = true
		pc.Moves = append(pc.Moves, pm)
	}
	pc.Partitions = len(parts)
	return pc
}

// partSize is what a node holds of one partition.
type partSize struct {
	Keys  int64 `msgpack:"k" json:"keys"`
	Bytes int64 `msgpack:"b" json:"bytes"`
}

// partSizesRequest is the body of node.partsizes.
type partSizesRequest struct {
	Partitions []int `msgpack:"p"`
}

// partitionSizes asks each node for the sizes of its partitions, in
// parallel, and returns what answered.
func (n *Node) partitionSizes(ctx context.Context, bySource map[string][]int) map[string]map[int]partSize {
	ctx, cancel := context.WithTimeout(ctx, internalTimeout)
	defer cancel()
	out := map[string]map[int]partSize{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, parts := range bySource {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got map[int]partSize
			var err error
			if id == n.cfg.ID {
				got, err = n.localPartSizes(parts)
			} else {
				got, err = n.callPartSizes(ctx, id, parts)
			}
			if err != nil {
				n.log.Debug().Err(err).Str("node", id).Msg("plan: partition sizes")
				return
			}
			mu.Lock()
			out[id] = got
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func (n *Node) callPartSizes(ctx context.Context, id string, parts []int) (map[int]partSize, error) {
	m, ok := n.meta(id)
	if !ok {
		return nil, fmt.Errorf("node: unknown member %q", id)
	}
	body, err := msgpack.Marshal(&partSizesRequest{Partitions: parts})
	if err != nil {
		return nil, err
	}
	out, err := n.tr.CallNode(ctx, id, m.RPCAddr, rpcPartSizes, body)
	if err != nil {
		return nil, err
	}
	if err := wire.Check(out); err != nil {
		return nil, err
	}
	var got map[int]partSize
	if err := msgpack.Unmarshal(out, &got); err != nil {
		return nil, err
	}
	return got, nil
}

// maxSizeParts bounds one node.partsizes request.
const maxSizeParts = 1 << 16

// localPartSizes counts this node's rows and bytes in parts.
func (n *Node) localPartSizes(parts []int) (map[int]partSize, error) {
	if len(parts) > maxSizeParts {
		return nil, fmt.Errorf("node: %d partitions asked, at most %d", len(parts), maxSizeParts)
	}
	out := make(map[int]partSize, len(parts))
	for _, p := range parts {
		if p < 0 || p >= n.cfg.Partitions {
			return nil, fmt.Errorf("node: partition %d out of range", p)
		}
		lo, hi := n.transferCfg.PartitionRange(p)
		var sz partSize
		err := n.store.Scan(lo, hi, func(_ uint64, k, set []byte) error {
			sz.Keys++
			sz.Bytes += int64(len(k) + len(set))
			return nil
		})
		if err != nil {
			return nil, err
		}
		out[p] = sz
	}
	return out, nil
}

func (n *Node) servePartSizes(body []byte) ([]byte, error) {
	var req partSizesRequest
	if err := msgpack.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("node: decode %s: %w", rpcPartSizes, err)
	}
	got, err := n.localPartSizes(req.Partitions)
	if err != nil {
		return nil, err
	}
	return msgpack.Marshal(got)
}

// handleIntent serves POST /v1/cluster/{op}.
func (n *Node) handleIntent(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if len(r.URL.Query()) > 0 {
			writeError(w, http.StatusBadRequest, CodeBadParameter, "this endpoint takes no parameters; send a JSON body")
			return
		}
		v, ok := n.currentView(w)
		if !ok {
			return
		}
		var in IntentRequest
		if op != "commit" && op != "clear" {
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&in); err != nil {
				writeError(w, http.StatusBadRequest, CodeBadBody, `the body must be JSON such as {"node":"n3"} (leave, remove) or {"old":"n3","new":"n5"} (replace), with optional "stage" and "force": `+err.Error())
				return
			}
		}
		ch, _, _, err := n.freshChange()
		if err != nil {
			ch = v.ch
		}
		status, code, err := n.applyIntent(op, in, ch)
		if err != nil {
			writeError(w, status, code, err.Error())
			return
		}
		n.onMembershipChange()
		p, err := n.Plan(r.Context())
		if err != nil {
			// Applied all the same: say so, with what is known.
			n.log.Warn().Err(err).Str("op", op).Msg("membership: plan after an operator's command")
			p = Plan{Epoch: v.ch.Epoch, Current: n.describeBrief(v.ch), Staged: []StagedIntent{}}
		}
		writeJSON(w, http.StatusOK, p)
	}
}

// applyIntent checks and applies one administration operation, returning
// the HTTP status and code of a refusal.
func (n *Node) applyIntent(op string, in IntentRequest, ch change) (int, string, error) {
	if (op == "leave" || op == "remove") && in.Node == "" {
		return http.StatusBadRequest, CodeBadBody, errors.New(`name the node: {"node": ID}`)
	}
	live := func(id string) (gossip.Meta, error) {
		m, ok := n.gossip.Member(id)
		if !ok || m.Meta.Removed() {
			return gossip.Meta{}, fmt.Errorf("no member %q", id)
		}
		return m.Meta, nil
	}
	set := func(id string, it gossip.Intent) error {
		_, err := n.gossip.SetIntent(id, it)
		return err
	}
	switch op {
	case "commit":
		for _, m := range ch.Staged {
			if err := set(m.ID, gossip.Intent{Intent: m.MemberIntent(), Staged: false, Seed: m.Seed}); err != nil {
				return http.StatusInternalServerError, CodeInternal, err
			}
		}
		return 0, "", nil
	case "clear":
		for _, m := range ch.Staged {
			it := gossip.Intent{Intent: gossip.IntentJoin, Staged: false}
			if !ch.C.Contains(m.ID) {
				it.Staged = true // a staged new node keeps waiting, as itself
			}
			if err := set(m.ID, it); err != nil {
				return http.StatusInternalServerError, CodeInternal, err
			}
		}
		return 0, "", nil
	case "leave":
		m, err := live(in.Node)
		if err != nil {
			return http.StatusNotFound, CodeUnknownMember, err
		}
		if !ch.C.Contains(m.ID) && !ch.T.Contains(m.ID) {
			// Not in the ring: it has nothing to hand on.
			return 0, "", set(m.ID, gossip.Intent{Intent: gossip.IntentLeave, Seed: m.Seed})
		}
		if left := ch.T.Len() - boolInt(ch.T.Contains(m.ID)); left < n.maxBucketN() && !in.Force {
			return http.StatusConflict, CodeConflict, fmt.Errorf("%s leaving would leave %d members, fewer than a bucket's n (%d); add a node first, or force", m.ID, left, n.maxBucketN())
		}
		return 0, "", set(m.ID, gossip.Intent{Intent: gossip.IntentLeave, Staged: in.Stage, Seed: m.Seed})
	case "remove":
		m, err := live(in.Node)
		if err != nil {
			return http.StatusNotFound, CodeUnknownMember, err
		}
		if m.ID == n.cfg.ID {
			return http.StatusConflict, CodeConflict, errors.New("a node cannot remove itself; ask it to leave, or remove it from another node")
		}
		if n.reachable(m.ID) && !in.Force {
			return http.StatusConflict, CodeConflict, fmt.Errorf("%s is up; remove is for a node that is gone for good (use leave, or force)", m.ID)
		}
		return 0, "", set(m.ID, gossip.Intent{Intent: gossip.IntentRemove, Staged: in.Stage, Seed: m.Seed})
	case "replace":
		if in.Old == "" || in.New == "" || in.Old == in.New {
			return http.StatusBadRequest, CodeBadBody, errors.New(`name two different nodes: {"old": ID, "new": ID}`)
		}
		old, err := live(in.Old)
		if err != nil {
			return http.StatusNotFound, CodeUnknownMember, err
		}
		nw, err := live(in.New)
		if err != nil {
			return http.StatusNotFound, CodeUnknownMember, fmt.Errorf("%v: start it first (server --join ... --stage)", err)
		}
		if !ch.C.Contains(old.ID) {
			return http.StatusConflict, CodeConflict, fmt.Errorf("%s is not in the committed ring", old.ID)
		}
		if ch.C.Contains(nw.ID) {
			return http.StatusConflict, CodeConflict, fmt.Errorf("%s is in the ring already; a replacement must be a new node", nw.ID)
		}
		if n.reachable(old.ID) && !in.Force {
			return http.StatusConflict, CodeConflict, fmt.Errorf("%s is up; replace is for a node that is gone for good (leave it instead, or force)", old.ID)
		}
		// The old node's place on the ring: its seed and join time.
		var seed string
		var joined int64
		for _, rm := range ch.C.Members() {
			if rm.ID == old.ID {
				seed, joined = rm.Seed, rm.Joined
			}
		}
		if seed == "" {
			seed = old.ID
		}
		if err := set(old.ID, gossip.Intent{Intent: gossip.IntentRemove, Staged: in.Stage, Seed: old.Seed}); err != nil {
			return http.StatusInternalServerError, CodeInternal, err
		}
		if err := set(nw.ID, gossip.Intent{Intent: gossip.IntentJoin, Staged: in.Stage, Seed: seed, Joined: joined}); err != nil {
			return http.StatusInternalServerError, CodeInternal, err
		}
		return 0, "", nil
	}
	return http.StatusNotFound, CodeNotFound, fmt.Errorf("no operation %q", op)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// NodeTransfers is one node's transfers in GET /v1/cluster/transfers.
type NodeTransfers struct {
	Node        string           `json:"node"`
	Fingerprint string           `json:"fingerprint"`
	Done        int              `json:"partitions_done"`
	Total       int              `json:"partitions_total"`
	Keys        int64            `json:"keys"`
	Bytes       int64            `json:"bytes"`
	Transfers   []handoff.Status `json:"transfers"`
	Lost        LostStatus       `json:"handed_off"`
	Error       string           `json:"error,omitempty"`
	Updated     time.Time        `json:"updated,omitzero"`
}

// Transfers is the body of GET /v1/cluster/transfers.
type Transfers struct {
	Changing    bool            `json:"changing"`
	Fingerprint string          `json:"fingerprint"`
	Nodes       []NodeTransfers `json:"nodes"`
}

// localTransfers returns this node's transfers.
func (n *Node) localTransfers() NodeTransfers {
	nt := NodeTransfers{Node: n.cfg.ID, Transfers: n.transfers.Progress(), Lost: n.Lost(), Updated: n.clk.Now()}
	if v := n.view.Load(); v != nil {
		nt.Fingerprint = strconv.FormatUint(v.ch.FP, 16)
	}
	for _, s := range nt.Transfers {
		nt.Total++
		if s.State == handoff.StateDone {
			nt.Done++
		}
		nt.Keys += s.Keys
		nt.Bytes += s.Bytes
	}
	return nt
}

func (n *Node) handleTransfers(w http.ResponseWriter, r *http.Request) {
	local := false
	for k, vs := range r.URL.Query() {
		if k != "local" || len(vs) != 1 {
			writeError(w, http.StatusBadRequest, CodeBadParameter, "the only parameter is local=true")
			return
		}
		b, err := strconv.ParseBool(vs[0])
		if err != nil {
			writeError(w, http.StatusBadRequest, CodeBadParameter, "local must be true or false")
			return
		}
		local = b
	}
	v, ok := n.currentView(w)
	if !ok {
		return
	}
	out := Transfers{Changing: v.ch.Changing, Fingerprint: strconv.FormatUint(v.ch.FP, 16)}
	if local {
		out.Nodes = []NodeTransfers{n.localTransfers()}
		writeJSON(w, http.StatusOK, out)
		return
	}
	ids := unionIDs(v.ch.C, v.ch.T)
	out.Nodes = make([]NodeTransfers, len(ids))
	ctx, cancel := context.WithTimeout(r.Context(), internalTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, id := range ids {
		if id == n.cfg.ID {
			out.Nodes[i] = n.localTransfers()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			nt, err := n.callTransfers(ctx, id)
			if err != nil {
				nt = NodeTransfers{Node: id, Error: err.Error()}
			}
			out.Nodes[i] = nt
		}()
	}
	wg.Wait() // out.Nodes is in the sorted order of ids
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) callTransfers(ctx context.Context, id string) (NodeTransfers, error) {
	m, ok := n.meta(id)
	if !ok {
		return NodeTransfers{}, fmt.Errorf("node: unknown member %q", id)
	}
	out, err := n.tr.CallNode(ctx, id, m.RPCAddr, rpcTransfers, nil)
	if err != nil {
		return NodeTransfers{}, err
	}
	if err := wire.Check(out); err != nil {
		return NodeTransfers{}, fmt.Errorf("node: transfers of %s: %w", id, err)
	}
	var nt NodeTransfers
	if err := msgpack.Unmarshal(out, &nt); err != nil {
		return NodeTransfers{}, fmt.Errorf("node: decode transfers of %s: %w", id, err)
	}
	return nt, nil
}
