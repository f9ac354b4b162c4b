package transport

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
)

// countingNet is a network on the time package's clock (fake inside a
// synctest bubble) whose transports count the requests they handle.
func countingNet(t *testing.T, addrs ...string) (*Network, map[string]*Mem, map[string]*atomic.Int64) {
	n := NewNetwork(clock.Real())
	n.SetDefaultTimeout(time.Second)
	nodes, served := map[string]*Mem{}, map[string]*atomic.Int64{}
	for _, a := range addrs {
		m := n.NewTransport(a, "id-"+a)
		c := &atomic.Int64{}
		if err := m.Serve(func(ctx context.Context, r *Request) ([]byte, error) {
			c.Add(1)
			return echo(ctx, r)
		}); err != nil {
			t.Fatal(err)
		}
		nodes[a], served[a] = m, c
		t.Cleanup(func() { _ = m.Close() })
	}
	return n, nodes, served
}

// SetFate's decisions: drop, drop the reply, delay and duplicate.
func TestMemFate(t *testing.T) {
	tests := []struct {
		name     string
		fate     Fate
		wantErr  error
		served   int64
		took     time.Duration
		fromSelf bool
	}{
		{name: "deliver", served: 1},
		{name: "drop", fate: Fate{Drop: true}, wantErr: ErrTimeout, took: time.Second},
		{name: "drop reply", fate: Fate{DropReply: true}, wantErr: ErrTimeout, served: 1, took: time.Second},
		{name: "delay", fate: Fate{Delay: 300 * time.Millisecond}, served: 1, took: 300 * time.Millisecond},
		{name: "duplicate", fate: Fate{Dup: 2}, served: 3},
		{name: "never for a call to oneself", fate: Fate{Drop: true}, served: 1, fromSelf: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n, nodes, served := countingNet(t, "a", "b")
				n.SetFate(func(from, to, method string, body []byte) Fate {
					if from == to && !tt.fromSelf {
						t.Errorf("fate asked about a call to oneself")
					}
					return tt.fate
				})
				to := "b"
				if tt.fromSelf {
					to = "a"
				}
				start := time.Now()
				_, err := nodes["a"].Call(context.Background(), to, "m", []byte("x"))
				took := time.Since(start)
				synctest.Wait()
				if !errors.Is(err, tt.wantErr) && !(err == nil && tt.wantErr == nil) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				if got := served[to].Load(); got != tt.served {
					t.Fatalf("handler ran %d times, want %d", got, tt.served)
				}
				if took != tt.took {
					t.Fatalf("call took %v, want %v", took, tt.took)
				}
			})
		})
	}
}

// Hold pauses a process: requests to it wait and run when it resumes, a
// caller whose deadline passes meanwhile times out (the late request still
// runs), and a paused process's own calls wait too.
func TestMemHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, nodes, served := countingNet(t, "a", "b")
		n.Hold("b", true)
		start := time.Now()
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := nodes["a"].Call(ctx, "b", "m", nil)
			done <- err
		}()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if served["b"].Load() != 0 {
			t.Fatal("a paused process ran a handler")
		}
		n.Hold("b", false)
		if err := <-done; err != nil {
			t.Fatalf("call after the pause ended: %v", err)
		}
		if took := time.Since(start); took != 2*time.Second {
			t.Fatalf("call took %v, want the pause's 2s", took)
		}

		// A deadline that passes during the pause.
		n.Hold("b", true)
		_, err := nodes["a"].Call(context.Background(), "b", "m", nil)
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("call to a paused process: %v, want a timeout", err)
		}
		before := served["b"].Load()
		n.Hold("b", false)
		synctest.Wait()
		if served["b"].Load() != before+1 {
			t.Fatal("the late request did not run when the process resumed")
		}

		// The paused process's own calls wait.
		n.Hold("a", true)
		go func() {
			_, err := nodes["a"].Call(context.Background(), "b", "m", nil)
			done <- err
		}()
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		before = served["b"].Load()
		n.Hold("a", false)
		if err := <-done; err != nil || served["b"].Load() != before+1 {
			t.Fatalf("call of a resumed process: %v", err)
		}
	})
}
