package bench

import (
	"slices"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds, in microseconds: 1µs to 10 minutes at three significant
// digits. Longer latencies are recorded as the maximum.
const (
	histMin    = 1
	histMax    = int64(10 * time.Minute / time.Microsecond)
	histDigits = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

func recordHist(h *hdrhistogram.Histogram, d time.Duration) {
	us := d.Microseconds()
	us = min(max(us, histMin), histMax)
	_ = h.RecordValue(us) // in range by construction
}

func percentiles(h *hdrhistogram.Histogram) Percentiles {
	if h.TotalCount() == 0 {
		return Percentiles{}
	}
	return Percentiles{
		P50:  h.ValueAtQuantile(50),
		P90:  h.ValueAtQuantile(90),
		P99:  h.ValueAtQuantile(99),
		P999: h.ValueAtQuantile(99.9),
		Max:  h.Max(),
		Mean: h.Mean(),
	}
}

// opRec is the record of one operation type: whole-phase histograms and the
// histograms of the current and previous intervals.
type opRec struct {
	count, errors int64
	kinds         map[ErrorKind]int64
	lat, svc      *hdrhistogram.Histogram

	iOps, iErrs int64
	iLat        *hdrhistogram.Histogram
	pOps, pErrs int64 // previous interval, kept to fold a short tail into
	pLat        *hdrhistogram.Histogram
}

func newOpRec() *opRec {
	return &opRec{
		kinds: make(map[ErrorKind]int64),
		lat:   newHist(), svc: newHist(),
		iLat: newHist(), pLat: newHist(),
	}
}

func (o *opRec) add(lat, svc time.Duration, kind ErrorKind, failed bool) {
	o.count++
	o.iOps++
	if failed {
		o.errors++
		o.iErrs++
		o.kinds[kind]++
		return
	}
	recordHist(o.lat, lat)
	recordHist(o.svc, svc)
	recordHist(o.iLat, lat)
}

// rotate starts a new interval, keeping the one that ends as previous.
func (o *opRec) rotate() {
	o.pOps, o.pErrs = o.iOps, o.iErrs
	o.pLat, o.iLat = o.iLat, o.pLat
	o.iOps, o.iErrs = 0, 0
	o.iLat.Reset()
}

// fold merges the current interval into the previous one.
func (o *opRec) fold() {
	o.pOps += o.iOps
	o.pErrs += o.iErrs
	o.pLat.Merge(o.iLat)
	o.iOps, o.iErrs = 0, 0
	o.iLat.Reset()
}

// recorder collects the operations of one phase: per operation type,
// whole-phase HdrHistograms of latency and service time, error counts by
// kind, and a per-interval series. It is safe for concurrent use.
type recorder struct {
	start  time.Time
	period time.Duration
	// observe, when set, sees every operation (tests).
	observe func(op string, intended, started, ended time.Time, err error)

	mu    sync.Mutex // guards the fields below
	last  time.Time  // end of the last sample
	ops   map[string]*opRec
	all   *opRec // every operation
	done  int64  // operations completed
	nerrs int64  // of which failed
	kinds map[ErrorKind]int64
	// firstErr keeps the first error message of each kind.
	firstErr map[ErrorKind]string
	// samples is the series so far.
	samples []Sample
}

func newRecorder(start time.Time, period time.Duration) *recorder {
	return &recorder{
		start:  start,
		period: period,
		last:   start,
		ops:    make(map[string]*opRec),
		all:    newOpRec(),
		kinds:  make(map[ErrorKind]int64),

		firstErr: make(map[ErrorKind]string),
	}
}

// record adds one operation. Its latency runs from intended, its service
// time from started.
func (r *recorder) record(op string, intended, started, ended time.Time, err error) {
	if r.observe != nil {
		r.observe(op, intended, started, ended, err)
	}
	var kind ErrorKind
	if err != nil {
		kind = ClassifyError(err)
	}
	lat, svc := ended.Sub(intended), ended.Sub(started)
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.ops[op]
	if o == nil {
		o = newOpRec()
		r.ops[op] = o
	}
	o.add(lat, svc, kind, err != nil)
	r.all.add(lat, svc, kind, err != nil)
	r.done++
	if err != nil {
		r.nerrs++
		r.kinds[kind]++
		if _, ok := r.firstErr[kind]; !ok {
			r.firstErr[kind] = err.Error()
		}
	}
}

// totals returns the operations completed and failed so far.
func (r *recorder) totals() (done, failed int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done, r.nerrs
}

// tick closes the interval ending at now and returns its sample; ok is
// false when now is not after the last tick.
func (r *recorder) tick(now time.Time) (s Sample, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !now.After(r.last) {
		return Sample{}, false
	}
	s = r.sampleLocked(now, now.Sub(r.last), false)
	r.samples = append(r.samples, s)
	r.last = now
	for _, o := range r.ops {
		o.rotate()
	}
	r.all.rotate()
	return s, true
}

// finish closes the last interval at end. A tail shorter than half a
// period is folded into the previous sample rather than giving a sample of
// its own, whose rate would be noise.
func (r *recorder) finish(end time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !end.After(r.last) {
		return
	}
	tail := end.Sub(r.last)
	if tail < r.period/2 && len(r.samples) > 0 {
		prev := r.samples[len(r.samples)-1]
		for _, o := range r.ops {
			o.fold()
		}
		r.all.fold()
		interval := time.Duration(prev.Interval*float64(time.Second)) + tail
		r.samples[len(r.samples)-1] = r.sampleLocked(end, interval, true)
	} else {
		r.samples = append(r.samples, r.sampleLocked(end, tail, false))
		for _, o := range r.ops {
			o.rotate()
		}
		r.all.rotate()
	}
	r.last = end
}

// sampleLocked builds the sample of the current interval, or of the
// previous one when prev is set.
func (r *recorder) sampleLocked(end time.Time, interval time.Duration, prev bool) Sample {
	pick := func(o *opRec) (int64, int64, *hdrhistogram.Histogram) {
		if prev {
			return o.pOps, o.pErrs, o.pLat
		}
		return o.iOps, o.iErrs, o.iLat
	}
	sec := interval.Seconds()
	ops, errs, h := pick(r.all)
	s := Sample{
		T:         end.Sub(r.start).Seconds(),
		Interval:  sec,
		Ops:       ops,
		Errors:    errs,
		OpsPerSec: float64(ops-errs) / sec,
		Latency:   percentiles(h),
	}
	for name, o := range r.ops {
		ops, errs, h := pick(o)
		if ops == 0 {
			continue
		}
		if s.PerOp == nil {
			s.PerOp = make(map[string]OpSample)
		}
		p := percentiles(h)
		s.PerOp[name] = OpSample{Ops: ops, Errors: errs, P50: p.P50, P99: p.P99}
	}
	return s
}

// summarize fills the totals, per-op summaries, errors and series of res for
// a phase of the given length.
func (r *recorder) summarize(res *Result, elapsed time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sec := elapsed.Seconds()
	sum := func(name string, o *opRec) OpSummary {
		s := OpSummary{
			Op:      name,
			Count:   o.count,
			Errors:  o.errors,
			Latency: percentiles(o.lat),
			Service: percentiles(o.svc),
		}
		if sec > 0 {
			s.OpsPerSec = float64(o.count-o.errors) / sec
		}
		if len(o.kinds) > 0 {
			s.ErrorsByKind = make(map[ErrorKind]int64, len(o.kinds))
			for k, v := range o.kinds {
				s.ErrorsByKind[k] = v
			}
		}
		return s
	}
	res.Elapsed = sec
	res.Total = sum("TOTAL", r.all)
	names := make([]string, 0, len(r.ops))
	for name := range r.ops {
		names = append(names, name)
	}
	slices.Sort(names)
	res.Ops = res.Ops[:0]
	for _, name := range names {
		res.Ops = append(res.Ops, sum(name, r.ops[name]))
	}
	res.Errors = make(map[ErrorKind]int64, len(ErrorKinds))
	for _, k := range ErrorKinds {
		res.Errors[k] = r.kinds[k]
	}
	if len(r.firstErr) > 0 {
		res.FirstErrors = make(map[ErrorKind]string, len(r.firstErr))
		for k, v := range r.firstErr {
			res.FirstErrors[k] = v
		}
	}
	res.Series = slices.Clone(r.samples)
}
