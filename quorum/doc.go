// Package quorum coordinates reads and writes over a key's replicas, with
// per-request R, W and N.
//
// The logic is two deterministic state machines, WriteMachine and
// ReadMachine, in the style of etcd's raft: the driver feeds them replies
// and sends the messages they return; they do no I/O and read no clock.
//
//	client ──Put──▶ Coordinator ──Plan──▶ targets (primaries, fallbacks, hints)
//	                    │
//	                    ├─ Start  ─▶ apply  ─▶ issuing primary   (issues the dot)
//	                    ├─ Step(ack) ─▶ merge ─▶ other targets    (version.Sync)
//	                    └─ Done after W counting acks ─▶ 204 + receipt
//	                       (late acks are collected in the background)
//
// A write's dot is issued by a primary replica of the key (the coordinator's
// own replica when it is one; a fallback only when no primary can, and it
// then keeps a hint for the primary too). If the issuer fails, the next
// one is asked only when the first certainly did not apply the write
// (ErrNotApplied: the request never reached it, or it refused before
// applying); otherwise the write fails, since a second issuer would give
// the write two versions. Targets come from Plan: the first n nodes of the preference list
// that the failure detector trusts, a fallback for each suspected primary
// (sloppy quorum: it keeps the write as a durable hint for the primary and
// counts toward W unless the request says sloppy=false), and, when every
// node is already a primary, a hint kept on a live primary that does not
// count as another replica.
//
// A read asks every available primary and, unless the request says
// sloppy=false, the same fallbacks a write would use; a fallback answers
// with its data for the key merged with the hint it keeps for the primary,
// and counts toward R. The read answers after R replies with their causal
// merge, and first repairs the replicas among those R that replied stale
// (the receipt names them; a fallback is repaired into its hint). Replies
// that come later are merged and repaired in the background, for at most
// Config.RepairWait.
//
// Every answer carries a Receipt: which replicas answered, which fallbacks
// stood in for whom, how many distinct versions a read saw, and what read
// repair fixed. A write that fails its quorum (503) may still have been
// applied on the replicas that acked it.
//
// Replica is the other side: it applies a write and issues the dot, merges
// a set, keeps a hint, or returns its set.
package quorum
