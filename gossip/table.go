package gossip

import "maps"

// table is the replicated part of the cluster view: every member ever seen
// and every bucket. It is pure: no locks, no I/O, no clock. Merges keep the
// maximum under supersedes, so replicas that have seen the same updates hold
// the same table whatever the order of delivery.
type table struct {
	self    string // local node ID; its entry changes only locally or by tombstone
	cluster string // entries naming another cluster are refused

	members map[string]versioned
	buckets map[string]BucketProps
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
// changed. The local node's entry is only replaced by a tombstone. A live
// copy of it with a higher version comes from an earlier life of this
// node, whose clock ran ahead of the current one (versions are clock
// readings): the local entry then outbids it, keeping its content, so that
// it wins everywhere once gossiped. A member's join time is the earliest
// any copy of its entry holds: a node restarted on an empty disk takes a
// new first-start time, and the cluster (and the node itself, on learning
// the older one) keeps the old, so its ring position does not move.
func (t *table) mergeMember(v versioned) (changed bool, err error) {
	if err := v.Meta.Validate(); err != nil {
		return false, err
	}
	if v.Meta.Cluster != t.cluster {
		return false, ErrWrongCluster
	}
	cur, ok := t.members[v.Meta.ID]
	// Both live, or equal but for it: the join time is the earliest
	// either holds.
	joined := int64(0)
	if ok && (!cur.Meta.Removed() && !v.Meta.Removed() || !v.supersedes(cur) && !cur.supersedes(v)) {
		joined = minJoined(cur.Meta.Joined, v.Meta.Joined)
	}
	if v.Meta.ID == t.self && ok && !v.Meta.Removed() {
		if cur.Meta.Removed() {
			return false, nil
		}
		switch {
		case v.supersedes(cur):
			cur.Ver = v.Ver + 1
		case joined != cur.Meta.Joined:
			cur.Ver++
		default:
			return false, nil
		}
		cur.Meta.Joined = joined
		t.members[t.self] = cur
		return true, nil
	}
	if !ok {
		t.members[v.Meta.ID] = v
		return true, nil
	}
	next := cur
	if v.supersedes(cur) {
		next = v
	}
	if joined != 0 {
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

// nextVer returns a version for a local change to an entry at cur: the
// clock reading, or cur+1 if the clock has not moved past it, so a local
// change always supersedes what it replaces.
func nextVer(now, cur int64) int64 {
	return max(now, cur+1)
}

// state snapshots the table as a State (members sorted by ID).
func (t *table) state() State {
	s := State{
		Members: make([]Meta, 0, len(t.members)),
		Buckets: maps.Clone(t.buckets),
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
	}
	for _, v := range t.members {
		m.Members = append(m.Members, toWire(v))
	}
	return m
}
