package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
)

// sampler closes a recorder interval every period and, when it has a
// writer, prints a progress line for it. It owns one goroutine, started by
// startSampler and stopped by close.
type sampler struct {
	clock  clock.Clock
	w      io.Writer // nil: no output
	rec    *recorder
	title  string        // e.g. "quorumkv run"
	ops    int64         // op limit for the bar; 0 = none
	limit  time.Duration // duration limit for the bar; 0 = none
	ticker clock.Ticker

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func startSampler(c clock.Clock, w io.Writer, rec *recorder, period time.Duration, title string, ops int64, limit time.Duration) *sampler {
	s := &sampler{
		clock: c, w: w, rec: rec, title: title, ops: ops, limit: limit,
		ticker: c.NewTicker(period),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go s.run()
	return s
}

func (s *sampler) run() {
	defer close(s.done)
	defer s.ticker.Stop()
	for {
		select {
		case now := <-s.ticker.C():
			sample, ok := s.rec.tick(now)
			if !ok || s.w == nil {
				continue
			}
			done, failed := s.rec.totals()
			line := formatProgress(s.title, sample, done, failed, now.Sub(s.rec.start), s.ops, s.limit)
			_, _ = io.WriteString(s.w, line+"\n")
		case <-s.stop:
			return
		}
	}
}

// close stops the sampler and waits for it. It is idempotent.
func (s *sampler) close() {
	s.closeOnce.Do(func() { close(s.stop) })
	<-s.done
}

// barWidth is the progress bar's width in characters.
const barWidth = 24

// formatProgress renders one live progress line: title, elapsed time, a bar
// against the op or duration limit (whichever is nearer), the interval's
// successful ops/s, p50 and p99 per operation, and the errors so far.
func formatProgress(title string, s Sample, done, failed int64, elapsed time.Duration, ops int64, limit time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", title, formatElapsed(elapsed))
	frac := -1.0
	if ops > 0 {
		frac = float64(done) / float64(ops)
	}
	if limit > 0 {
		frac = max(frac, elapsed.Seconds()/limit.Seconds())
	}
	if frac >= 0 {
		frac = min(frac, 1)
		filled := int(frac*barWidth + 0.5)
		fmt.Fprintf(&b, " [%s%s] %3.0f%%", strings.Repeat("#", filled), strings.Repeat("-", barWidth-filled), frac*100)
	}
	fmt.Fprintf(&b, " %8.0f ops/s", s.OpsPerSec)
	names := make([]string, 0, len(s.PerOp))
	for name := range s.PerOp {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		o := s.PerOp[name]
		fmt.Fprintf(&b, " | %s p50 %s p99 %s", name, formatMicros(o.P50), formatMicros(o.P99))
	}
	fmt.Fprintf(&b, " | errors %d", failed)
	return b.String()
}

func formatElapsed(d time.Duration) string {
	sec := int64(d / time.Second)
	return fmt.Sprintf("%02d:%02d:%02d", sec/3600, sec/60%60, sec%60)
}

// formatMicros renders a latency in µs with a readable unit.
func formatMicros(us int64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%dus", us)
	case us < 1000_000:
		return fmt.Sprintf("%.2fms", float64(us)/1000)
	}
	return fmt.Sprintf("%.2fs", float64(us)/1e6)
}
