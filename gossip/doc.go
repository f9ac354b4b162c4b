// Package gossip is quorumkv's cluster membership layer and its phi accrual
// failure detector.
//
// # Membership
//
// Gossip wraps hashicorp/memberlist. Nodes find each other through Join on
// a seed list; each advertises the node-owned fields of its Meta (ID,
// cluster, addresses, join time, state, progress fingerprints) as
// memberlist node metadata, a format byte and msgpack with short keys,
// bounded to stay under memberlist's 512-byte MetaMaxSize (501 bytes at
// worst).
//
// Ring membership is not liveness. memberlist forgets failed nodes after a
// while; Gossip keeps a table of every member ever seen, and a node that
// crashes or restarts stays a member under the same ID, so a temporary
// outage moves no data. Only Remove takes a member off the ring, by
// gossiping a tombstone that every node keeps. Each member also carries a
// Status (alive, dead, ...) as memberlist last reported it; Status is local
// and never changes membership.
//
// The table and all bucket properties travel in memberlist's push-pull
// state, so a node that joins late learns about members that are down and
// about buckets configured before it joined, and State/Config.Initial let a
// restarted node remember them. Table entries merge by a version (unix
// nanoseconds of the change, from the changing node's clock; restored
// entries count as oldest) with tombstones winning; buckets merge
// last-writer-wins on (Updated, UpdatedBy). Both merges keep the maximum of
// a total order, so they are commutative, associative and idempotent: every
// node converges on the same view whatever the delivery order. A node's
// own entry changes only on that node (or by a tombstone): if a copy with a
// higher version comes back, left from an earlier run whose clock ran
// ahead, the node outbids it with its current entry. SetBucket
// also broadcasts through a memberlist.TransmitLimitedQueue for fast
// propagation, and nodes relay updates that were news to them.
//
// # Membership changes
//
// Each member entry also holds an operator-owned group: an intent (join,
// leave, remove), whether it is staged (waits for an operator's commit),
// and the seed the ring hashes for the member (a replacement takes the
// seed, and through SetIntent the join time, of the node it replaces).
// SetIntent sets it on any node for any member, with its own version
// (IntentVer, a clock reading above the one it replaces); the group merges
// apart from the node-owned fields, the higher IntentVer winning, on the
// member itself too, and UpdateMeta leaves it alone, so a node takes an
// intent an operator set for it and cannot undo it. A node's initial
// intent (Config.Meta) has IntentVer 0, below anything set. With the group
// an entry can reach about 590 bytes, more than node metadata may hold:
// node metadata carries no group, and member broadcasts (under 1200 bytes)
// and the push-pull state carry whole entries. A tombstone still beats
// every live entry, group included.
//
// The Layout is the committed ring membership, one register for the
// cluster: an epoch and the members with their join times and seeds.
// Every node keeps the layout of highest precedence it has seen (higher
// epoch, then more members, then a hash; Layout.Supersedes). A layout may
// be several kilobytes, too big for a UDP broadcast, so ProposeLayout
// sends an adopted one to every alive member over memberlist's reliable
// stream, from one goroutine of the Gossip, one pass at a time; receivers
// do not forward it, and the push-pull state carries it to members the
// pass missed and to later joiners. State persists it.
//
// A cluster name keeps clusters sharing a network apart twice over: it
// becomes memberlist's packet label ("quorumkv/<name>"), so packets of
// another cluster are dropped, and the merge and alive delegates refuse
// nodes whose metadata names another cluster.
//
// MemNetwork is an in-memory network for memberlist (Config.Transport) with
// Partition, Block, Down and per-packet drop, delay and duplication; its
// transports block only on channels and package time and shut down
// without leftover goroutines, so a cluster runs under testing/synctest.
//
// memberlist v0.7.0 does not tell delegates about suspicion, nor tell a
// graceful leave from a failure, so Status is alive, dead or unknown in
// practice; StatusSuspect and StatusLeft are reserved.
//
// # Encryption
//
// With Config.Keys, memberlist encrypts and authenticates every packet and
// stream with AES-GCM under the primary key (the cluster label is part of
// the authenticated data) and accepts what any installed key decrypts;
// unencrypted or undecryptable messages are dropped, so a node without one
// of the cluster's keys never joins (TestWrongOrMissingKeyNotAdmitted).
// InstallKey, UseKey and RemoveKey rotate the key of a running cluster:
// each step on every member before the next, and no member is suspected
// meanwhile (TestKeyRotationKeepsMembersAlive). Encryption cannot be
// turned on or off while running.
//
// # Failure detection
//
// Detector is a phi accrual failure detector (Hayashibara et al., 2004).
// For each peer it keeps a sliding window of heartbeat inter-arrival times
// and reports phi = -log10 P(a heartbeat would arrive later than the time
// already elapsed since the last one); a peer is suspected when phi reaches
// Threshold (8 by default).
//
// The inter-arrival time is modelled as normal with the window's mean plus
// AcceptablePause, and the window's standard deviation floored at
// MinStdDev. We chose the normal model over the exponential one Cassandra
// uses because the exponential model has a single parameter: its phi grows
// linearly in elapsed/mean whatever the jitter (phi 8 is reached only after
// 8·ln 10 ≈ 18.4 mean intervals), so it detects slowly and cannot tell a
// steady peer from an erratic one. The normal model uses the observed
// spread: steady peers are judged tightly, jittery peers leniently. Its
// weakness, extreme confidence when heartbeats are very regular, is what
// MinStdDev and AcceptablePause guard against.
//
// Detection bound. For a peer that heartbeats steadily every interval T and
// then crashes, suspicion begins T + X after its last heartbeat, where
//
//	X = AcceptablePause + z·MinStdDev,  z = 5.612 for Threshold 8
//
// (z is the standard normal quantile with upper tail 10^-Threshold;
// DetectorConfig.DetectionTime computes T + X). With the defaults (500 ms
// pause, 100 ms minimum stddev) and 1 s heartbeats, X ≈ 1.061 s: a crashed
// peer is suspected within 2.061 s of its last heartbeat. A peer whose 1 s
// heartbeats jitter uniformly by ±50% (stddev ≈ 0.29 s) is suspected only
// after about 3.1 s of silence, twice its longest interval.
//
// Suspicion has hysteresis. A heartbeat that arrives after phi crossed the
// threshold ends the silence but does not restore trust; the silence itself
// is left out of the window (it measures an outage, not the rhythm). The
// peer is trusted again at its RecoveryHeartbeats-th consecutive timely
// heartbeat, counting the late one (3 by default, so about two intervals
// after it comes back), and a late heartbeat during recovery restarts the
// count. Only when RecoveryHeartbeats heartbeats in a row are late does
// their interval enter the window: that is the peer's rhythm now (its
// heartbeat interval grew), and without learning it the peer would stay
// suspected for good. A peer never heard from is available: the detector judges only
// peers it has history for.
//
// The detector is pure: it reads time from a clock.Clock, does no I/O and
// starts no goroutines; suspicion is evaluated on every Heartbeat,
// Available, Check and Snapshot.
package gossip
