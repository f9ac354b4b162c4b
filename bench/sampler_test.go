package bench

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
)

func TestFormatProgress(t *testing.T) {
	s := Sample{
		OpsPerSec: 1234.4,
		PerOp: map[string]OpSample{
			OpUpdate: {Ops: 10, P50: 2500, P99: 1_500_000},
			OpRead:   {Ops: 10, P50: 420, P99: 9800},
		},
	}
	tests := []struct {
		name     string
		done     int64
		elapsed  time.Duration
		ops      int64
		limit    time.Duration
		contains []string
	}{
		{"ops", 50, 75 * time.Second, 100, 0,
			[]string{"qkv run 00:01:15 [" + strings.Repeat("#", 12) + strings.Repeat("-", 12) + "]  50%"}},
		{"duration nearer", 10, 30 * time.Second, 100, 40 * time.Second,
			[]string{"[" + strings.Repeat("#", 18) + strings.Repeat("-", 6) + "]  75%"}},
		{"overrun", 10, 2 * time.Hour, 0, time.Hour,
			[]string{"02:00:00 [" + strings.Repeat("#", 24) + "] 100%"}},
		{"no limits", 10, time.Second, 0, 0, []string{"qkv run 00:00:01     1234 ops/s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := formatProgress("qkv run", s, tt.done, 3, tt.elapsed, tt.ops, tt.limit)
			for _, want := range append(tt.contains,
				"1234 ops/s",
				"| READ p50 420us p99 9.80ms | UPDATE p50 2.50ms p99 1.50s",
				"| errors 3") {
				if !strings.Contains(line, want) {
					t.Errorf("line %q lacks %q", line, want)
				}
			}
			if tt.ops == 0 && tt.limit == 0 && strings.Contains(line, "[") {
				t.Errorf("bar without a limit: %q", line)
			}
		})
	}
}

// lineWriter hands every write to a channel.
type lineWriter struct {
	mu    sync.Mutex
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines <- string(p)
	return len(p), nil
}

func TestSamplerPrintsEverySecond(t *testing.T) {
	fc := clock.NewFake()
	start := fc.Now()
	rec := newRecorder(start, time.Second)
	w := &lineWriter{lines: make(chan string, 10)}
	s := startSampler(fc, w, rec, time.Second, "quorumkv workloada run", 40, 0)
	defer s.close()

	for sec := 1; sec <= 3; sec++ {
		for i := range 10 * sec {
			at := fc.Now().Add(time.Duration(i) * time.Millisecond)
			rec.record(OpRead, at, at, at.Add(time.Millisecond), nil)
		}
		fc.Advance(time.Second)
		line := <-w.lines
		want := []string{
			"quorumkv workloada run 00:00:0" + string(rune('0'+sec)),
			"| READ p50 1.00ms p99 1.00ms",
			"| errors 0",
		}
		switch sec {
		case 1:
			want = append(want, "  10 ops/s", "  25%") // 10 of 40
		case 3:
			want = append(want, "  30 ops/s", " 100%") // 60 of 40, capped
		}
		for _, wnt := range want {
			if !strings.Contains(line, wnt) {
				t.Fatalf("second %d: line %q lacks %q", sec, line, wnt)
			}
		}
	}
	s.close()
	s.close() // idempotent
	rec.finish(fc.Now())
	res := &Result{}
	rec.summarize(res, 3*time.Second)
	if len(res.Series) != 3 {
		t.Fatalf("%d samples, want 3", len(res.Series))
	}
}
