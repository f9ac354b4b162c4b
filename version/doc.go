// Package version holds quorumkv's causal versions: dotted version vector
// sets (DVVS), after Almeida, Baquero et al., "Scalable and Accurate
// Causality Tracking for Eventually Consistent Stores" (2014).
//
// A key's state on a replica is a Set: the live siblings, each tagged with
// the Dot (node, counter) of the write that created it, plus a causal
// Context that covers every dot the replica has seen for that key, including
// the dots of siblings that were since superseded.
//
//	Set{ Siblings: [ (a,3) "x", (b,1) "y" ], Context: {a:3, b:2} }
//	                                                         ^ (b,2) was overwritten
//
// Three operations keep the siblings honest:
//
//   - Update: a replica applies a client write that carries the Context of
//     the client's earlier read. It drops exactly the siblings that Context
//     covers, issues a new dot for itself, and keeps every other sibling.
//     A write without a context therefore becomes a sibling and loses
//     nothing.
//   - Sync: two replicas' sets are joined. A sibling survives unless the
//     other side has seen its dot and no longer holds it. Sync is
//     commutative, associative and idempotent, so replication, read repair,
//     hinted handoff and anti-entropy can all use it and retries are
//     harmless.
//   - Context merge: the context returned to a client after a write covers
//     what that client saw plus its own new dot, and nothing else, so a
//     later write with it cannot silently drop a concurrent sibling.
//
// A Context is a version vector (every dot (n, 1..VV[n]) is covered) plus a
// small cloud of dots past the vector, which exists when a client has seen a
// later write of a node but not an earlier concurrent one.
//
// Contexts cross the network twice: to clients as the X-Context string,
// which EncodeContext binds to its key (DecodeContext refuses another
// key's with ErrForeignContext), and between replicas inside sets.
// Either way the receiver checks Plausible first: a counter further past
// its clock than Slack was forged, and accepting it would freeze the key,
// since every later write must issue a counter above it.
//
// Everything here is pure and deterministic: no I/O, no clocks (the caller
// passes the write time), no goroutines.
package version
