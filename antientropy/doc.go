// Package antientropy makes the replicas of a partition converge: Merkle
// tree anti-entropy (Service) repairs whatever replication, read repair and
// hinted handoff (package handoff) missed. It moves versions with the
// store's Merge (version.Sync), the same causal merge replication uses, so
// repeating or reordering an exchange is harmless.
//
// # Merkle anti-entropy
//
// Trees. Every node keeps one hash tree per partition (Forest). The store
// orders records by key hash, and a tree mirrors that order: partition p is
// the key hashes whose top PartitionBits are p (the ring's rule), leaf i of
// p is the next LeafBits bits. A leaf's hash is the XOR of its records'
// RecordHash = xxhash64(uvarint(len k) ‖ k ‖ canonical set bytes), so the
// store's OnWrite hook updates it in O(1) without reading other keys:
//
//	leaf ^= RecordHash(k, old) ^ RecordHash(k, new)
//
// Inner nodes hash their children (xxhash64 of the concatenated child
// hashes), recomputed lazily from dirty flags when a hash is asked for.
// At the defaults (1024 leaves, Fanout 16):
//
//	                    root                    level 3
//	        /        /        \        \
//	      n0        n1        n2        n3      level 2
//	    / .. \                      / .. \
//	  m0 .. m15        ...        m48 .. m63    level 1
//	 / .. \                            / .. \
//	l0 .. l15          ...         l1008 .. l1023   level 0: XOR of records
//	|
//	records whose key hash is p ‖ 0000000000 ‖ …: one contiguous store scan
//
// Trees are not persisted. Start rebuilds them with one Scan per partition
// (a single pass over the data: 1.6 s for a million records in pebble on a
// shared 2-core VM, almost all of it the store's scan; BenchmarkRebuild),
// while writes may continue: events for the leaves being rescanned are
// logged and reconciled with what the scan saw. A leaf that an exchange
// lists and finds not hashing to its stored value (a write event that raced
// a rebuild) is counted as an inconsistency and rebuilt from the store.
//
// Exchange. An exchange compares one partition's tree with one peer's. It
// is a deterministic state machine free of I/O (Exchange: Next returns a
// Step, On* deliver the replies) driven by the Service over a Peer
// (RPCPeer: methods ae.hashes, ae.leafkeys, ae.fetch, ae.push with msgpack
// bodies; HandleRPC serves them):
//
//  1. compare the roots; descend level by level into the children of
//     differing nodes only (one ae.hashes call per level, batched);
//  2. for the differing leaves, list both sides' records as (key hash,
//     record hash) pairs (ae.leafkeys) — no keys or values yet;
//  3. pull the peer's records of the keys that differ (ae.fetch) and merge
//     them here, push ours (ae.push) for the peer to merge. Only records
//     that actually differ travel, so the cost follows the difference, not
//     the data: for 1,000 differing keys out of 1,000,000 a pass over all
//     256 partitions moved 552 KB — 155 KB of records (the differing
//     records are 130 KB), 307 KB of hashes, 91 KB of leaf listings
//     (BenchmarkExchange).
//
// Records go only to nodes that should hold them (Config.Replicates; the
// fetch responder applies it for the caller, the pusher for the peer).
// Buckets with different n can thus leave a leaf that never converges
// between two replicas (one holds a key the other must not). This does not
// loop: an exchange is a single bounded pass (one descent, one listing, one
// transfer), and a leaf where the exchange moved nothing is remembered by
// its (local, remote) hash pair, so later exchanges skip it until either
// side changes, or until the background round starts over (which nodes
// replicate a key may change meanwhile) — leaving only the descent to it
// (a few hundred bytes) per exchange. MaxSettled bounds the memory.
//
// Pacing. The background loop exchanges one partition per Config.Interval
// (prioritized partitions take every other tick, in turn, so one that
// cannot clear does not starve the rest: Prioritize, persisted through
// Meta, is what hinted handoff calls when a hint could not be kept), and
// every call is charged to a byte token bucket (Config.BytesPerSecond).
// RunOnce/Run run a full pass on demand (POST /v1/antientropy/run, the
// CLI), which also re-examines settled leaves.
//
// Deletes. A tombstone is reaped only when nothing anywhere could bring
// back what it deleted, and TombstoneGrace has passed since its latest
// write. A periodic sweep establishes the first: it asks every member of
// the ring (ae.hastomb), not only the key's replicas. A replica must hold
// the tombstone or remember reaping it (a replica that lacks the key does
// not agree: it may never have received the delete); and no node may keep
// a hint or a stray record of the key with a live version the tombstones
// do not supersede. When all agree, the sweeper marks its record and tells
// the other replicas to mark theirs (ae.markreap), at the same instant, so
// they reap together; no coordinator marks tombstones. The reaper loop
// calls the store's Reap, which keeps the memory of each reaped key for a
// while (store.Config.ReapMemory): a late copy of the deleted value merges
// as a no-op. Anti-entropy copies a tombstone to a replica that lacks the
// key (absence is not agreement), and the memory makes that copy a no-op
// where the key was reaped. See reaper.go.
//
// Strays. Records of keys this node does not replicate (the ring moved,
// or a bucket's n is smaller than the partition's) are handed to the key's
// replicas as hints and dropped, one partition per StrayInterval
// (strays.go); until then a sweep counts them like hints.
package antientropy
