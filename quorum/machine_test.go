package quorum

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/quorumkv/quorumkv/version"
)

// sim is a scripted cluster for the coordinator state machines: replicas
// hold real version sets, and messages wait in flight until the script
// delivers, drops or fails them.
type sim struct {
	replicas map[string]*version.Set
	hints    map[string]map[string]version.Set // holder -> owner -> set
	coords   map[string]*simCoord
	clientCx map[string]version.Context
}

type simCoord struct {
	name     string
	write    *WriteMachine
	read     *ReadMachine
	wreq     *WriteRequest
	inflight []Message
}

func parseTargets(s string) []Target {
	var out []Target
	for _, f := range strings.Split(s, ",") {
		t := Target{Counts: true}
		if node, hint, ok := strings.Cut(f, ">"); ok {
			t.Node, t.HintFor = node, hint
			if strings.HasSuffix(t.Node, "*") {
				t.Node, t.Counts = strings.TrimSuffix(t.Node, "*"), false
			}
		} else {
			t.Node = f
		}
		out = append(out, t)
	}
	return out
}

func fmtMsgs(b *strings.Builder, msgs []Message) {
	for _, m := range msgs {
		fmt.Fprintf(b, "-> %s %s", m.Kind, m.To)
		if m.HintFor != "" {
			fmt.Fprintf(b, " hint-for=%s", m.HintFor)
		}
		if m.Kind == KindMerge {
			fmt.Fprintf(b, " set=%s", fmtSet(m.Set))
		}
		b.WriteString("\n")
	}
}

func fmtSet(s version.Set) string {
	var parts []string
	for _, sib := range s.Siblings {
		v := string(sib.Value)
		if sib.Deleted {
			v = "<deleted>"
		}
		parts = append(parts, fmt.Sprintf("%s=%s", sib.Dot, v))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func (s *sim) status(b *strings.Builder, c *simCoord) {
	if c.write != nil {
		if !c.write.Done() {
			return
		}
		out, err := c.write.Result()
		if err != nil {
			fmt.Fprintf(b, "write failed: %v\n", err)
			return
		}
		fmt.Fprintf(b, "write ok: dot=%s replicas=%v fallbacks=%v hinted=%v\n", out.Dot, out.Receipt.Replicas, out.Receipt.Fallbacks, out.Receipt.Hinted)
		return
	}
	if !c.read.Done() {
		return
	}
	out, err := c.read.Result()
	if err != nil {
		fmt.Fprintf(b, "read failed: %v\n", err)
		return
	}
	fmt.Fprintf(b, "read ok: %s versions=%d replicas=%v repaired=%v", fmtSet(out.Set), out.Receipt.Versions, out.Receipt.Replicas, out.Receipt.Repaired)
	if len(out.Receipt.Fallbacks) > 0 {
		fmt.Fprintf(b, " fallbacks=%v", out.Receipt.Fallbacks)
	}
	b.WriteString("\n")
}

// keepHint merges set into holder's hint for owner.
func (s *sim) keepHint(holder, owner string, set version.Set) {
	if s.hints[holder] == nil {
		s.hints[holder] = map[string]version.Set{}
	}
	s.hints[holder][owner] = version.Sync(s.hints[holder][owner], set)
}

// serve runs a message at its replica the way Replica.Handle does.
func (s *sim) serve(c *simCoord, m Message) Reply {
	r := Reply{Target: m.Target, Kind: m.Kind}
	set := s.replicas[m.To]
	switch m.Kind {
	case KindApply:
		// A fallback that issues does so on its hint for the primary,
		// and keeps the result there only.
		next := set.Clone()
		if m.HintFor != "" {
			next = s.hints[m.To][m.HintFor].Clone()
		}
		d, err := next.Update(version.Write{Node: m.To, Context: c.wreq.Context, Value: c.wreq.Value, Deleted: c.wreq.Deleted, MaxSiblings: 3})
		if err != nil {
			r.Err = err
			return r
		}
		if m.HintFor != "" {
			s.keepHint(m.To, m.HintFor, next)
		} else {
			*set = next
		}
		r.Set, r.Dot = next.Clone(), d
	case KindMerge:
		if m.HintFor != "" {
			s.keepHint(m.To, m.HintFor, m.Set)
			return r
		}
		*set = version.Sync(*set, m.Set)
		r.Set = set.Clone()
	case KindRead:
		r.Set = set.Clone()
		if m.HintFor != "" { // a fallback answers with its hint alone
			r.Set = s.hints[m.To][m.HintFor].Clone()
		}
	}
	return r
}

func (s *sim) take(c *simCoord, to string) (Message, bool) {
	for i, m := range c.inflight {
		if m.To == to {
			c.inflight = append(c.inflight[:i], c.inflight[i+1:]...)
			return m, true
		}
	}
	return Message{}, false
}

func (s *sim) step(c *simCoord, r Reply) []Message {
	var out []Message
	if c.write != nil {
		out = c.write.Step(r)
	} else {
		out = c.read.Step(r)
	}
	c.inflight = append(c.inflight, out...)
	return out
}

// spares parses a comma-separated list of spare nodes.
func spares(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func TestMachineScripts(t *testing.T) {
	datadriven.Walk(t, "testdata/machine", func(t *testing.T, path string) {
		s := &sim{replicas: map[string]*version.Set{}, hints: map[string]map[string]version.Set{}, coords: map[string]*simCoord{}, clientCx: map[string]version.Context{}}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			var b strings.Builder
			arg := func(k string) string {
				var v string
				if d.HasArg(k) {
					d.ScanArgs(t, k, &v)
				}
				return v
			}
			switch d.Cmd {
			case "replicas":
				for _, a := range d.CmdArgs {
					s.replicas[a.Key] = &version.Set{}
				}
				return "ok"
			case "put", "delete":
				var w int
				d.ScanArgs(t, "w", &w)
				c := &simCoord{name: arg("coord")}
				c.wreq = &WriteRequest{Context: s.clientCx[arg("ctx")], Value: []byte(arg("value")), Deleted: d.Cmd == "delete"}
				c.write = NewWrite(parseTargets(arg("targets")), w, arg("sloppy") != "false", arg("self"), spares(arg("spares")))
				s.coords[c.name] = c
				msgs := c.write.Start()
				c.inflight = append(c.inflight, msgs...)
				fmtMsgs(&b, msgs)
				s.status(&b, c)
			case "get":
				var r int
				d.ScanArgs(t, "r", &r)
				c := &simCoord{name: arg("coord")}
				o := ReadOptions{Sloppy: arg("sloppy") != "false", Self: arg("self")}
				if f := arg("fanout"); f != "" {
					o.Fanout, _ = strconv.Atoi(f)
				}
				c.read = NewRead(parseTargets(arg("targets")), r, o)
				s.coords[c.name] = c
				msgs := c.read.Start()
				c.inflight = append(c.inflight, msgs...)
				fmtMsgs(&b, msgs)
				s.status(&b, c)
			case "durable": // the issuer's fsync finished after a pending apply
				c := s.coords[arg("coord")]
				r := Reply{Target: c.write.issuer, Kind: KindApply}
				if e := arg("err"); e != "" {
					r.Err = errors.New(e)
				}
				was := c.write.Done()
				fmtMsgs(&b, s.step(c, r))
				if !was {
					s.status(&b, c)
				}
			case "deliver", "fail", "drop":
				c := s.coords[arg("coord")]
				m, ok := s.take(c, arg("to"))
				if !ok {
					return "no message in flight to " + arg("to")
				}
				if d.Cmd == "drop" {
					return "dropped " + m.Kind.String() + " to " + m.To
				}
				var r Reply
				if d.Cmd == "fail" {
					r = Reply{Target: m.Target, Kind: m.Kind, Err: errors.New(arg("err"))}
					if arg("corrupt") == "true" {
						r.Err = fmt.Errorf("%w: %s", ErrCorruptReplica, arg("err"))
					}
					if arg("notapplied") == "true" {
						r.Err = fmt.Errorf("%w: %s", ErrNotApplied, arg("err"))
					}
				} else if arg("refused") == "true" { // its hint budget is full
					r = Reply{Target: m.Target, Kind: m.Kind, HintRefused: true}
					if m.Kind == KindApply {
						r = Reply{Target: m.Target, Kind: m.Kind, Err: fmt.Errorf("%w: %w", ErrNotApplied, ErrHintRefused)}
					}
				} else {
					r = s.serve(c, m)
					r.Pending = arg("pending") == "true"
				}
				if r.Err != nil {
					fmt.Fprintf(&b, "%s from %s: error %v\n", m.Kind, m.To, r.Err)
				}
				was := c.write != nil && c.write.Done() || c.read != nil && c.read.Done()
				fmtMsgs(&b, s.step(c, r))
				if !was {
					s.status(&b, c)
				}
			case "timeout":
				c := s.coords[arg("coord")]
				if c.write != nil {
					c.write.Timeout()
				} else {
					c.read.Timeout()
				}
				s.status(&b, c)
			case "speculate":
				c := s.coords[arg("coord")]
				msgs := c.read.Speculate()
				c.inflight = append(c.inflight, msgs...)
				fmtMsgs(&b, msgs)
			case "finish":
				c := s.coords[arg("coord")]
				msgs := c.read.Finish()
				c.inflight = append(c.inflight, msgs...)
				fmtMsgs(&b, msgs)
			case "read-context": // a client reads replica `from` and keeps its context as `as`
				s.clientCx[arg("as")] = s.replicas[arg("from")].Context.Clone()
				return "ok"
			case "state":
				names := make([]string, 0, len(s.replicas))
				for n := range s.replicas {
					names = append(names, n)
				}
				sort.Strings(names)
				for _, n := range names {
					fmt.Fprintf(&b, "%s: %s\n", n, fmtSet(*s.replicas[n]))
					for owner, h := range s.hints[n] {
						fmt.Fprintf(&b, "%s: hint for %s %s\n", n, owner, fmtSet(h))
					}
				}
			default:
				t.Fatalf("unknown command %q", d.Cmd)
			}
			out := b.String()
			if out == "" {
				return "(nothing)"
			}
			return out
		})
	})
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name string
		pref []string
		n    int
		down string
		self string
		want string
	}{
		{"all up", []string{"a", "b", "c", "d"}, 3, "", "a", "a b c"},
		{"fallback", []string{"a", "b", "c", "d", "e"}, 3, "b", "a", "a c d>b"},
		{"skip down fallback", []string{"a", "b", "c", "d", "e"}, 3, "b,d", "a", "a c e>b"},
		{"hint on self when every node is a primary", []string{"a", "b", "c"}, 3, "b", "c", "a c c*>b"},
		{"hint on first live primary", []string{"a", "b", "c"}, 3, "c", "x", "a b a*>c"},
		{"two down, one fallback", []string{"a", "b", "c", "d"}, 3, "a,b", "d", "c d>a c*>b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			down := map[string]bool{}
			for _, d := range strings.Split(tt.down, ",") {
				down[d] = true
			}
			ts, err := Plan(tt.pref, tt.n, func(n string) bool { return !down[n] }, tt.self)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, x := range ts {
				s := x.Node
				if !x.Counts {
					s += "*"
				}
				if x.HintFor != "" {
					s += ">" + x.HintFor
				}
				got = append(got, s)
			}
			if strings.Join(got, " ") != tt.want {
				t.Fatalf("Plan = %v, want %s", got, tt.want)
			}
		})
	}
}

// The receipt of a read names the replicas its answer merged, not the ones
// that replied later (while a blocking repair held the answer back).
func TestReadReceiptNamesMergedReplicas(t *testing.T) {
	m := NewRead(parseTargets("a,b,c"), 2, ReadOptions{})
	m.Start()
	m.Step(Reply{Target: 0, Kind: KindRead, Set: written("a", "v1")})
	if repairs := m.Step(Reply{Target: 1, Kind: KindRead}); len(repairs) != 1 {
		t.Fatalf("the stale b got %d repairs, want 1", len(repairs))
	}
	m.Step(Reply{Target: 2, Kind: KindRead, Set: written("c", "concurrent")})
	out, err := m.Result()
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Receipt.Replicas; len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("receipt names %v, want [a b]: c's sibling is not in the answer %v", got, out.Set.Dots())
	}
}

// A fallback that keeps nothing (its owner's budget is full) does not
// count toward W and is not named in the receipt; the next spare takes
// its place, and without one the write fails.
func TestWriteRefusedHintDoesNotCount(t *testing.T) {
	run := func(spares []string) (WriteOutcome, error) {
		m := NewWrite(parseTargets("a,d>b,e>c"), 3, true, "a", spares)
		m.Start()
		pending := m.Step(Reply{Target: 0, Kind: KindApply, Set: written("a", "v")})
		for len(pending) > 0 {
			msg := pending[0]
			pending = append(pending[1:], m.Step(Reply{Target: msg.Target, Kind: KindMerge, HintRefused: msg.To == "d"})...)
		}
		return m.Result()
	}
	out, err := run([]string{"f"})
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Receipt.Fallbacks; len(got) != 2 || got["f"] != "b" || got["e"] != "c" {
		t.Fatalf("fallbacks = %v, want f for b and e for c", got)
	}
	if got := out.Receipt.Replicas; slices.Contains(got, "d") {
		t.Fatalf("replicas = %v: d kept nothing", got)
	}
	if _, err := run(nil); err == nil {
		t.Fatal("w=3 with a refused hint and no spare succeeded")
	}
}

// In a last-write-wins bucket replicas keep every concurrent sibling, and
// only a read's answer is resolved. With a's clock behind, A (time 1001)
// overwrote C (1003) with C's context while B (1002) was written
// concurrently. Resolving in storage made the winner depend on the order
// of merges, and merging two such winners lost both; now every order of
// replies gives the same answer, B, and repairs carry A and B.
func TestLWWReadResolvesOnlyTheAnswer(t *testing.T) {
	var a, b, c version.Set
	dc, _ := c.Update(version.Write{Node: "c", Value: []byte("C"), WriteTime: 1003, LWW: true})
	_, _ = b.Update(version.Write{Node: "b", Value: []byte("B"), WriteTime: 1002, LWW: true})
	a = c.Clone() // a got C by replication, then the client overwrote it there
	_, _ = a.Update(version.Write{Node: "a", Context: version.WriteContext(version.Context{}, dc), Value: []byte("A"), WriteTime: 1001, LWW: true})
	sets := []version.Set{a, b, c}
	all := version.Sync(version.Sync(a, b), c)
	for _, order := range [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}} {
		m := NewRead(parseTargets("a,b,c"), 3, ReadOptions{LWW: true})
		m.Start()
		var repairs []Message
		for _, i := range order {
			repairs = append(repairs, m.Step(Reply{Target: i, Kind: KindRead, Set: sets[i].Clone()})...)
		}
		out, err := m.Result()
		if err != nil {
			t.Fatal(err)
		}
		if live := out.Set.Live(); len(live) != 1 || string(live[0].Value) != "B" {
			t.Fatalf("order %v: answer %v, want B", order, out.Set.Dots())
		}
		for _, r := range repairs {
			if !r.Set.Equal(all) || len(r.Set.Live()) != 2 {
				t.Fatalf("order %v: repair of %s carries %v, want the unresolved merge %v", order, r.To, r.Set.Dots(), all.Dots())
			}
		}
	}
}
