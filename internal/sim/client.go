package sim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/quorumkv/quorumkv/internal/simcluster"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/version"
)

// client runs one client's operations, one at a time, until the fault
// phase ends. Its choices come from its own random stream, so they do not
// depend on how the goroutines interleave.
type client struct {
	r   *run
	id  int
	rng *rand.Rand
	seq int
}

func (cl *client) work() {
	for cl.r.faultPhase() {
		k := cl.r.keys[cl.rng.IntN(len(cl.r.keys))]
		switch p := cl.rng.IntN(100); {
		case p < 60:
			cl.add(k)
		case p < 75:
			cl.delete(k)
		default:
			cl.read(k)
		}
		time.Sleep(time.Duration(cl.rng.IntN(300)) * time.Millisecond)
	}
}

// level picks a replica count for a request with n replicas: a number or
// one, quorum, all.
func (cl *client) level(n int) string {
	if cl.rng.IntN(2) == 0 {
		return []string{"one", "quorum", "all"}[cl.rng.IntN(3)]
	}
	return fmt.Sprint(1 + cl.rng.IntN(n))
}

// readParams and writeParams pick a request's consistency parameters. A
// delete may use any n up to the bucket's; adds and reads mostly use it.
func (cl *client) readParams() string {
	q := "r=" + cl.level(3)
	if cl.rng.IntN(4) == 0 {
		q += "&sloppy=false"
	}
	return q
}

func (cl *client) writeParams(del bool) string {
	n := 3
	q := ""
	if del || cl.rng.IntN(5) == 0 {
		n = 1 + cl.rng.IntN(3)
		q = fmt.Sprintf("n=%d&", n)
	}
	q += "w=" + cl.level(n)
	if cl.rng.IntN(4) == 0 {
		q += "&sloppy=false"
	}
	return q
}

// get reads a key through node i: the elements of its live siblings and
// its context. ok is false when the read was not answered.
func (cl *client) get(i int, k, params string) (status int, elems []string, ctx string, ok bool) {
	resp, ok := cl.r.c.Do(i, "GET", "/v1/kv/"+bucket+"/"+k+"?"+params, nil, map[string]string{"Accept": "application/json"})
	if !ok {
		return 0, nil, "", false
	}
	switch resp.Status {
	case 200, 300, 404:
	default:
		return resp.Status, nil, "", false
	}
	var env node.Envelope
	if err := json.Unmarshal(resp.Body, &env); err != nil && resp.Status != 404 {
		cl.r.t.Errorf("read %s: %d with an undecodable body: %v", k, resp.Status, err)
		return resp.Status, nil, "", false
	}
	return resp.Status, elements(env), resp.Header.Get(node.HeaderContext), true
}

// elements is the union of an envelope's live siblings' elements.
func elements(env node.Envelope) []string {
	var out []string
	for _, sib := range env.Siblings {
		if sib.Deleted || len(sib.Value) == 0 {
			continue
		}
		out = append(out, strings.Split(string(sib.Value), ",")...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// begin starts recording an operation.
func (cl *client) begin(kind, k string) (Op, int, bool) {
	op := Op{Client: cl.id, Kind: kind, Key: k, Invoke: cl.r.since()}
	i, err := cl.r.anyNode(cl.rng)
	if err != nil {
		op.Outcome, op.Complete = Failed, op.Invoke
		cl.r.hist.addOp(op)
		return op, 0, false
	}
	op.Node = cl.r.c.ID(i)
	return op, i, true
}

func (cl *client) finish(op Op, o Outcome, status int) {
	op.Outcome, op.Status, op.Complete = o, status, cl.r.since()
	cl.r.hist.addOp(op)
}

func (cl *client) read(k string) {
	op, i, ok := cl.begin("read", k)
	if !ok {
		return
	}
	op.Params = cl.readParams()
	status, elems, _, ok := cl.get(i, k, op.Params)
	op.Seen = elems
	if !ok {
		cl.finish(op, Failed, status)
		return
	}
	cl.finish(op, OK, status)
}

// add adds a new element to k's set: read, union, write back with the
// read's context.
// readFirst begins an add or a delete with its read. ok is false when the
// operation already ended (no node up, or the read failed).
func (cl *client) readFirst(kind, k string) (op Op, i int, ctx string, ok bool) {
	op, i, ok = cl.begin(kind, k)
	if !ok {
		return op, 0, "", false
	}
	rp := cl.readParams()
	status, elems, ctx, ok := cl.get(i, k, rp)
	if !ok {
		op.Params = rp
		cl.finish(op, Failed, status)
		return op, 0, "", false
	}
	op.Seen = elems
	op.Context, _ = version.DecodeContext(store.EncodeKey([]byte(bucket), []byte(k)), ctx)
	return op, i, ctx, true
}

func (cl *client) add(k string) {
	op, i, ctx, ok := cl.readFirst("add", k)
	if !ok {
		return
	}
	elems := op.Seen
	cl.seq++
	op.Element = fmt.Sprintf("c%d.%d", cl.id, cl.seq)
	op.Params = cl.writeParams(false)
	body := strings.Join(append(slices.Clone(elems), op.Element), ",")
	sent := time.Now()
	resp, answered := cl.r.c.Do(i, "PUT", "/v1/kv/"+bucket+"/"+k+"?"+op.Params, []byte(body), map[string]string{node.HeaderContext: ctx})
	o := cl.writeOutcome(resp, answered, time.Since(sent))
	if o == OK {
		if rc, err := version.DecodeContext(store.EncodeKey([]byte(bucket), []byte(k)), resp.Header.Get(node.HeaderContext)); err == nil {
			op.Dot = newDot(op.Context, rc)
		}
		rc := quorum.ParseReceipt(resp.Header)
		op.Replicas = rc.Replicas
		cl.r.checkCopies(k, op, rc.Fallbacks)
	}
	cl.finish(op, o, resp.Status)
}

// checkCopies checks the promise behind an acknowledgement: every node the
// receipt names as having counted durably holds the write, as a record or
// a hint (or already something that supersedes it), at the moment the
// client is answered; a fallback may have handed its hint to the node it
// stood in for already. A node that is down or restarted meanwhile is not
// looked at.
func (r *run) checkCopies(k string, op Op, fallbacks map[string]string) {
	if op.Dot.IsZero() {
		return
	}
	ek := store.EncodeKey([]byte(bucket), []byte(k))
	holds := func(id string) (held, known bool) {
		n := r.c.Node(r.c.Index(id))
		if n == nil {
			return false, false
		}
		st := n.Store()
		if s, err := st.Get(ek); err == nil && (s.Has(op.Dot) || s.Context.Covers(op.Dot)) {
			return true, true
		}
		for _, owner := range st.HintOwners() {
			if h, err := st.Hint(owner, ek); err == nil && (h.Has(op.Dot) || h.Context.Covers(op.Dot)) {
				return true, true
			}
		}
		return false, true
	}
	for _, id := range op.Replicas {
		held, known := holds(id)
		if owner, ok := fallbacks[id]; ok && !held {
			held, _ = holds(owner)
			if !held && (r.isLeaving(owner) || r.isLeaving(id)) {
				// A hint for a node that leaves goes to the key's
				// other replicas at once, and a node that leaves
				// sends its hints away.
				for _, other := range r.nodes() {
					if h, _ := holds(r.c.ID(other)); h {
						held = true
						break
					}
				}
			}
		}
		if known && !held {
			r.violation("c%d's add of %s to %s was acknowledged as held by %s, which holds no copy of %s", op.Client, op.Element, k, id, op.Dot)
		}
	}
}

// delete deletes k with the context of a read.
func (cl *client) delete(k string) {
	op, i, ctx, ok := cl.readFirst("delete", k)
	if !ok {
		return
	}
	op.Params = cl.writeParams(true)
	sent := time.Now()
	resp, answered := cl.r.c.Do(i, "DELETE", "/v1/kv/"+bucket+"/"+k+"?"+op.Params, nil, map[string]string{node.HeaderContext: ctx})
	o := cl.writeOutcome(resp, answered, time.Since(sent))
	if o == OK {
		op.Replicas = quorum.ParseReceipt(resp.Header).Replicas
	}
	cl.finish(op, o, resp.Status)
}

// writeOutcome classifies a write's answer. 503 and 504 may have been
// applied on the replicas that acked; a coordinator that died mid-request
// says nothing. A 400 is a bug of the simulation.
func (cl *client) writeOutcome(resp simcluster.Response, answered bool, took time.Duration) Outcome {
	return cl.r.classify(resp, answered, took)
}

// requestTimeout is the nodes' deadline for a request without a timeout
// parameter (see configure).
const requestTimeout = time.Second

// classify classifies a write's answer, which took took, and checks the
// API's promise about 503 and 504: a request that ran out of time answers
// 504 timeout, one whose replicas answered with failures before its
// deadline 503 quorum_failed.
func (r *run) classify(resp simcluster.Response, answered bool, took time.Duration) Outcome {
	if answered && (resp.Status == 503 || resp.Status == 504) {
		var e struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(resp.Body, &e)
		switch {
		case (resp.Status == 504) != (e.Code == "timeout"):
			r.violation("answered %d with code %q: a 504 is a timeout, a 503 is not", resp.Status, e.Code)
		case resp.Status == 503 && e.Code == "quorum_failed" && took >= requestTimeout:
			r.violation("answered 503 %s after %v, past its %v deadline: a request that ran out of time is a 504 timeout", e.Code, took, requestTimeout)
		case resp.Status == 504 && took < requestTimeout:
			r.violation("answered 504 timeout after %v, before its %v deadline", took, requestTimeout)
		}
	}
	return r.outcome(resp, answered)
}

func (r *run) outcome(resp simcluster.Response, answered bool) Outcome {
	switch {
	case !answered:
		return Unknown
	case resp.Status == 204:
		return OK
	case resp.Status == 409:
		return Failed // too many siblings: refused before applying
	case resp.Status == 503 || resp.Status == 504:
		return Unknown
	}
	r.t.Errorf("write answered %d: %s", resp.Status, resp.Body)
	return Failed
}

// newDot finds the dot a write was issued: its reply's context is the
// request's plus that one dot, whose counter is above every counter of
// its node in the request's context.
func newDot(sent, got version.Context) version.Dot {
	var nodes []string
	for n := range got.VV {
		nodes = append(nodes, n)
	}
	for _, d := range got.Cloud {
		nodes = append(nodes, d.Node)
	}
	for _, n := range nodes {
		if m := got.Max(n); m > sent.Max(n) {
			return version.Dot{Node: n, Counter: m}
		}
	}
	return version.Dot{}
}
