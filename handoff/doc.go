// Package handoff moves data to the node that should hold it.
//
// Replication sends each write to the key's replicas, and anti-entropy
// (package antientropy) repairs whatever that missed between replicas. This
// package holds the two ways a version reaches a node that is, or is about
// to become, a replica but did not get it by replication: hinted handoff
// (Hints) carries writes to a replica that was down when they were made.
// Every copy goes through the receiver's Merge (version.Sync), so
// repeating or reordering a delivery is harmless.
//
// # Hinted handoff
//
// When a primary is suspected, the coordinator sends its copy to a fallback
// (or, when every node is a primary, to a live primary) with the owner's
// name, and that node calls Hints.Store: the set becomes a durable hint
// row in the store, merged with any earlier hint for the same key. Each
// owner has a byte budget (HintConfig.MaxHintBytesPerOwner); a hint that
// would exceed it is not kept, the write still succeeds, the overflow is
// counted, and the key's partition is queued for priority anti-entropy
// (HintConfig.Prioritize, which the node points at the anti-entropy
// service), which repairs the owner instead. A fallback that does not
// replicate the partition asks its replicas to queue it.
//
//	write ─▶ Hints.Store ─▶ store 'h' rows ─▶ replay loop (Interval, Kick)
//	                                  │              │ Available(owner)?
//	         budget full ─▶ Prioritize(partition)    ▼
//	                                         Deliver (merge on the owner)
//	                                                 ▼
//	                                  DeleteHint if unchanged since read
//
// A replay loop runs every Interval, and at once on Kick (the node kicks it
// when the failure detector trusts a node again). For each owner that is
// available and has hints it runs one pass at a time: read a batch, deliver
// each hint with bounded concurrency under a shared token bucket
// (HintsPerSecond, BytesPerSecond), and delete a hint only after the owner
// acked it and only if it was not updated meanwhile. Delivery is a Sync on
// the owner, so a replay repeated after a crash is harmless. Hints survive
// restarts because they are store rows.
//
// Owners that leave. A hint waits for its owner only while the owner is
// a member of the ring (HintConfig.Member, committed or target layout).
// The hints of an owner that left go, in the next round, to every replica
// of their key in the target layout (HintConfig.Replicas): delivered to
// those that are up, kept here as hints for those that are down (outside
// the budget: the write was accepted already), and then deleted if they
// did not change meanwhile (metrics: Retargeted). A node that is leaving
// calls Evacuate(true): hints of owners that are up are delivered as
// usual, and those of owners that are down are sent to another live node
// (HintConfig.Rehome), which keeps them for the owner, and deleted here
// (metrics: Rehomed). Outstanding tells the node when none is left.
//
// Bound: a restarted owner has its hints back within the detector's
// recovery time (three heartbeats), plus Interval when no Kick comes, plus
// pending hints divided by the replay rate (5,000 hints/s and 8 MiB/s by
// default).
package handoff
