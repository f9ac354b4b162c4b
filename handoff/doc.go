// Package handoff moves data to the node that should hold it.
//
// Replication sends each write to the key's replicas, and anti-entropy
// (package antientropy) repairs whatever that missed between replicas. This
// package holds the two ways a version reaches a node that is, or is about
// to become, a replica but did not get it by replication:
//
//   - hinted handoff (Hints) carries the writes a replica missed while it
//     was down, one key at a time, pushed by the node that kept them;
//   - partition transfers (Transfers) give a node the whole of each
//     partition it gains in a membership change, pulled in key-hash order
//     from the nodes that hold it.
//
// Every copy goes through the receiver's Merge (version.Sync), so
// repeating or reordering a delivery is harmless; that is what lets both
// resume after a crash by simply doing some of the work again.
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
// Bound: a restarted owner has its hints back within the detector's
// recovery time (three heartbeats), plus Interval when no Kick comes, plus
// pending hints divided by the replay rate (5,000 hints/s and 8 MiB/s by
// default).
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
// # Partition transfers
//
// When the membership changes, a node that gains replicas of partitions
// must pull their data before it serves reads for them. The node computes
// its gains (each partition with the nodes that hold it now, best first)
// and hands them to Transfers.Set with the plan, a fingerprint of the
// change, and keep, which filters the keys it really replicates (a
// bucket's n may be smaller than the partition's). Workers (Parallel)
// stream the queued partitions:
//
//	Set(plan, gains, keep) ─▶ queue ─▶ worker ─▶ Source.Scan(node, after cursor)
//	                                     ▲            │ fail: next source;
//	                                     │            │ all fail: backoff
//	                                     │            ▼
//	                                     │   DecodeSet, keep? ─▶ Merge
//	                                     │            ▼
//	                                     │   PutMeta(handoff.transfer.<p>: cursor)
//	                                     │            ▼
//	                                     └── rate limit (bytes) ◀─ not Done
//	                                                  │ Done
//	                                                  ▼
//	                               Finish(p, sources) ─▶ done (persisted)
//
// A source answers with ServeScan: the partition's rows after the cursor
// in the store's order (key hash, then encoded key), up to a byte and a
// key budget, and whether none is left. Because rows have one total order
// the cursor means the same on every source, so a stream falls over to
// the next source where it stopped. The cursor is persisted after every
// batch, once its merges returned: a crash resumes from the last batch,
// not from scratch. Writes that land on a source behind the cursor after
// it passed reach the new replica by replication (it is in the target
// layout) or, at the latest, by Finish, which the node points at a final
// Merkle exchange with every source; only then is the partition done, and
// Done(plan) tells when every gain of plan is.
//
// A new plan keeps the progress of every partition it still gains (a
// second change during a transfer does not restart it), drops the others
// with their persisted progress, and queues the new ones. Persisted
// progress remembers its plan: after a restart a partition finished under
// another plan streams nothing but runs Finish again, since it may have
// been lost and regained while the node was down.
//
// Costs: one Scan per BatchBytes (256 KiB) or MaxKeys (1024) records, one
// progress write per batch, and received bytes paced at BytesPerSecond
// (16 MiB/s by default, shared by the Parallel streams): a 1 GiB partition
// takes about a minute at the default rate.
package handoff
