package gossip

// Metrics is a snapshot of a Gossip's counters.
type Metrics struct {
	// Members is the number of ring members known, self included,
	// tombstones excluded.
	Members int
	// Alive is how many of them memberlist reports alive.
	Alive int
	// Removed is the number of tombstones held.
	Removed int
	// Buckets is the number of buckets with properties.
	Buckets int

	// Joins, Leaves and Updates count memberlist join, leave (failure) and
	// meta-update events.
	Joins, Leaves, Updates uint64
	// BroadcastsQueued counts bucket and member broadcasts queued, own and
	// relayed.
	BroadcastsQueued uint64
	// MessagesReceived counts gossip messages received.
	MessagesReceived uint64
	// PushPullMerges counts remote states merged.
	PushPullMerges uint64
	// MemberUpdates and BucketUpdates count remote entries that changed the
	// local table.
	MemberUpdates, BucketUpdates uint64
	// Rejected counts nodes, joins and states refused as another cluster's
	// or as removed.
	Rejected uint64
	// DecodeErrors counts messages, states and metadata that did not decode.
	DecodeErrors uint64
	// Notifications counts OnChange calls.
	Notifications uint64
	// LayoutsAdopted counts layouts adopted, proposed here or received.
	LayoutsAdopted uint64
	// LayoutsRejected counts layouts, proposed here or received, that were
	// invalid or lost to the layout held (a copy equal to it counts as
	// neither adopted nor rejected).
	LayoutsRejected uint64
	// LayoutSends and LayoutSendErrors count reliable sends of the layout
	// to members, and those that failed.
	LayoutSends, LayoutSendErrors uint64
}

// DetectorMetrics is a snapshot of a Detector's counters.
type DetectorMetrics struct {
	// Peers is the number of peers with history; Suspected how many of
	// them are currently suspected.
	Peers, Suspected int
	// Heartbeats counts heartbeats recorded.
	Heartbeats uint64
	// Suspicions and Recoveries count flips to suspected and back.
	Suspicions, Recoveries uint64
}
