package bench

import (
	"errors"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
)

func TestRecorderSeriesAndTotals(t *testing.T) {
	tests := []struct {
		name        string
		end         time.Duration
		wantSamples int
		lastLen     float64
	}{
		{"short tail folded", 2300 * time.Millisecond, 2, 1.3},
		{"long tail kept", 2700 * time.Millisecond, 3, 0.7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t0 := clock.Epoch
			rec := newRecorder(t0, time.Second)
			at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
			// Second 1: 3 reads of 1, 2, 3 ms and a failed update.
			for i := 1; i <= 3; i++ {
				rec.record(OpRead, at(100*i), at(100*i), at(100*i+i), nil)
			}
			rec.record(OpUpdate, at(500), at(500), at(510), &HTTPError{Status: 503})
			rec.tick(at(1000))
			// Second 2: one update of 4ms.
			rec.record(OpUpdate, at(1500), at(1500), at(1504), nil)
			rec.tick(at(2000))
			// Tail: two reads.
			rec.record(OpRead, at(2100), at(2100), at(2101), nil)
			rec.record(OpRead, at(2200), at(2200), at(2201), errors.New("boom"))
			rec.finish(t0.Add(tt.end))

			res := &Result{}
			rec.summarize(res, tt.end)
			if len(res.Series) != tt.wantSamples {
				t.Fatalf("%d samples, want %d", len(res.Series), tt.wantSamples)
			}
			last := res.Series[len(res.Series)-1]
			if diff := last.Interval - tt.lastLen; diff > 1e-9 || diff < -1e-9 {
				t.Fatalf("last interval %v, want %v", last.Interval, tt.lastLen)
			}
			if last.T != tt.end.Seconds() {
				t.Fatalf("last sample ends at %v, want %v", last.T, tt.end.Seconds())
			}
			var sum, sumErr int64
			for _, s := range res.Series {
				sum += s.Ops
				sumErr += s.Errors
			}
			if sum != 7 || res.Total.Count != 7 || sumErr != 2 || res.Total.Errors != 2 {
				t.Fatalf("series %d ops %d errors, total %d ops %d errors; want 7 and 2", sum, sumErr, res.Total.Count, res.Total.Errors)
			}
			first := res.Series[0]
			if first.Ops != 4 || first.Errors != 1 || first.OpsPerSec != 3 {
				t.Fatalf("first sample %+v", first)
			}
			if first.PerOp[OpRead].Ops != 3 || !hdrNear(first.PerOp[OpRead].P99, 3000) || first.PerOp[OpUpdate].Errors != 1 {
				t.Fatalf("first sample per op %+v", first.PerOp)
			}
			read, _ := res.Op(OpRead)
			upd, _ := res.Op(OpUpdate)
			if read.Count != 5 || read.Errors != 1 || upd.Count != 2 || upd.Errors != 1 {
				t.Fatalf("per op: read %+v update %+v", read, upd)
			}
			if !hdrNear(read.Latency.Max, 3000) || !hdrNear(upd.Latency.Max, 4000) {
				t.Fatalf("max latencies: read %d update %d", read.Latency.Max, upd.Latency.Max)
			}
			if res.Errors[KindQuorum] != 1 || res.Errors[KindOther] != 1 || len(res.Errors) != len(ErrorKinds) {
				t.Fatalf("errors %v", res.Errors)
			}
			if upd.ErrorsByKind[KindQuorum] != 1 {
				t.Fatalf("update errors by kind %v", upd.ErrorsByKind)
			}
			if want := 5.0 / tt.end.Seconds(); res.Total.OpsPerSec != want {
				t.Fatalf("total ops/s %v, want %v", res.Total.OpsPerSec, want)
			}
		})
	}
}

func TestRecorderClampsLatency(t *testing.T) {
	t0 := clock.Epoch
	rec := newRecorder(t0, time.Second)
	rec.record("X", t0, t0, t0.Add(time.Hour), nil)    // beyond the histogram
	rec.record("X", t0, t0, t0, nil)                   // zero
	rec.record("X", t0, t0, t0.Add(-time.Second), nil) // clock went back
	res := &Result{}
	rec.finish(t0.Add(time.Second))
	rec.summarize(res, time.Second)
	x, _ := res.Op("X")
	if x.Count != 3 || x.Latency.Max < histMax || x.Latency.P50 != histMin {
		t.Fatalf("%+v", x)
	}
}
