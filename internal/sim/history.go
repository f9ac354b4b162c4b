package sim

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/quorumkv/quorumkv/version"
)

// Outcome is how an operation ended, as the client saw it.
type Outcome int

const (
	// OK: acknowledged (204 for a write, 200/300/404 for a read).
	OK Outcome = iota
	// Failed: certainly not applied (the read before a write failed, a
	// 409, a node that was down when asked).
	Failed
	// Unknown: maybe applied: a 503 or 504 write, or a coordinator that
	// died while the request ran.
	Unknown
)

func (o Outcome) String() string {
	return [...]string{"ok", "failed", "unknown"}[o]
}

// Op is one client operation and what came of it.
type Op struct {
	Client int
	Kind   string // "add", "delete", "read"
	Key    string
	Node   string // the coordinator
	Params string // the query string
	// Invoke and Complete are simulated times since the run started.
	Invoke, Complete time.Duration
	Outcome          Outcome
	Status           int
	// Element is what an add added.
	Element string
	// Seen are the elements the operation's read returned (for an add or
	// delete: the read before the write).
	Seen []string
	// Context is the causal context the write sent (its read's).
	Context version.Context
	// Dot is the dot an acknowledged add was issued (from its reply's
	// context).
	Dot version.Dot
	// Replicas are the nodes whose acks counted (the receipt).
	Replicas []string
}

func (o Op) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%8s..%-8s c%d %-6s %s via %s", fmtDur(o.Invoke), fmtDur(o.Complete), o.Client, o.Kind, o.Key, o.Node)
	if o.Params != "" {
		fmt.Fprintf(&b, " ?%s", o.Params)
	}
	fmt.Fprintf(&b, " -> %s", o.Outcome)
	if o.Status != 0 {
		fmt.Fprintf(&b, " %d", o.Status)
	}
	if o.Element != "" {
		fmt.Fprintf(&b, " +%s", o.Element)
	}
	if !o.Dot.IsZero() {
		fmt.Fprintf(&b, " dot=%s", o.Dot)
	}
	if len(o.Replicas) > 0 {
		acked := slices.Clone(o.Replicas)
		slices.Sort(acked) // simultaneous acks arrive in any order
		fmt.Fprintf(&b, " acked-by=%s", strings.Join(acked, ","))
	}
	if o.Kind != "add" || len(o.Seen) > 0 {
		fmt.Fprintf(&b, " saw=[%s]", strings.Join(o.Seen, " "))
	}
	return b.String()
}

func fmtDur(d time.Duration) string { return d.Round(time.Millisecond).String() }

// Event is a fault or a phase change in the run's timeline.
type Event struct {
	At   time.Duration
	What string
}

// History is a run's record: every operation and every fault, in order of
// simulated time. It is safe for concurrent use.
type History struct {
	mu     sync.Mutex
	ops    []Op
	events []Event
}

func (h *History) addOp(o Op) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, o)
}

func (h *History) event(at time.Duration, format string, a ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, Event{At: at, What: fmt.Sprintf(format, a...)})
}

// Ops returns the operations, ordered by invocation.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := slices.Clone(h.ops)
	slices.SortStableFunc(out, func(a, b Op) int { return int(a.Invoke - b.Invoke) })
	return out
}

// Events returns the faults and phases in order.
func (h *History) Events() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := slices.Clone(h.events)
	slices.SortStableFunc(out, func(a, b Event) int { return int(a.At - b.At) })
	return out
}

// String renders the timeline: events and operations merged by time.
func (h *History) String() string {
	ops, evs := h.Ops(), h.Events()
	var b strings.Builder
	i, j := 0, 0
	for i < len(ops) || j < len(evs) {
		if j < len(evs) && (i == len(ops) || evs[j].At <= ops[i].Invoke) {
			fmt.Fprintf(&b, "%8s   ** %s\n", fmtDur(evs[j].At), evs[j].What)
			j++
			continue
		}
		b.WriteString(ops[i].String())
		b.WriteString("\n")
		i++
	}
	return b.String()
}
