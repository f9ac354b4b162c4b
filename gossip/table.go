package gossip

import "maps"

// table is the replicated part of the cluster view: every member ever seen,
// every bucket and the committed layout. It is pure: no locks, no I/O, no clock. Merges keep the
// maximum under supersedes, so replicas that have seen the same updates hold
// the same table whatever the order of delivery.
type table struct {
	self    string // local node ID; its entry changes only locally or by tombstone
	cluster string // entries naming another cluster are refused

	members map[string]versioned
	buckets map[string]BucketProps
	layout  *Layout // nil until one is proposed or learned; never modified in place
}

func newTable(self, cluster string) *table {
	return &table{
		self:    self,
		cluster: cluster,
		members: make(map[string]versioned),
		buckets: make(map[string]BucketProps),
	}
}

// mergeMember applies a remote member entry and reports whether the table
// changed. Entries merge by merge, the local node's own aside: its
// node-owned fields are only replaced by a tombstone. A live copy of it
// whose node-owned fields supersede the local ones comes from an earlier
// life of this node, whose clock ran ahead of the current one (versions
// are clock readings): the local entry then outbids it, keeping its
// content, so that it wins everywhere once gossiped. The operator group
// of the local entry merges as any other's: an operator on another node
// may set this node's intent. A member's join time is the earliest any
// copy of its entry holds: a node restarted on an empty disk takes a new
// first-start time, and the cluster (and the node itself, on learning the
// older one) keeps the old, so its ring position does not move.
func (t *table) mergeMember(v versioned) (changed bool, err error) {
	if err := v.Meta.Validate(); err != nil {
		return false, err
	}
	if v.Meta.Cluster != t.cluster {
		return false, ErrWrongCluster
	}
	cur, ok := t.members[v.Meta.ID]
	if !ok {
		t.members[v.Meta.ID] = v
		return true, nil
	}
	next := merge(cur, v)
	if v.Meta.ID == t.self && !v.Meta.Removed() {
		if cur.Meta.Removed() {
			return false, nil
		}
		next = cur
		if g := v.Meta.group(); g.supersedes(cur.Meta.group()) {
			next.Meta.setGroup(g)
		}
		joined := minJoined(cur.Meta.Joined, v.Meta.Joined)
		switch {
		case v.supersedes(cur):
			next.Ver = v.Ver + 1
		case joined != cur.Meta.Joined:
			next.Ver++
		}
		next.Meta.Joined = joined
	}
	if next == cur {
		return false, nil
	}
	t.members[v.Meta.ID] = next
	return true, nil
}

// minJoined is the earlier of two join times, a zero one (unknown) aside.
func minJoined(a, b int64) int64 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}

// setMember stores an entry unconditionally (local changes).
func (t *table) setMember(v versioned) { t.members[v.Meta.ID] = v }

// mergeBucket applies remote bucket properties and reports whether the
// table changed.
func (t *table) mergeBucket(name string, p BucketProps) (changed bool, err error) {
	if err := validBucketName(name); err != nil {
		return false, err
	}
	if err := p.Validate(); err != nil {
		return false, err
	}
	if cur, ok := t.buckets[name]; ok && !p.supersedes(cur) {
		return false, nil
	}
	t.buckets[name] = p
	return true, nil
}

// mergeLayout adopts l if it is valid and supersedes the layout held. It
// reports whether l was adopted, and whether it lost to the layout held
// (an equal copy does neither).
func (t *table) mergeLayout(l Layout) (adopted, lost bool, err error) {
	if t.layout != nil && l.Equal(*t.layout) {
		return false, false, nil // the usual push-pull: nothing to do
	}
	if err := l.Validate(); err != nil {
		return false, false, err
	}
	if t.layout != nil && !l.Supersedes(*t.layout) {
		return false, true, nil
	}
	c := l.Clone()
	t.layout = &c
	return true, false, nil
}

// nextVer returns a version for a local change to an entry at cur: the
// clock reading, or cur+1 if the clock has not moved past it, so a local
// change always supersedes what it replaces.
func nextVer(now, cur int64) int64 {
	return max(now, cur+1)
}

// state snapshots the table as a State (members sorted by ID), sharing
// nothing with it.
func (t *table) state() State {
	s := State{
		Members: make([]Meta, 0, len(t.members)),
		Buckets: maps.Clone(t.buckets),
	}
	if t.layout != nil {
		l := t.layout.Clone()
		s.Layout = &l
	}
	for _, v := range t.members {
		s.Members = append(s.Members, v.Meta)
	}
	sortMetas(s.Members)
	return s
}

// wire snapshots the table for push-pull.
func (t *table) wire() stateMsg {
	m := stateMsg{
		Cluster: t.cluster,
		Members: make([]metaWire, 0, len(t.members)),
		Buckets: maps.Clone(t.buckets),
		Layout:  t.layout,
	}
	for _, v := range t.members {
		m.Members = append(m.Members, toWire(v))
	}
	return m
}
