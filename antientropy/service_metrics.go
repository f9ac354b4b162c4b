package antientropy

import (
	"context"
	"sync/atomic"
	"time"
)

// Metrics is a snapshot of a Service's counters, cumulative since New.
type Metrics struct {
	Exchanges          uint64 // partition exchanges with one peer that completed
	ExchangeErrors     uint64 // partition exchanges with one peer that failed
	PartitionsCompared uint64 // partition roots compared (once per peer)
	PartitionsEqual    uint64 // of those, equal at the root
	NodesCompared      uint64 // tree node hashes compared
	LeavesDiffering    uint64 // differing leaves found
	LeavesSettled      uint64 // differing leaves skipped as known unresolvable
	KeysDiffering      uint64 // keys whose records differed
	KeysPushed         uint64 // records pushed whose merge changed the peer
	KeysPulled         uint64 // records pulled whose merge changed this node
	Unreadable         uint64 // local records not sent because their set bytes do not decode
	MergesTooLarge     uint64 // records whose merge the store refused as too large (store.ErrTooLarge); skipped

	BytesMoved    uint64 // BytesSent + BytesReceived
	BytesSent     uint64 // request bodies this node sent as initiator
	BytesReceived uint64 // reply bodies this node received as initiator
	BytesHashes   uint64 // of sent+received: ae.hashes
	BytesLeafKeys uint64 // of sent+received: ae.leafkeys
	BytesRecords  uint64 // of sent+received: ae.fetch and ae.push
	BytesSweep    uint64 // of sent+received: ae.hastomb and ae.markreap
	BytesServed   uint64 // request and reply bodies of calls this node served
	RPCsServed    uint64 // ae.* requests served
	RPCErrors     uint64 // ae.* requests that failed
	RateWait      time.Duration

	TreeRebuilds    uint64 // whole partition trees rebuilt from the store
	LeafRebuilds    uint64 // leaves rebuilt after an inconsistency
	Inconsistencies uint64 // leaves found not to hash to their stored value

	TombstonesChecked uint64 // tombstones asked about in sweeps
	TombstonesMarked  uint64 // tombstones marked reapable by sweeps
	TombstonesReaped  uint64 // records deleted by the reaper
	StraysHandedOff   uint64 // records of keys this node does not replicate, turned into hints and dropped
	Prioritized       int    // partitions currently queued first

	// PrioritiesForwarded counts partitions this node asked their
	// replicas to queue, not replicating them itself.
	PrioritiesForwarded uint64
}

type counters struct {
	exchanges, exchangeErrors                            atomic.Uint64
	partitionsCompared, partitionsEqual, nodesCompared   atomic.Uint64
	leavesDiffering, leavesSettled, keysDiffering        atomic.Uint64
	keysPushed, keysPulled, unreadable                   atomic.Uint64
	mergesTooLarge                                       atomic.Uint64
	bytesSent, bytesReceived                             atomic.Uint64
	bytesHashes, bytesLeafKeys, bytesRecords, bytesSweep atomic.Uint64
	bytesServed, rpcsServed, rpcErrors                   atomic.Uint64
	inconsistencies                                      atomic.Uint64
	tombChecked, tombMarked, tombReaped                  atomic.Uint64
	straysHandedOff                                      atomic.Uint64

	prioritiesForwarded atomic.Uint64
}

// Metrics returns a snapshot of the counters.
func (s *Service) Metrics() Metrics {
	c := &s.m
	s.mu.Lock()
	prio := len(s.priority)
	s.mu.Unlock()
	m := Metrics{
		Exchanges:          c.exchanges.Load(),
		ExchangeErrors:     c.exchangeErrors.Load(),
		PartitionsCompared: c.partitionsCompared.Load(),
		PartitionsEqual:    c.partitionsEqual.Load(),
		NodesCompared:      c.nodesCompared.Load(),
		LeavesDiffering:    c.leavesDiffering.Load(),
		LeavesSettled:      c.leavesSettled.Load(),
		KeysDiffering:      c.keysDiffering.Load(),
		KeysPushed:         c.keysPushed.Load(),
		KeysPulled:         c.keysPulled.Load(),
		Unreadable:         c.unreadable.Load(),
		MergesTooLarge:     c.mergesTooLarge.Load(),
		BytesMoved:         c.bytesSent.Load() + c.bytesReceived.Load(),
		BytesSent:          c.bytesSent.Load(),
		BytesReceived:      c.bytesReceived.Load(),
		BytesHashes:        c.bytesHashes.Load(),
		BytesLeafKeys:      c.bytesLeafKeys.Load(),
		BytesRecords:       c.bytesRecords.Load(),
		BytesSweep:         c.bytesSweep.Load(),
		BytesServed:        c.bytesServed.Load(),
		RPCsServed:         c.rpcsServed.Load(),
		RPCErrors:          c.rpcErrors.Load(),
		RateWait:           s.limiter.waitedTotal(),
		TreeRebuilds:       s.forest.rebuilds.Load(),
		LeafRebuilds:       s.forest.leafRebuilds.Load(),
		Inconsistencies:    c.inconsistencies.Load(),
		TombstonesChecked:  c.tombChecked.Load(),
		TombstonesMarked:   c.tombMarked.Load(),
		TombstonesReaped:   c.tombReaped.Load(),
		StraysHandedOff:    c.straysHandedOff.Load(),
		Prioritized:        prio,
	}
	m.PrioritiesForwarded = c.prioritiesForwarded.Load()
	return m
}

// Traffic counts the bytes of one exchange or sweep by method.
type Traffic struct {
	Hashes   int `json:"hashes"`    // ae.hashes requests and replies
	LeafKeys int `json:"leaf_keys"` // ae.leafkeys requests and replies
	Records  int `json:"records"`   // ae.fetch and ae.push requests and replies
	Sweep    int `json:"sweep"`     // ae.hastomb requests and replies
	Calls    int `json:"calls"`     // calls made
}

// Total is all bytes moved.
func (t Traffic) Total() int { return t.Hashes + t.LeafKeys + t.Records + t.Sweep }

func (t *Traffic) add(o Traffic) {
	t.Hashes += o.Hashes
	t.LeafKeys += o.LeafKeys
	t.Records += o.Records
	t.Sweep += o.Sweep
	t.Calls += o.Calls
}

// meter is the Meter of one exchange or sweep: it applies the service's
// byte rate limit and counts bytes into the service metrics and its own
// Traffic. It is used by one goroutine.
type meter struct {
	s *Service
	t Traffic
}

func (m *meter) Wait(ctx context.Context) error { return m.s.limiter.wait(ctx) }

func (m *meter) Done(method string, sent, received int) {
	n := sent + received
	m.s.limiter.charge(n)
	c := &m.s.m
	c.bytesSent.Add(uint64(sent))
	c.bytesReceived.Add(uint64(received))
	m.t.Calls++
	switch method {
	case MethodHashes:
		m.t.Hashes += n
		c.bytesHashes.Add(uint64(n))
	case MethodLeafKeys:
		m.t.LeafKeys += n
		c.bytesLeafKeys.Add(uint64(n))
	case MethodFetch, MethodPush:
		m.t.Records += n
		c.bytesRecords.Add(uint64(n))
	case MethodHasTomb, MethodMarkReap:
		m.t.Sweep += n
		c.bytesSweep.Add(uint64(n))
	}
}
