package sim

import (
	"fmt"
	"math"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/quorumkv/quorumkv/node"
)

// The register workload shows what quorumkv does not promise:
// linearizability. Clients write unique values to one key of a
// last-write-wins bucket, blind, and read it, all with the strongest
// settings a client has (r=quorum, w=quorum, sloppy=false, so R+W > N and
// no fallback counts). The history goes to porcupine with the model of a
// single register. A Dynamo store answers reads from a quorum without
// ordering concurrent writes by real time: a write that failed its quorum
// may still be read later, and a read may return an older value than a
// read that finished before it began. Under faults such histories are
// common; RELIABILITY.md reports how common.

const (
	regBucket = "reg"
	regKey    = "r"
)

// RegisterModes are the consistency settings the register workload can
// use: "strict" is r=quorum, w=quorum, sloppy=false (R+W > N, no
// fallback counts); "default" is the bucket's defaults (r=2, w=2 of n=3,
// with sloppy quorums), what most clients send.
var RegisterModes = map[string][2]string{
	"strict":  {"r=quorum&sloppy=false", "w=quorum&sloppy=false"},
	"default": {"", ""},
}

// regInput and regOutput are a register operation for porcupine.
type regInput struct {
	write bool
	value string // written
}

type regOutput struct {
	value string // read; "" when the key was absent
}

// RegisterResult is the register workload's outcome.
type RegisterResult struct {
	// Writes and Reads count the operations in the history (failed ones,
	// certainly not applied, are left out); Unknown the writes whose
	// outcome is unknown, which may take effect at any time after they
	// began.
	Writes, Reads, Unknown int
	// Linearizable is porcupine's verdict: "Ok", "Illegal" (not
	// linearizable) or "Unknown" (it ran out of time).
	Linearizable porcupine.CheckResult
	ops          []porcupine.Operation
}

// setupRegister makes the register's bucket last-write-wins and lets
// gossip carry that to every node.
func (r *run) setupRegister() {
	resp, ok := r.c.Do(0, "PUT", "/v1/buckets/"+regBucket, []byte(`{"conflict":"lww"}`), nil)
	if !ok || resp.Status != 200 {
		r.t.Fatalf("set the register bucket: %d %s", resp.Status, resp.Body)
	}
	time.Sleep(5 * time.Second)
}

// registerWork writes and reads the register until the fault phase ends.
func (cl *client) registerWork() {
	path := "/v1/kv/" + regBucket + "/" + regKey + "?"
	mode, ok := RegisterModes[cl.r.cfg.RegisterMode]
	if !ok {
		mode = RegisterModes["strict"]
	}
	regRead, regWrite := mode[0], mode[1]
	var lastRead, lastCtx string // the client's latest read, and its context
	for cl.r.faultPhase() {
		op := Op{Client: cl.id, Key: regKey, Invoke: cl.r.since()}
		i, err := cl.r.anyNode(cl.rng)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		op.Node = cl.r.c.ID(i)
		if cl.rng.IntN(2) == 0 {
			cl.seq++
			op.Kind, op.Element, op.Params = "write", fmt.Sprintf("c%d.%d", cl.id, cl.seq), regWrite
			hdr := map[string]string{}
			if cl.rng.IntN(2) == 0 && lastCtx != "" {
				// A read-modify-write: causally after the value read.
				hdr[node.HeaderContext] = lastCtx
				op.Seen = []string{lastRead}
			}
			sent := time.Now()
			resp, answered := cl.r.c.Do(i, "PUT", path+regWrite, []byte(op.Element), hdr)
			cl.finish(op, cl.writeOutcome(resp, answered, time.Since(sent)), resp.Status)
		} else {
			op.Kind, op.Params = "read", regRead
			resp, answered := cl.r.c.Do(i, "GET", path+regRead, nil, nil)
			switch {
			case answered && resp.Status == 200:
				op.Seen = []string{string(resp.Body)}
				lastRead, lastCtx = string(resp.Body), resp.Header.Get(node.HeaderContext)
				cl.finish(op, OK, resp.Status)
			case answered && resp.Status == 404:
				cl.finish(op, OK, resp.Status)
			default:
				cl.finish(op, Failed, resp.Status)
			}
		}
		time.Sleep(time.Duration(cl.rng.IntN(200)) * time.Millisecond)
	}
}

// checkRegister turns the history into porcupine's operations; the check
// itself (CheckRegister) runs outside the simulation's bubble, where its
// timeout is the wall clock's. It checks on its own that a causally later
// write wins: once a write made with the context of a read that returned
// v is acknowledged, no read that begins afterwards returns v, whatever
// the clocks say (strict mode: the read's quorum meets the write's).
func (r *run) checkRegister(res *Result) RegisterResult {
	var rr RegisterResult
	ops := r.hist.Ops()
	if r.cfg.RegisterMode == "" || r.cfg.RegisterMode == "strict" {
		for _, w := range ops {
			if w.Kind != "write" || w.Outcome != OK || len(w.Seen) == 0 || r.wipedAfter(w.Complete) {
				continue // a lost disk may take the write's copies with it
			}
			for _, rd := range ops {
				if rd.Kind == "read" && rd.Outcome == OK && rd.Invoke > w.Complete && len(rd.Seen) > 0 && rd.Seen[0] == w.Seen[0] {
					res.Problems = append(res.Problems, fmt.Sprintf("a causally later write lost: c%d's read at %v returned %s, which c%d's write of %s (acknowledged at %v) superseded with its context",
						rd.Client, rd.Invoke, rd.Seen[0], w.Client, w.Element, w.Complete))
					break
				}
			}
		}
	}
	for _, op := range ops {
		res.Ops++
		switch op.Outcome {
		case OK:
			res.Acked++
		case Failed:
			res.Failed++
			continue // never applied
		case Unknown:
			res.Unknown++
		}
		p := porcupine.Operation{ClientId: op.Client - 1, Call: int64(op.Invoke), Return: int64(op.Complete)}
		if op.Kind == "write" {
			rr.Writes++
			p.Input = regInput{write: true, value: op.Element}
			if op.Outcome == Unknown {
				rr.Unknown++
				p.Return = math.MaxInt64 // it may take effect at any time
			}
		} else {
			rr.Reads++
			p.Input = regInput{}
			out := regOutput{}
			if len(op.Seen) > 0 {
				out.value = op.Seen[0]
			}
			p.Output = out
		}
		rr.ops = append(rr.ops, p)
	}
	return rr
}

// registerModel is a single register, initially absent ("").
var registerModel = porcupine.Model{
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in := input.(regInput)
		if in.write {
			return true, in.value
		}
		return output.(regOutput).value == state.(string), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(regInput)
		if in.write {
			return "write " + in.value
		}
		return "read -> " + output.(regOutput).value
	},
}

// CheckRegister checks a register history for linearizability, giving
// porcupine at most timeout of wall-clock time. With visualize set, it
// writes porcupine's HTML picture of the history there.
func CheckRegister(rr RegisterResult, timeout time.Duration, visualize string) (RegisterResult, error) {
	res, info := porcupine.CheckOperationsVerbose(registerModel, rr.ops, timeout)
	rr.Linearizable = res
	if visualize != "" {
		if err := porcupine.VisualizePath(registerModel, info, visualize); err != nil {
			return rr, fmt.Errorf("sim: visualize: %w", err)
		}
	}
	return rr, nil
}

// wipedAfter reports whether some node lost its disk at or after t.
func (r *run) wipedAfter(t time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, at := range r.wiped {
		for _, w := range at {
			if w >= t {
				return true
			}
		}
	}
	return false
}
