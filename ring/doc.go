// Package ring maps keys to the nodes that store them: a consistent-hash ring
// with virtual nodes in the style of Dynamo's "strategy 3" (as in Riak). It is
// pure and deterministic: no I/O, no goroutines, no clock. Every node that
// knows the same membership computes the same ring.
//
// # Partitions
//
// The 64-bit hash space is cut into Q equal partitions (Q a power of two,
// default 256); the partition of a key is the top log2(Q) bits of
// Config.Hash(key). Partitions are the virtual nodes: each is claimed by one
// physical node, its owner. Q never changes for the life of a cluster.
//
//	 hash(key) >> (64-log2 Q)
//	          |
//	          v
//	+-----+-----+-----+-----+-----+-----+-----+-----+
//	|  0  |  1  |  2  |  3  |  4  |  5  |  6  |  7  |   Q = 8
//	+-----+-----+-----+-----+-----+-----+-----+-----+
//	   c     a     d     c     a     b     d     b      owners (4 nodes)
//
//	preference list of partition 2:  d | b  a | c
//	                     owner ------^   ^^^^   ^---- fallback
//	                     n=3 primaries: d, b, a
//
// # Claims
//
// Ownership depends only on the membership. Each Member carries Joined, the
// node's first-start time persisted in its data directory; members are sorted
// by (Joined, ID) and the claims are folded in that order. The first member
// owns all Q partitions. Each next member, making k owners, takes floor(Q/k)
// partitions one at a time from the currently most loaded owner (ties: the
// smallest ID); from that owner it takes the partition with the smallest
// hash(partition, new ID), so the stolen partitions are scattered over the
// ring rather than contiguous. Loads therefore always differ by at most one
// partition.
//
// Because the ring of the first S members is a step of the fold, a node that
// joins with the latest Joined moves exactly floor(Q/(S+1)) partitions, all
// to itself, which is the ideal amount; removing the latest-joined member
// moves exactly its partitions back. A node wiped and restarted gets a new
// Joined and so rejoins last. A member added or removed in the middle of the
// (Joined, ID) order still gives a deterministic ring balanced to within one
// partition, but the claims after it are refolded and more partitions move
// (adding a 9th node that sorts first to 8 nodes moves 78 of 256 partitions
// instead of 28).
//
// # Preference lists
//
// The preference list of partition p is its owner, then every other member in
// a per-partition order given by rendezvous hashing: descending
// hash(p, member ID). PreferenceList(key, n) returns the n primaries (the
// first n entries), then the rest as the fallback order for sloppy quorums
// and hinted handoff, optionally capped by Config.MaxFallbacks.
//
// Rendezvous ranking was chosen over a clockwise walk (taking the next
// distinct owners of p+1, p+2, ...) because
//   - it does not depend on the layout of neighbouring partitions, which the
//     scattered claims make irregular: a walk can meet the same owner many
//     times, and any claim change reshuffles the replica sets of the
//     partitions before it;
//   - it is stable: a membership change inserts or removes one node in each
//     order without reordering the others, so replica sets change only where
//     the owner changes or where the node ranks among the first n;
//   - the partitions of a down node fall back to all survivors evenly, not to
//     its ring neighbours.
//
// The price is that replica load (partitions held among the first n) is only
// balanced statistically: with N=3 and 3 to 16 nodes at Q=256 the most loaded
// node holds at most ~1.16x the mean, against at most 1.06x for primaries.
//
// The claim and ranking hashes are fixed (xxhash of the node ID, mixed with
// the partition number); they are not Config.Hash, so that the layout is the
// same whatever key hash is configured. Changing them changes the layout of
// existing clusters.
//
// # Cost
//
// New does all the work: claims cost O(S·Q·log Q) and the preference table
// (Q rows of up to S 16-bit member indices, bounded to 4M entries) costs
// O(Q·S·log S), about 0.3 ms for 16 nodes and 2.4 ms for 128 nodes at Q=256.
// A lookup is then a hash, a shift and a copy of a table row;
// AppendPreferenceList does not allocate. Rings with both many partitions and
// many members compute lists longer than their table row on demand.
//
// # Updating
//
// A Ring is immutable. On a membership change the owner of the membership
// builds a new Ring with New and publishes it with Holder.Store (an
// atomic.Pointer); readers Load once per request. Ring membership is not
// liveness: down nodes stay members, and requests skip them using the
// fallback order.
package ring
