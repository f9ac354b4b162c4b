// Package simcluster runs a whole quorumkv cluster inside one test process
// on simulated time: real nodes (node.Node, with Pebble, memberlist, the
// coordinator, anti-entropy and hinted handoff), over the in-memory RPC
// network (transport.Network), an in-memory memberlist network
// (gossip.MemNetwork) and crashable in-memory filesystems, with each node
// on its own steppable clock.
//
// A Cluster must be started inside a testing/synctest bubble
// (synctest.Test). There, the time package's clock is fake: it moves only
// when every goroutine of the bubble is blocked, straight to the next
// timer. Nothing here reads the wall clock, sleeps on it or polls it:
// Advance moves simulated time, and every wait is a bounded walk through
// simulated time. Pebble runs inside the bubble unchanged: its background
// goroutines block on channels and condition variables, which the bubble
// sees as idle, and its files live in vfs.MemFS.
//
//	synctest.Test(t, func(t *testing.T) {
//		c := simcluster.Start(t, simcluster.Options{Nodes: 3})
//		c.Crash(2)                 // kill -9: unsynced writes are lost
//		c.Advance(3 * time.Second) // the others suspect it
//		r := c.Do(0, "PUT", "/v1/kv/b/k?w=2", []byte("v"), nil)
//		...
//	})
//
// Faults: Crash (kill -9, on vfs.MemFS.CrashClone), Wipe (a lost disk),
// Stop and Restart, Pause (SIGSTOP: the process's messages wait), Partition
// and Block (one-way) on both networks, StepClock (a node's clock steps
// forward or back), and, through Options.Fate, per-message drops,
// delays, duplicates and lost replies.
package simcluster
