package sim

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/version"
)

// The checkers find what they look for: each test breaks a healthy run's
// cluster behind the clients' back, and the matching checker reports it.
func TestCheckersCatchViolations(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sabotage func(r *run)
		count    func(Result) int
		problem  string
	}{
		{
			name: "lost",
			// A delete nobody recorded removes every element of k0.
			sabotage: func(r *run) {
				resp, _ := r.c.Do(0, "GET", "/v1/kv/sim/k0?r=all", nil, nil)
				r.c.Do(0, "DELETE", "/v1/kv/sim/k0?w=all", nil, map[string]string{node.HeaderContext: resp.Header.Get(node.HeaderContext)})
			},
			count:   func(r Result) int { return r.Lost },
			problem: "lost:",
		},
		{
			name: "phantom",
			// An element no client tried to add appears.
			sabotage: func(r *run) { r.c.Do(0, "PUT", "/v1/kv/sim/k1?w=all", []byte("nobody"), nil) },
			count:    func(r Result) int { return r.Phantoms },
			problem:  "phantom:",
		},
		{
			name: "resurrected",
			// Every replica holds a live version an acknowledged delete
			// covered, and forgets it saw that delete.
			sabotage: func(r *run) {
				for _, op := range r.hist.Ops() {
					if op.Kind != "delete" || op.Outcome != OK {
						continue
					}
					covered := version.Dot{}
					for n, c := range op.Context.VV {
						covered = version.Dot{Node: n, Counter: c}
					}
					if covered.IsZero() {
						continue
					}
					ek := store.EncodeKey([]byte(bucket), []byte(op.Key))
					for i := range r.cfg.Nodes {
						_, _, err := r.c.Node(i).Store().Update(ek, func(cur version.Set) (version.Set, error) {
							cur.Siblings = append(cur.Siblings, version.Sibling{Dot: covered, Value: []byte("back")})
							if cur.Context.VV == nil {
								cur.Context.VV = map[string]uint64{}
							}
							cur.Context.VV[covered.Node] = covered.Counter - 1
							return cur, nil
						})
						if err != nil {
							r.t.Fatal(err)
						}
					}
					return
				}
				r.t.Fatal("no acknowledged delete with a context to sabotage")
			},
			count:   func(r Result) int { return r.Resurrected },
			problem: "resurrected:",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var res Result
			synctest.Test(t, func(t *testing.T) {
				res = Run(t, Config{Seed: 7, Nodes: 3, sabotage: tc.sabotage})
			})
			if tc.count(res) == 0 || !strings.Contains(strings.Join(res.Problems, "\n"), tc.problem) {
				t.Fatalf("the checker did not see it: %d problems: %v", len(res.Problems), res.Problems)
			}
		})
	}
}

// The register workload's own check: a read that begins after a causally
// later write was acknowledged must not return the value it superseded.
func TestRegisterCausalCheck(t *testing.T) {
	r := &run{cfg: Config{RegisterMode: "strict"}, hist: &History{}, wiped: map[string][]time.Duration{}}
	r.hist.addOp(Op{Client: 1, Kind: "write", Element: "a", Outcome: OK, Invoke: 0, Complete: 10})
	r.hist.addOp(Op{Client: 2, Kind: "read", Seen: []string{"a"}, Outcome: OK, Invoke: 20, Complete: 30})
	r.hist.addOp(Op{Client: 2, Kind: "write", Element: "b", Seen: []string{"a"}, Outcome: OK, Invoke: 40, Complete: 50})
	var res Result
	r.checkRegister(&res)
	if len(res.Problems) != 0 {
		t.Fatalf("problems in a clean history: %v", res.Problems)
	}
	r.hist.addOp(Op{Client: 3, Kind: "read", Seen: []string{"a"}, Outcome: OK, Invoke: 60, Complete: 70})
	res = Result{}
	r.checkRegister(&res)
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0], "causally later write lost") {
		t.Fatalf("a read of a superseded value after the write's ack: %v", res.Problems)
	}
	// A read that began before the ack may still see the old value.
	r.hist = &History{}
	r.hist.addOp(Op{Client: 2, Kind: "write", Element: "b", Seen: []string{"a"}, Outcome: OK, Invoke: 40, Complete: 50})
	r.hist.addOp(Op{Client: 3, Kind: "read", Seen: []string{"a"}, Outcome: OK, Invoke: 45, Complete: 70})
	res = Result{}
	r.checkRegister(&res)
	if len(res.Problems) != 0 {
		t.Fatalf("a concurrent read flagged: %v", res.Problems)
	}
}
