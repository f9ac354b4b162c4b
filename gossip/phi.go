package gossip

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
)

// DetectorConfig configures a phi accrual failure Detector.
type DetectorConfig struct {
	// Threshold is the phi at which a peer is suspected (8: the model
	// gives a live peer a 1e-8 chance of being this late).
	Threshold float64
	// WindowSize is how many inter-arrival times are kept per peer (1000).
	WindowSize int
	// MinStdDev is the floor of the modelled standard deviation, so very
	// regular heartbeats do not make a few milliseconds of jitter look
	// fatal (100 ms).
	MinStdDev time.Duration
	// AcceptablePause is added to the mean interval, tolerating GC pauses
	// and short network hiccups without suspicion (500 ms).
	AcceptablePause time.Duration
	// FirstHeartbeatEstimate seeds a new peer's window with two intervals,
	// 0.75 and 1.25 times it (mean = estimate, stddev = estimate/4), so phi
	// is defined from the first heartbeat (1 s).
	FirstHeartbeatEstimate time.Duration
	// RecoveryHeartbeats is how many consecutive timely heartbeats a
	// suspected peer must send, counting the one that ends the silence,
	// before it is trusted again (3).
	RecoveryHeartbeats int
}

// DefaultDetectorConfig returns the defaults documented on DetectorConfig.
func DefaultDetectorConfig() DetectorConfig {
	return DetectorConfig{
		Threshold:              8,
		WindowSize:             1000,
		MinStdDev:              100 * time.Millisecond,
		AcceptablePause:        500 * time.Millisecond,
		FirstHeartbeatEstimate: time.Second,
		RecoveryHeartbeats:     3,
	}
}

// Validate checks the configuration.
func (c DetectorConfig) Validate() error {
	switch {
	case !(c.Threshold > 0) || math.IsInf(c.Threshold, 0) || c.Threshold > maxPhi:
		return fmt.Errorf("%w: threshold %v must be in (0, %v]", ErrInvalidConfig, c.Threshold, maxPhi)
	case c.WindowSize < 2:
		return fmt.Errorf("%w: window size %d must be at least 2", ErrInvalidConfig, c.WindowSize)
	case c.MinStdDev <= 0:
		return fmt.Errorf("%w: min stddev must be positive", ErrInvalidConfig)
	case c.AcceptablePause < 0:
		return fmt.Errorf("%w: negative acceptable pause", ErrInvalidConfig)
	case c.FirstHeartbeatEstimate <= 0:
		return fmt.Errorf("%w: first heartbeat estimate must be positive", ErrInvalidConfig)
	case c.RecoveryHeartbeats < 1:
		return fmt.Errorf("%w: recovery heartbeats must be at least 1", ErrInvalidConfig)
	}
	return nil
}

// DetectionTime is how long after its last heartbeat a peer that had been
// heartbeating exactly every interval is suspected: interval +
// AcceptablePause + z·MinStdDev, where z is the standard normal quantile
// whose upper tail is 10^-Threshold (z ≈ 5.612 for phi 8). It assumes the
// observed stddev is below MinStdDev, as it is for steady heartbeats. With
// the defaults and 1 s heartbeats it is about 2.061 s.
func (c DetectorConfig) DetectionTime(interval time.Duration) time.Duration {
	z := quantile(c.Threshold)
	return interval + c.AcceptablePause + time.Duration(z*float64(c.MinStdDev))
}

// PeerState is one peer's detector state, as published by Snapshot.
type PeerState struct {
	Peer          string        `json:"peer"`
	Phi           float64       `json:"phi"`
	Suspected     bool          `json:"suspected"`
	LastHeartbeat time.Time     `json:"last_heartbeat"`
	Samples       int           `json:"samples"` // observed intervals in the window (seeds excluded)
	MeanInterval  time.Duration `json:"mean_interval"`
}

// Detector is a phi accrual failure detector (see the package
// documentation). It does no I/O and starts no goroutines: time comes from
// its clock, and suspicion is evaluated whenever it is asked. It is safe for
// concurrent use.
type Detector struct {
	cfg DetectorConfig
	clk clock.Clock

	mu       sync.Mutex       // guards the fields below
	peers    map[string]*peer // by peer name
	onChange func(peer string, available bool)
	counts   DetectorMetrics // Heartbeats, Suspicions, Recoveries
}

// peer is the history of one peer.
type peer struct {
	win       window
	last      time.Time // arrival of the latest heartbeat
	suspected bool
	recovery  int // consecutive timely heartbeats while suspected, counting the late one that ended the silence
	late      int // consecutive late heartbeats
}

// flip is a pending OnChange call.
type flip struct {
	peer      string
	available bool
}

// NewDetector returns a detector reading time from clk. It panics if cfg
// does not validate: check it with Validate first when it comes from a user.
func NewDetector(cfg DetectorConfig, clk clock.Clock) *Detector {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &Detector{cfg: cfg, clk: clk, peers: make(map[string]*peer)}
}

// OnChange sets a function called whenever a peer flips between available
// and suspected. It is called after the detector's lock is released, from
// the goroutine whose Heartbeat, Available, Check or Snapshot call noticed
// the flip; flips of one peer are reported in order if those calls are not
// made concurrently.
func (d *Detector) OnChange(f func(peer string, available bool)) {
	d.mu.Lock()
	d.onChange = f
	d.mu.Unlock()
}

// Heartbeat records a heartbeat from peer arriving now.
func (d *Detector) Heartbeat(name string) {
	now := d.clk.Now()
	var flips []flip
	d.mu.Lock()
	d.counts.Heartbeats++
	p, ok := d.peers[name]
	if !ok {
		p = &peer{last: now}
		est := d.cfg.FirstHeartbeatEstimate.Seconds()
		p.win.add(est*0.75, true, d.cfg.WindowSize)
		p.win.add(est*1.25, true, d.cfg.WindowSize)
		d.peers[name] = p
		d.mu.Unlock()
		return
	}
	// A heartbeat is late if phi reached the threshold before it arrived.
	// The silence before it measures an outage, not the heartbeat rhythm,
	// so it stays out of the window; the peer is suspected (if nobody
	// noticed yet) and this heartbeat starts its recovery count afresh.
	if d.phiAt(p, now) >= d.cfg.Threshold {
		if d.evaluate(p, now) {
			flips = append(flips, flip{name, false})
		}
		p.recovery = 1
		// Late again and again: no longer an outage but the peer's
		// rhythm, slower than the window knows (its heartbeat interval
		// changed, say). Learn it, or the peer stays suspected forever.
		if p.late++; p.late >= d.cfg.RecoveryHeartbeats {
			p.win.add(now.Sub(p.last).Seconds(), false, d.cfg.WindowSize)
		}
	} else {
		p.late = 0
		p.win.add(now.Sub(p.last).Seconds(), false, d.cfg.WindowSize)
		if p.suspected {
			p.recovery++
		}
	}
	if p.suspected && p.recovery >= d.cfg.RecoveryHeartbeats {
		p.suspected = false
		p.recovery = 0
		d.counts.Recoveries++
		flips = append(flips, flip{name, true})
	}
	p.last = now
	f := d.onChange
	d.mu.Unlock()
	report(f, flips)
}

// Phi returns the suspicion level of peer now; 0 for an unknown peer.
func (d *Detector) Phi(name string) float64 {
	now := d.clk.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.peers[name]
	if !ok {
		return 0
	}
	return d.phiAt(p, now)
}

// Available reports whether peer is trusted now: false from the moment phi
// reaches the threshold until RecoveryHeartbeats timely heartbeats arrive.
// A peer never heard from is available: the detector judges only peers it
// has history for, and the membership layer owns peers that never started.
func (d *Detector) Available(name string) bool {
	now := d.clk.Now()
	d.mu.Lock()
	p, ok := d.peers[name]
	if !ok {
		d.mu.Unlock()
		return true
	}
	flipped := d.evaluate(p, now)
	suspected := p.suspected
	f := d.onChange
	d.mu.Unlock()
	if flipped {
		report(f, []flip{{name, false}})
	}
	return !suspected
}

// Check re-evaluates every peer now, reporting flips to OnChange. Call it
// periodically so that suspicion of silent peers is reported promptly.
func (d *Detector) Check() {
	d.Snapshot()
}

// Snapshot evaluates every peer now and returns their states sorted by peer.
func (d *Detector) Snapshot() []PeerState {
	now := d.clk.Now()
	var flips []flip
	d.mu.Lock()
	out := make([]PeerState, 0, len(d.peers))
	for name, p := range d.peers {
		if d.evaluate(p, now) {
			flips = append(flips, flip{name, false})
		}
		out = append(out, PeerState{
			Peer:          name,
			Phi:           d.phiAt(p, now),
			Suspected:     p.suspected,
			LastHeartbeat: p.last,
			Samples:       p.win.samples(),
			MeanInterval:  time.Duration(p.win.mean() * float64(time.Second)),
		})
	}
	f := d.onChange
	d.mu.Unlock()
	slices.SortFunc(flips, func(a, b flip) int { return strings.Compare(a.peer, b.peer) })
	report(f, flips)
	slices.SortFunc(out, func(a, b PeerState) int { return strings.Compare(a.Peer, b.Peer) })
	return out
}

// Metrics returns a snapshot of the counters. It does not re-evaluate
// suspicion; call Check first for an up-to-date Suspected count.
func (d *Detector) Metrics() DetectorMetrics {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.counts
	m.Peers = len(d.peers)
	for _, p := range d.peers {
		if p.suspected {
			m.Suspected++
		}
	}
	return m
}

// Remove forgets peer; a later heartbeat starts a fresh history.
func (d *Detector) Remove(name string) {
	d.mu.Lock()
	delete(d.peers, name)
	d.mu.Unlock()
}

// evaluate marks p suspected if phi has reached the threshold at now, and
// reports whether it flipped. d.mu must be held.
func (d *Detector) evaluate(p *peer, now time.Time) bool {
	if p.suspected || d.phiAt(p, now) < d.cfg.Threshold {
		return false
	}
	p.suspected = true
	p.recovery = 0
	d.counts.Suspicions++
	return true
}

// phiAt is phi for p at now. d.mu must be held.
func (d *Detector) phiAt(p *peer, now time.Time) float64 {
	mean := p.win.mean() + d.cfg.AcceptablePause.Seconds()
	std := max(p.win.stddev(), d.cfg.MinStdDev.Seconds())
	return phi(now.Sub(p.last).Seconds(), mean, std)
}

func report(f func(string, bool), flips []flip) {
	if f == nil {
		return
	}
	for _, x := range flips {
		f(x.peer, x.available)
	}
}

// maxPhi is phi at the smallest positive float64 probability, 4.9e-324.
const maxPhi = 323.3

// phi is -log10 of the probability that a normally distributed interval
// with the given mean and stddev (seconds) exceeds elapsed.
func phi(elapsed, mean, std float64) float64 {
	p := 0.5 * math.Erfc((elapsed-mean)/(std*math.Sqrt2))
	if p <= 0 {
		return maxPhi
	}
	return max(0, -math.Log10(p))
}

// quantile returns z such that phi(z, 0, 1) = threshold, by bisection.
func quantile(threshold float64) float64 {
	lo, hi := -40.0, 40.0
	for range 200 {
		mid := (lo + hi) / 2
		if phi(mid, 0, 1) < threshold {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// window is a ring of inter-arrival times in seconds with running sums.
type window struct {
	buf        []float64
	head       int // oldest sample once the ring is full
	seeds      int // synthetic samples still in the window
	sum, sumSq float64
}

func (w *window) add(x float64, seed bool, size int) {
	if len(w.buf) < size {
		w.buf = append(w.buf, x)
	} else {
		old := w.buf[w.head]
		w.sum -= old
		w.sumSq -= old * old
		if w.seeds > 0 { // seeds are the oldest samples
			w.seeds--
		}
		w.buf[w.head] = x
		w.head = (w.head + 1) % size
		if w.head == 0 { // once per lap, drop accumulated rounding error
			w.sum, w.sumSq = 0, 0
			for _, v := range w.buf {
				w.sum += v
				w.sumSq += v * v
			}
			w.sum -= x
			w.sumSq -= x * x
		}
	}
	if seed {
		w.seeds++
	}
	w.sum += x
	w.sumSq += x * x
}

func (w *window) samples() int { return len(w.buf) - w.seeds }

func (w *window) mean() float64 {
	if len(w.buf) == 0 {
		return 0
	}
	return w.sum / float64(len(w.buf))
}

func (w *window) stddev() float64 {
	if len(w.buf) == 0 {
		return 0
	}
	m := w.mean()
	return math.Sqrt(max(0, w.sumSq/float64(len(w.buf))-m*m))
}
