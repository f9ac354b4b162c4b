package main

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/node"
)

// view returns p's GET /v1/cluster.
func view(p *proc) (node.ClusterStatus, bool) {
	code, body, _, err := httpDo("GET", "http://"+p.http+"/v1/cluster", "")
	var v node.ClusterStatus
	if err != nil || code != 200 || json.Unmarshal([]byte(body), &v) != nil {
		return v, false
	}
	return v, true
}

// describe renders a change in progress for a test's messages.
func describe(c *node.PlanChange) string {
	if c == nil {
		return "none"
	}
	return fmt.Sprintf("target %v joining %v leaving %v removing %v waiting to see %v to sync %v %s",
		c.Target, c.Joining, c.Leaving, c.Removing, c.WaitingSeen, c.WaitingSync, c.Error)
}

func reachable(t *testing.T, from *proc, id string) (bool, bool) {
	v, ok := view(from)
	if !ok {
		return false, false
	}
	for _, m := range v.Members {
		if m.ID == id {
			return m.Reachable, true
		}
	}
	return false, false
}

// readAlone stops every other node and reads each key from p with r=one,
// so only p's own replica can answer.
func readAlone(t *testing.T, ps []*proc, p *proc, want map[string]string) {
	t.Helper()
	for _, q := range ps {
		if q != p {
			q.stop(t)
		}
	}
	waitFor(t, 20*time.Second, p.id+" to suspect the others", func() bool {
		for _, q := range ps {
			if q == p {
				continue
			}
			if up, ok := reachable(t, p, q.id); !ok || up {
				return false
			}
		}
		return true
	})
	missing := 0
	for k, v := range want {
		code, body, _, err := httpDo("GET", "http://"+p.http+"/v1/kv/load/"+k+"?r=one", "")
		if err != nil || code != 200 || body != v {
			missing++
			if missing < 5 {
				t.Errorf("%s alone, key %s: %d %q %v (want %q)", p.id, k, code, body, err, v)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged writes missing on %s", missing, len(want), p.id)
	}
	t.Logf("%s alone served all %d acknowledged keys", p.id, len(want))
}

// kill -9 of a node during a write load loses nothing it acknowledged:
// every key whose write it acked (w=all receipts) reads back from it alone
// after a restart.
func TestProcessKill9LosesNothingAcked(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bin := buildBinary(t)
	ps := startProcs(t, bin, 3)
	victim := ps[2]

	var mu sync.Mutex
	acked := map[string]string{}
	var seq atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("k%06d", seq.Add(1))
				v := "value-" + k
				code, _, hdr, err := httpDo("PUT", "http://"+ps[w%2].http+"/v1/kv/load/"+k+"?w=all", v)
				if err == nil && code == 204 && containsID(hdr.Get("X-Quorum-Replicas"), victim.id) {
					mu.Lock()
					acked[k] = v
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(800 * time.Millisecond)
	victim.kill9(t)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(acked) < 20 {
		t.Fatalf("only %d writes acked before the kill; the load did not run", len(acked))
	}
	t.Logf("%d writes acked by %s before kill -9 (of %d attempted)", len(acked), victim.id, seq.Load())
	victim.start(t, bin, ps[0].gossip)
	waitFor(t, 20*time.Second, "the restarted node to be trusted", func() bool {
		up, ok := reachable(t, ps[0], victim.id)
		return ok && up
	})
	readAlone(t, ps, victim, acked)
	victim.stop(t)
}

func containsID(list, id string) bool {
	for _, x := range splitList(list) {
		if x == id {
			return true
		}
	}
	return false
}

// A paused node (SIGSTOP) is suspected and served around; after SIGCONT it
// is trusted again, gets its hints, and nothing acked during the pause is
// lost.
func TestProcessPauseIsServedAround(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bin := buildBinary(t)
	ps := startProcs(t, bin, 3)
	paused := ps[2]
	paused.cmd.Process.Signal(syscall.SIGSTOP)
	t0 := time.Now()
	waitFor(t, 20*time.Second, "n3 to be suspected by both live nodes", func() bool {
		for _, p := range ps[:2] {
			if up, ok := reachable(t, p, paused.id); !ok || up {
				return false
			}
		}
		return true
	})
	t.Logf("paused node suspected after %v", time.Since(t0).Round(10*time.Millisecond))
	want := map[string]string{}
	for i := 0; i < 50; i++ {
		k := fmt.Sprintf("p%03d", i)
		code, body, hdr, err := httpDo("PUT", "http://"+ps[i%2].http+"/v1/kv/load/"+k+"?w=2", "v"+k)
		if err != nil || code != 204 {
			t.Fatalf("write during the pause: %d %s %v", code, body, err)
		}
		if !containsID(hdr.Get("X-Quorum-Hinted"), paused.id) {
			t.Fatalf("write during the pause not hinted for %s: %v", paused.id, hdr)
		}
		want[k] = "v" + k
	}
	paused.cmd.Process.Signal(syscall.SIGCONT)
	t1 := time.Now()
	waitFor(t, 20*time.Second, "n3 to be trusted again", func() bool {
		up, ok := reachable(t, ps[0], paused.id)
		return ok && up
	})
	waitFor(t, 20*time.Second, "hints to be handed back", func() bool {
		for _, p := range ps {
			if v, ok := view(p); !ok || v.HintMetrics.PendingHints != 0 {
				return false
			}
		}
		return true
	})
	t.Logf("trusted again and hints handed back %v after SIGCONT", time.Since(t1).Round(10*time.Millisecond))
	readAlone(t, ps, paused, want)
	paused.stop(t)
}
