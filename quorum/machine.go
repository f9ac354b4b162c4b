package quorum

import (
	"errors"
	"fmt"
	"slices"

	"github.com/quorumkv/quorumkv/version"
)

func isTooManySiblings(err error) bool {
	return errors.Is(err, ErrTooManySiblings) || errors.Is(err, version.ErrTooManySiblings)
}

func isKeyTooLarge(err error) bool {
	return errors.Is(err, ErrKeyTooLarge) || errors.Is(err, version.ErrTooLarge)
}

func isImplausible(err error) bool {
	return errors.Is(err, ErrImplausible) || errors.Is(err, version.ErrImplausible)
}

// Kind is the kind of a message between a coordinator and a replica.
type Kind uint8

// Message kinds.
const (
	// KindApply asks a primary to issue the write's dot: apply the client
	// write with version.Set.Update and return the resulting set.
	KindApply Kind = iota + 1
	// KindMerge asks a replica to merge a set with version.Sync, or, with
	// HintFor, to keep it as a durable hint for that node.
	KindMerge
	// KindRead asks a replica for its set.
	KindRead
	// KindMarkReapable tells replicas that every primary holds a tombstone
	// set, so it may be reaped after the grace period.
	KindMarkReapable
)

var kindNames = [...]string{"?", "apply", "merge", "read", "reapable"}

// String names the kind.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "?"
}

// Message is an instruction from a state machine to its driver: send this
// to that target.
type Message struct {
	Target int // index into the plan's targets
	To     string
	Kind   Kind
	// HintFor is set when the target keeps the data as a hint for a
	// down primary.
	HintFor string
	// Set is the set to merge (KindMerge, KindMarkReapable).
	Set version.Set
}

// Reply is a replica's answer to a Message, fed back into the machine.
type Reply struct {
	Target int
	Kind   Kind
	Err    error
	// Set is the replica's set after applying (KindApply), or its stored
	// set (KindRead).
	Set version.Set
	// Dot is the dot issued (KindApply).
	Dot version.Dot
	// Pending marks an apply reply that carries the issued set before the
	// issuer's write is durable: the machine replicates it at once, and
	// counts the issuer's ack when a second KindApply reply (with Pending
	// false, or an error) reports the fsync.
	Pending bool
	// HintRefused marks the answer of a node that kept nothing of the
	// write: its hint budget for the owner it stands in for was full (the
	// partition is then repaired by anti-entropy). It is not an ack: it
	// does not count toward W, the receipt does not name the owner as
	// hinted, and a fallback that refused is replaced by the next spare.
	HintRefused bool
}

type targetState uint8

const (
	tsIdle targetState = iota
	tsPending
	tsAcked
	tsFailed
)

// WriteMachine coordinates one write. It is pure: Start and Step return
// the messages to send, and Done and Result tell when and how it ended. It
// is not safe for concurrent use; the driver owns it.
type WriteMachine struct {
	targets []Target
	w       int
	sloppy  bool
	self    string
	state   []targetState
	why     []string
	tried   []bool
	issuer  int
	issued  bool
	set     version.Set
	dot     version.Dot
	acked   []int // targets that counted, in arrival order
	hinted  []string
	done    bool
	err     error
	// tooLarge is the last merge refused because it would have built a
	// record too large to replicate: if W is then out of reach, the write
	// fails with it (409) rather than as a plain quorum failure.
	tooLarge error
	// spares are the available nodes past the plan in the preference
	// list; the next one replaces a fallback that refused its hint.
	spares []string
}

// NewWrite returns a machine for a write of w acks over targets. With
// sloppy false, fallbacks do not count toward w. spares are nodes the plan
// left out (see Spares): a fallback that keeps nothing because its hint
// budget is full is replaced by the next of them.
func NewWrite(targets []Target, w int, sloppy bool, self string, spares []string) *WriteMachine {
	return &WriteMachine{
		targets: slices.Clone(targets), w: w, sloppy: sloppy, self: self,
		state: make([]targetState, len(targets)), why: make([]string, len(targets)),
		tried: make([]bool, len(targets)), issuer: -1, spares: spares,
	}
}

// replace adds a target standing in for the same primary as fallback i,
// which refused its hint, on the next spare. It reports whether there was
// one.
func (m *WriteMachine) replace(i int) (int, bool) {
	t := m.targets[i]
	if !t.Fallback() || len(m.spares) == 0 {
		return 0, false
	}
	next := Target{Node: m.spares[0], HintFor: t.HintFor, Counts: true}
	m.spares = m.spares[1:]
	m.targets = append(m.targets, next)
	m.state = append(m.state, tsIdle)
	m.why = append(m.why, "")
	m.tried = append(m.tried, false)
	return len(m.targets) - 1, true
}

// refused records that target i kept nothing of the write, and replaces it
// when it was a fallback. It returns the merge for the replacement, if the
// write has a version to send.
func (m *WriteMachine) refused(i int, why string) []Message {
	m.state[i] = tsFailed
	m.why[i] = why
	j, ok := m.replace(i)
	if !ok || !m.issued {
		m.finishIfImpossible()
		m.checkDone()
		return nil
	}
	m.state[j] = tsPending
	t := m.targets[j]
	return []Message{{Target: j, To: t.Node, Kind: KindMerge, HintFor: t.HintFor, Set: m.set}}
}

// counts reports whether an ack from target i counts toward W.
func (m *WriteMachine) counts(i int) bool {
	t := m.targets[i]
	return t.Counts && (m.sloppy || t.HintFor == "")
}

// nextIssuer picks the target to issue the dot: self if it is a primary,
// then the first untried primary, then any untried counting target.
func (m *WriteMachine) nextIssuer() int {
	best := -1
	for i, t := range m.targets {
		if m.tried[i] || !t.Counts {
			continue
		}
		switch {
		case t.HintFor == "" && t.Node == m.self:
			return i
		case best == -1, t.HintFor == "" && m.targets[best].HintFor != "":
			best = i
		}
	}
	return best
}

// Start returns the first message: the apply on the issuing replica. When
// the plan cannot reach W at all, the write fails before anything is
// applied.
func (m *WriteMachine) Start() []Message {
	m.finishIfImpossible()
	if m.done {
		return nil
	}
	return m.issue()
}

func (m *WriteMachine) issue() []Message {
	i := m.nextIssuer()
	if i < 0 {
		m.finishIfImpossible()
		return nil
	}
	m.issuer = i
	m.tried[i] = true
	m.state[i] = tsPending
	t := m.targets[i]
	// A fallback that issues (every primary is down or failed) also keeps
	// the result as a hint for the primary it stands in for.
	return []Message{{Target: i, To: t.Node, Kind: KindApply, HintFor: t.HintFor}}
}

// Step feeds a reply and returns the messages it causes.
func (m *WriteMachine) Step(r Reply) []Message {
	if r.Target < 0 || r.Target >= len(m.targets) || m.state[r.Target] != tsPending {
		return nil // duplicate or stray
	}
	if r.Kind == KindApply && m.issued && r.Target == m.issuer {
		// the issuer's durability report after a Pending apply
		if r.Err != nil {
			m.state[r.Target] = tsFailed
			m.why[r.Target] = r.Err.Error()
			m.finishIfImpossible()
			m.checkDone()
			return nil
		}
		m.ack(r.Target)
		return nil
	}
	if r.Kind == KindApply {
		if r.Err != nil {
			m.state[r.Target] = tsFailed
			m.why[r.Target] = r.Err.Error()
			if errors.Is(r.Err, ErrHintRefused) {
				m.replace(r.Target) // the spare may issue, or take the merge
			}
			if isTooManySiblings(r.Err) || isKeyTooLarge(r.Err) || isImplausible(r.Err) {
				m.done, m.err = true, r.Err
				return nil
			}
			if !errors.Is(r.Err, ErrNotApplied) {
				// The issuer may have applied the write (its reply was
				// lost, say): another issuer would give it a second
				// version. The write fails; it may have been applied.
				m.done, m.err = true, m.quorumError(false)
				return nil
			}
			// As at Start: nothing more is applied once W is out of reach.
			m.finishIfImpossible()
			if m.done {
				return nil
			}
			return m.issue()
		}
		m.issued, m.set, m.dot = true, r.Set, r.Dot
		if !r.Pending {
			m.ack(r.Target)
		}
		var out []Message
		for i, t := range m.targets {
			if i == r.Target || m.state[i] != tsIdle {
				continue
			}
			m.state[i] = tsPending
			out = append(out, Message{Target: i, To: t.Node, Kind: KindMerge, HintFor: t.HintFor, Set: r.Set})
		}
		m.finishIfImpossible()
		return out
	}
	if r.Err != nil {
		if errors.Is(r.Err, ErrHintRefused) {
			return m.refused(r.Target, r.Err.Error())
		}
		m.state[r.Target] = tsFailed
		m.why[r.Target] = r.Err.Error()
		if isKeyTooLarge(r.Err) {
			m.tooLarge = r.Err
		}
		m.finishIfImpossible()
		m.checkDone()
		return nil
	}
	if r.HintRefused {
		return m.refused(r.Target, "kept no hint: its hint budget for "+m.targets[r.Target].HintFor+" is full")
	}
	m.ack(r.Target)
	return nil
}

func (m *WriteMachine) ack(i int) {
	m.state[i] = tsAcked
	if h := m.targets[i].HintFor; h != "" {
		m.hinted = append(m.hinted, h)
	}
	if m.counts(i) {
		m.acked = append(m.acked, i)
	}
	m.checkDone()
}

// checkDone ends the write once W counting acks are in and every hint kept
// on a primary has settled, so the receipt names the hints that are
// durable. Such hints sit on nodes that are up, so this adds no wait for a
// down node.
func (m *WriteMachine) checkDone() {
	if m.done || len(m.acked) < m.w {
		return
	}
	for i, t := range m.targets {
		if !t.Counts && m.state[i] == tsPending {
			return
		}
	}
	m.done = true
}

// finishIfImpossible ends the write when W can no longer be reached.
func (m *WriteMachine) finishIfImpossible() {
	if m.done {
		return
	}
	possible := len(m.acked)
	for i := range m.targets {
		if m.counts(i) && (m.state[i] == tsPending || m.state[i] == tsIdle) {
			possible++
		}
	}
	issuerLeft := m.issued || (m.issuer >= 0 && m.state[m.issuer] == tsPending) || m.nextIssuer() >= 0
	if possible < m.w || !issuerLeft {
		m.done = true
		m.err = m.quorumError(false)
		if m.tooLarge != nil {
			m.err = fmt.Errorf("%w: %w", m.err, m.tooLarge)
		}
	}
}

// Timeout ends a write that has not reached W by its deadline.
func (m *WriteMachine) Timeout() {
	if !m.done {
		m.done = true
		if len(m.acked) < m.w { // W reached with a hint still pending is a success
			m.err = m.quorumError(true)
		}
	}
}

func (m *WriteMachine) quorumError(timedOut bool) error {
	e := newQuorumError("write", m.w, m.acked, m.targets, m.state, m.why, timedOut)
	for i, t := range m.targets {
		if t.HintFor != "" {
			e.Failed[t.HintFor] = "suspected by the failure detector; " + t.Node + " keeps a hint for it"
		}
		if m.state[i] == tsAcked && !m.counts(i) && t.Counts {
			e.Failed[t.Node] = "fallback does not count with sloppy=false"
		}
	}
	return e
}

// newQuorumError reports a missed quorum: the targets that counted, and
// why each failed or unanswered one did not.
func newQuorumError(op string, needed int, counted []int, targets []Target, state []targetState, why []string, timedOut bool) *QuorumError {
	e := &QuorumError{Op: op, Needed: needed, Answered: len(counted), TimedOut: timedOut, Failed: map[string]string{}}
	for _, i := range counted {
		e.Replied = append(e.Replied, targets[i].Node)
	}
	for i, t := range targets {
		switch {
		case state[i] == tsFailed:
			e.Failed[t.Node] = why[i]
		case state[i] == tsPending && timedOut:
			e.Failed[t.Node] = "no reply before the deadline"
		}
	}
	return e
}

// anyPending reports whether some target still owes a reply.
func anyPending(state []targetState) bool {
	for _, s := range state {
		if s == tsPending {
			return true
		}
	}
	return false
}

// Done reports whether the client can be answered.
func (m *WriteMachine) Done() bool { return m.done }

// Settled reports whether no reply is outstanding any more.
func (m *WriteMachine) Settled() bool { return !anyPending(m.state) }

// WriteOutcome is how a write ended.
type WriteOutcome struct {
	Set     version.Set // the set the issuing replica stored
	Dot     version.Dot
	Receipt Receipt
}

// Result returns the outcome, or the error that ended the write.
func (m *WriteMachine) Result() (WriteOutcome, error) {
	if m.err != nil {
		return WriteOutcome{}, m.err
	}
	return WriteOutcome{Set: m.set, Dot: m.dot, Receipt: m.receipt()}, nil
}

func (m *WriteMachine) receipt() Receipt {
	r := Receipt{Needed: m.w, Hinted: m.hinted}
	for _, i := range m.acked {
		r.addReplica(m.targets[i])
	}
	return r
}

// ReadMachine coordinates one read: it asks every target, answers after R
// replies with their causal merge, and then finds the replicas that read
// repair must bring up to date.
type ReadMachine struct {
	targets  []Target
	r        int
	lww      bool
	state    []targetState
	why      []string
	sets     []version.Set // each replica's last known set
	order    []int
	answered bool
	merged   version.Set
	versions int
	// answerN is how many replies (m.order[:answerN]) the answer merged.
	answerN  int
	repaired []bool
	err      error
	// standIns are the planned targets that stand in for a suspected
	// primary, read or not, for the error that names those primaries.
	standIns []Target
	sloppy   bool
	// ask is how many targets Start reads; the rest stay idle until a
	// read fails or Speculate is called.
	ask int
	// corrupt marks targets whose read failed on a corrupt record: they
	// are repaired like stale ones, which heals the record. It is nil
	// until the first such failure.
	corrupt []bool
}

// ReadOptions shape a read beyond its R.
type ReadOptions struct {
	// LWW resolves the answer last-write-wins; repairs still carry every
	// concurrent sibling (see Result).
	LWW bool
	// Sloppy reads the fallbacks that stand in for suspected primaries.
	Sloppy bool
	// Fanout is how many targets the read asks at first. Zero, or at
	// least the number of targets, asks every one (Riak's way, which
	// read-repairs every replica on every read). Fewer asks only that
	// many (at least R): each failed read asks the next idle target, and
	// Speculate asks all of them (Cassandra's way, which halves the
	// internode reads at R=2 of N=3).
	Fanout int
	// Self is the coordinator's node ID. A fanned-out read asks it first:
	// its copy costs no network round trip.
	Self string
}

// NewRead returns a machine for a read of r replies. With sloppy set, a
// fallback standing in for a suspected primary is read too, and counts
// toward R: it answers with what it holds for the key, the hints it keeps
// for that primary included, so a value written through fallbacks reads
// back while its primaries are down. Without sloppy only primaries are
// read. A hint kept on a node that is already a primary (Counts false) is
// never a separate target.
func NewRead(targets []Target, r int, o ReadOptions) *ReadMachine {
	var ts, standIns []Target
	for _, t := range targets {
		if t.HintFor != "" {
			standIns = append(standIns, t)
		}
		if t.HintFor == "" || (o.Sloppy && t.Fallback()) {
			ts = append(ts, t)
		}
	}
	ask := len(ts)
	if o.Fanout > 0 && o.Fanout < ask {
		ask = max(o.Fanout, r)
		// Self first, the others in plan order (primaries before
		// fallbacks).
		for i, t := range ts {
			if t.Node == o.Self && t.HintFor == "" {
				copy(ts[1:i+1], ts[:i])
				ts[0] = t
				break
			}
		}
	}
	return &ReadMachine{targets: ts, r: r, lww: o.LWW, standIns: standIns, sloppy: o.Sloppy, ask: ask,
		state: make([]targetState, len(ts)), why: make([]string, len(ts)),
		sets: make([]version.Set, len(ts)), repaired: make([]bool, len(ts))}
}

// Start returns the first reads: one for every target, or for the first
// Fanout of them. It returns nothing when there are fewer targets than R.
func (m *ReadMachine) Start() []Message {
	if len(m.targets) < m.r {
		m.err = m.quorumError(false)
		return nil
	}
	out := make([]Message, 0, m.ask)
	for i := range m.ask {
		out = append(out, m.readAt(i))
	}
	m.checkImpossible()
	return out
}

func (m *ReadMachine) readAt(i int) Message {
	m.state[i] = tsPending
	t := m.targets[i]
	return Message{Target: i, To: t.Node, Kind: KindRead, HintFor: t.HintFor}
}

// nextIdle returns a read for the first target not asked yet.
func (m *ReadMachine) nextIdle() []Message {
	for i, s := range m.state {
		if s == tsIdle {
			return []Message{m.readAt(i)}
		}
	}
	return nil
}

// Speculate asks every target not asked yet, for a read that has not
// reached R after the driver's speculative delay: a slow replica then
// costs one extra read instead of the client's wait.
func (m *ReadMachine) Speculate() []Message {
	if m.Done() {
		return nil
	}
	var out []Message
	for i, s := range m.state {
		if s == tsIdle {
			out = append(out, m.readAt(i))
		}
	}
	return out
}

// Idle reports whether some target has not been asked.
func (m *ReadMachine) Idle() bool {
	for _, s := range m.state {
		if s == tsIdle {
			return true
		}
	}
	return false
}

// Step feeds a reply. Once R replies are in, Done is true; the messages
// returned then are the read repairs for the replicas that replied stale.
func (m *ReadMachine) Step(r Reply) []Message {
	if r.Target < 0 || r.Target >= len(m.targets) || m.state[r.Target] != tsPending {
		return nil
	}
	if r.Kind == KindMerge { // a repair ack
		if r.Err == nil {
			m.state[r.Target] = tsAcked
			m.sets[r.Target] = r.Set
			if m.targets[r.Target].HintFor != "" {
				// A hint merge answers with no set; the hint now holds
				// at least the merge it was sent.
				m.sets[r.Target] = m.merged
			}
		} else {
			m.state[r.Target] = tsFailed
		}
		return nil
	}
	if r.Err != nil {
		m.state[r.Target] = tsFailed
		m.why[r.Target] = r.Err.Error()
		if errors.Is(r.Err, ErrCorruptReplica) {
			if m.corrupt == nil {
				m.corrupt = make([]bool, len(m.targets))
			}
			m.corrupt[r.Target] = true
		}
		if m.answered {
			return m.heal(r.Target, nil)
		}
		out := m.nextIdle()
		m.checkImpossible()
		return out
	}
	m.state[r.Target] = tsAcked
	m.sets[r.Target] = r.Set
	m.order = append(m.order, r.Target)
	if !m.answered && len(m.order) >= m.r {
		m.answered, m.answerN = true, len(m.order)
		m.merged = m.merge()
		m.versions = m.distinct()
		return m.repairs()
	}
	return nil
}

func (m *ReadMachine) checkImpossible() {
	if m.answered || m.err != nil {
		return
	}
	possible := len(m.order)
	for _, s := range m.state {
		if s == tsPending || s == tsIdle {
			possible++
		}
	}
	if possible < m.r {
		m.err = m.quorumError(false)
	}
}

// merge is the causal merge of the replies so far. It is what repairs
// send, unresolved also for a last-write-wins bucket (see Result).
func (m *ReadMachine) merge() version.Set {
	var out version.Set
	for _, i := range m.order {
		out = version.Sync(out, m.sets[i])
	}
	return out
}

func (m *ReadMachine) distinct() int {
	var seen []version.Set
next:
	for _, i := range m.order {
		for _, s := range seen {
			if s.Equal(m.sets[i]) {
				continue next
			}
		}
		seen = append(seen, m.sets[i])
	}
	return len(seen)
}

// repairs returns merges for every replied replica whose set differs from
// the merge of all replies so far, and for every replica whose read failed
// on a corrupt record.
func (m *ReadMachine) repairs() []Message {
	var out []Message
	for _, i := range m.order {
		if m.state[i] == tsAcked && !m.sets[i].Equal(m.merged) {
			out = append(out, m.repair(i))
		}
	}
	for i := range m.corrupt {
		out = m.heal(i, out)
	}
	return out
}

// repair returns the merge that brings target i up to the merged set.
func (m *ReadMachine) repair(i int) Message {
	m.state[i] = tsPending
	m.repaired[i] = true
	// A fallback is repaired as it was written: into its hint for the
	// primary, which handoff delivers.
	return Message{Target: i, To: m.targets[i].Node, Kind: KindMerge, HintFor: m.targets[i].HintFor, Set: m.merged}
}

// heal appends the repair of target i to out if its read failed on a
// corrupt record and it was not repaired yet: the merge replaces the
// record (store.Store.Merge), or for a fallback the hint it holds for the
// primary (store.Store.AddHint).
func (m *ReadMachine) heal(i int, out []Message) []Message {
	if m.corrupt != nil && m.corrupt[i] && m.state[i] == tsFailed && !m.repaired[i] {
		out = append(out, m.repair(i))
	}
	return out
}

// Finish is called when every reply is in or the deadline passed. It
// merges the late replies too and returns the repairs they call for.
func (m *ReadMachine) Finish() []Message {
	if !m.answered {
		if m.err == nil {
			m.err = m.quorumError(true)
		}
		return nil
	}
	for i, s := range m.state {
		if s == tsPending {
			m.state[i] = tsFailed
			m.why[i] = "no reply before the deadline"
		}
	}
	m.merged = m.merge()
	return m.repairs()
}

// Timeout ends a read that has not reached R by its deadline.
func (m *ReadMachine) Timeout() {
	if !m.answered && m.err == nil {
		m.err = m.quorumError(true)
	}
}

// Done reports whether the client can be answered.
func (m *ReadMachine) Done() bool { return m.answered || m.err != nil }

// Settled reports whether no reply or repair is outstanding.
func (m *ReadMachine) Settled() bool { return !anyPending(m.state) }

// RepairsPending reports whether repairs sent at answer time are
// outstanding.
func (m *ReadMachine) RepairsPending() bool {
	for i, s := range m.state {
		if s == tsPending && m.repaired[i] {
			return true
		}
	}
	return false
}

// ReadOutcome is how a read ended.
type ReadOutcome struct {
	Set     version.Set
	Receipt Receipt
}

// Result returns the merged set, or the error that ended the read.
func (m *ReadMachine) Result() (ReadOutcome, error) {
	if m.err != nil && !m.answered {
		return ReadOutcome{}, m.err
	}
	r := Receipt{Needed: m.r, Versions: m.versions}
	for _, i := range m.order[:m.answerN] { // the replies the answer merged
		r.addReplica(m.targets[i])
	}
	for i, rep := range m.repaired {
		if rep && m.state[i] == tsAcked {
			r.Repaired = append(r.Repaired, m.targets[i].Node)
		}
	}
	set := m.merged
	if m.lww {
		// Only the answer is resolved: replicas keep every concurrent
		// sibling, so that any order of merges agrees on the winner.
		set = set.Clone()
		set.ResolveLWW()
	}
	return ReadOutcome{Set: set, Receipt: r}, nil
}

// RepairedCount returns how many repairs were acked.
func (m *ReadMachine) RepairedCount() int {
	n := 0
	for i, rep := range m.repaired {
		if rep && m.state[i] == tsAcked {
			n++
		}
	}
	return n
}

func (m *ReadMachine) quorumError(timedOut bool) error {
	e := newQuorumError("read", m.r, m.order, m.targets, m.state, m.why, timedOut)
	for i, t := range m.targets {
		if m.state[i] == tsIdle && timedOut {
			e.Failed[t.Node] = "not asked before the deadline"
		}
	}
	for _, t := range m.standIns {
		switch {
		case !t.Fallback():
			e.Failed[t.HintFor] = "suspected by the failure detector"
		case m.sloppy:
			e.Failed[t.HintFor] = "suspected by the failure detector; " + t.Node + " is read in its place"
		default:
			e.Failed[t.HintFor] = "suspected by the failure detector; its fallback " + t.Node + " is not read with sloppy=false"
		}
	}
	return e
}
