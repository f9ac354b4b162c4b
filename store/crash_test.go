package store

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"
)

// writeLog tracks, per key, the highest sequence number each writer has
// attempted and the highest that was acknowledged.
type writeLog struct {
	mu        sync.Mutex
	attempted map[string]int
	acked     map[string]int
	acks      int
}

func newWriteLog() *writeLog {
	return &writeLog{attempted: map[string]int{}, acked: map[string]int{}}
}

func (l *writeLog) attempt(k string, seq int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.attempted[k] = seq
}

func (l *writeLog) ack(k string, seq int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acked[k] = seq
	l.acks++
}

func (l *writeLog) snapshot() (acked map[string]int, acks int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	acked = make(map[string]int, len(l.acked))
	for k, v := range l.acked {
		acked[k] = v
	}
	return acked, l.acks
}

// runWriters starts writers that each own keysPer keys and update them
// with increasing sequence numbers until stop is closed or an update fails.
func runWriters(s *Store, log *writeLog, writers, keysPer, valueSize int, stop <-chan struct{}) (wait func() []error) {
	var wg sync.WaitGroup
	errs := make([]error, writers)
	pad := strings.Repeat("p", valueSize)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 1; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w%d-k%d", w, seq%keysPer)
				log.attempt(name, seq)
				_, _, err := s.Update(tk(name), write("n1", name+"/"+strconv.Itoa(seq)+"/"+pad))
				if err != nil {
					errs[w] = err
					return
				}
				log.ack(name, seq)
			}
		}()
	}
	return func() []error { wg.Wait(); return errs }
}

// checkRecovered opens fs and checks that every row decodes, every key
// acknowledged in acked holds that write or a later attempted one, and no
// row exists for a key never attempted.
func checkRecovered(t *testing.T, fs vfs.FS, acked, attempted map[string]int) {
	t.Helper()
	cfg := testConfig(fs)
	s, err := Open(cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("close after reopen: %v", err)
		}
	}()
	rows := 0
	err = s.Scan(0, math.MaxUint64, func(h uint64, k []byte, setBytes []byte) error {
		rows++
		if cfg.Hash(k) != h {
			return fmt.Errorf("row %q filed under the wrong hash", k)
		}
		set, err := DecodeSet(setBytes)
		if err != nil {
			return fmt.Errorf("row %q: %w", k, err)
		}
		_, key, _ := DecodeKey(k)
		if _, ok := attempted[string(key)]; !ok {
			return fmt.Errorf("row for never-written key %q", key)
		}
		if len(set.Siblings) != 1 {
			return fmt.Errorf("row %q has %d siblings", key, len(set.Siblings))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan after crash: %v", err)
	}
	for name, seq := range acked {
		set, err := s.Get(tk(name))
		if err != nil {
			t.Fatalf("Get(%s): %v", name, err)
		}
		if len(set.Siblings) != 1 {
			t.Fatalf("acknowledged write %s/%d lost: key has %d siblings", name, seq, len(set.Siblings))
		}
		parts := strings.SplitN(string(set.Siblings[0].Value), "/", 3)
		got, err := strconv.Atoi(parts[1])
		if err != nil || parts[0] != name {
			t.Fatalf("key %s holds a foreign value %q", name, set.Siblings[0].Value)
		}
		if got < seq || got > attempted[name] {
			t.Fatalf("key %s holds write %d; acknowledged %d, last attempted %d", name, got, seq, attempted[name])
		}
	}
	t.Logf("recovered %d rows; %d keys had acknowledged writes", rows, len(acked))
}

func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			fs := vfs.NewCrashableMem()
			s := openTest(t, fs, func(c *Config) { c.MemTableSize = 256 << 10 })
			log := newWriteLog()
			stop := make(chan struct{})
			wait := runWriters(s, log, 8, 5, rng.IntN(1000), stop)

			// Crash while the writers are running, after a random number
			// of acknowledgements.
			target := 200 + rng.IntN(2000)
			for {
				if _, n := log.snapshot(); n >= target {
					break
				}
				runtimeYield()
			}
			acked, n := log.snapshot() // acknowledged before the crash
			crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
			close(stop)
			for w, err := range wait() {
				if err != nil {
					t.Fatalf("writer %d: %v", w, err)
				}
			}
			t.Logf("crashed after %d acknowledgements, %d flushes", n, s.Metrics().Flushes)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			log.mu.Lock()
			attempted := log.attempted
			log.mu.Unlock()
			checkRecovered(t, crashed, acked, attempted)
		})
	}
}

// runtimeYield lets the writers run while the test polls.
func runtimeYield() { runtime.Gosched() }
