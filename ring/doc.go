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
// node's first-start time persisted in its data directory, and a seed, the
// name the ring hashes for it (Member.Seed, or the ID when that is empty; see
// Seeds below). Members are sorted by (Joined, seed) and the claims are folded
// in that order. The first member owns all Q partitions. Each next member,
// making k owners, takes floor(Q/k) partitions one at a time from the
// currently most loaded owner (ties: the smallest seed); from that owner it
// takes the partition with the smallest hash(partition, new seed), so the
// stolen partitions are scattered over the ring rather than contiguous. Loads therefore always differ by at most one
// partition.
//
// Because the ring of the first S members is a step of the fold, a node that
// joins with the latest Joined moves exactly floor(Q/(S+1)) partitions, all
// to itself, which is the ideal amount; removing the latest-joined member
// moves exactly its partitions back. A node wiped and restarted gets a new
// Joined and so rejoins last. A member added or removed in the middle of the
// (Joined, seed) order still gives a deterministic ring balanced to within one
// partition, but the claims after it are refolded and more partitions move
// (adding a 9th node that sorts first to 8 nodes moves 78 of 256 partitions
// instead of 28).
//
// # Preference lists
//
// The preference list of partition p is its owner, then every other member in
// a per-partition order given by rendezvous hashing: descending
// hash(p, member seed), ties by seed. PreferenceList(key, n) returns the n primaries (the
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
// The claim and ranking hashes are fixed (xxhash of the node seed, mixed with
// the partition number); they are not Config.Hash, so that the layout is the
// same whatever key hash is configured. Changing them changes the layout of
// existing clusters.
//
// # Seeds and replacement
//
// The layout never looks at IDs, only at each member's Joined and seed; the
// IDs only name the result. Seeds are unique (New returns ErrDuplicateSeed
// otherwise). A node that replaces a dead member joins as
//
//	Member{ID: "node-e", Seed: <the dead member's Ring.Seed>, Joined: <its Joined>}
//
// and the dead member is removed in the same change: every preference list is
// then the old one with the dead member renamed, for every n, so the
// replacement takes over exactly its replica slots and nothing else moves.
// Members without a Seed hash their ID, as before seeds existed: the layout
// and Version of such rings are unchanged. A Seed equal to the ID gives the
// same layout as none, though Version and Equal, which compare the inputs,
// tell the two apart.
//
// # Membership changes
//
// Moves, Gains and Lost compare the committed ring with a target ring for
// replication factor n. A node's rank in partition p is its position in p's
// preference order (0 is the owner, a non-member ranks at infinity). A key of
// a bucket with replication factor d <= n is stored by the first d entries,
// so a node newly stores some keys of p exactly when its rank falls below n
// and below its committed rank: that is a Move, listing the committed holders
// to copy from, the replicas being replaced first. It stops storing some when
// its committed rank was below n and its rank grows: Lost lists those
// partitions.
//
// A member that joins last gains exactly its replica slots and nobody else
// gains anything. With n=3 at Q=256 the moves of a join of a node to
// k = 3..16 nodes, over the ideal Q·n/(k+1), range from 0.82 to 1.09 (1.05
// for the 4th node; the rendezvous ranks balance replicas only
// statistically). When the last member leaves, each of its replica slots is
// refilled by exactly one node that held none of the partition's keys, and
// the nodes behind it in the first n are promoted a rank: with n=3 the last
// of 4..16 nodes leaving costs 1.38 to 1.67 moves per slot it held. A
// replacement with the dead member's seed and Joined moves exactly the dead
// member's slots, each with the dead member as its first source.
//
// The three read the first min(n, Len()) entries of a partition from each ring,
// from the table when it is long enough, so they cost O(Q·n) plus the
// output, which is O(n) names per move: about 0.1 ms for a join to 256
// members at Q=4096 and n=3.
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
