// Package sim is a seeded simulation of a whole quorumkv cluster under
// faults: the Jepsen-style check of what issue 12 promises, that deletes
// stay deleted and acknowledged writes stay written.
//
// A run (Run) starts a cluster of real nodes on simulated time
// (internal/simcluster, inside a synctest bubble), lets several clients
// work through different coordinators while a nemesis injects faults,
// then heals everything, waits for the replicas to converge, and checks
// the history:
//
//	clients ──set-add / delete / read──▶ n1 … n5 ◀── nemesis
//	  (random R, W, n, sloppy)              partitions (one-way too),
//	                                        message drops, delays, duplicates,
//	                                        lost replies, kill -9 and restart,
//	                                        disk wipe, pauses past the failure
//	                                        detector, clock steps, a short
//	                                        tombstone grace
//
// The workload is a set per key. An add reads the key, takes the union of
// its siblings' elements, adds one unique element and writes the union
// back with the read's context. A delete reads and deletes with the read's
// context. Reads check what they see. The checkers (check.go):
//
//   - lost = 0: every element of an acknowledged add is in the final r=all
//     read, unless a delete saw it (and so may have removed it);
//   - phantoms = 0: no read ever shows an element no client tried to add;
//   - resurrected = 0: no replica ends with a live version whose dot the
//     context of an acknowledged delete covers (a deleted version came
//     back, or a dot was issued twice);
//   - converged: every replica of every key holds the same set within
//     Config.ConvergeWithin of simulated time after the heal.
//
// Everything the simulation chooses comes from the seed: the cluster
// size, each client's operations and parameters, the faults and when they
// happen, and each message's fate (a hash of the seed and the message, so
// the same message meets the same fate whatever the goroutines'
// interleaving). Go's scheduler still picks the order of goroutines that
// are runnable at the same simulated instant, so two runs of a seed agree
// on everything the simulation decides, and almost always on the outcome;
// a failure prints the seed's history, and -count runs it again.
package sim
