package sim

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/simcluster"
	"github.com/quorumkv/quorumkv/node"
)

// Config shapes one simulated run. Zero fields take DefaultConfig's.
type Config struct {
	// Seed decides everything the run chooses.
	Seed uint64
	// Nodes is the cluster size; 0 lets the seed pick 3 or 5.
	Nodes int
	// Clients work concurrently, each through random coordinators.
	Clients int
	// Keys is how many keys the clients share (few: they contend).
	Keys int
	// FaultTime is how long (simulated) the clients work while the
	// nemesis injects faults.
	FaultTime time.Duration
	// Faults lists the kinds of fault the nemesis injects (FaultKinds),
	// comma-separated; "all" is every kind, "" none (a healthy cluster).
	Faults string
	// Workload is "set" (set-adds, deletes and reads: lost, phantoms,
	// resurrected) or "register" (writes and reads of one last-write-wins
	// key, checked for linearizability with porcupine).
	Workload string
	// RegisterMode is the register workload's consistency settings, a key
	// of RegisterModes ("strict" when empty).
	RegisterMode string
	// Grace is the tombstone grace period: short, so that tombstones are
	// reaped while the run goes on.
	Grace time.Duration
	// ConvergeWithin bounds, in simulated time after the heal, how long
	// the replicas may take to hold the same sets.
	ConvergeWithin time.Duration
	// Log receives the nodes' logs; nil discards them.
	Log io.Writer
	// Membership is the membership change the run makes while faults go
	// on: "" none, or one of Memberships, or "random".
	Membership string

	// sabotage, set by the checkers' own tests, breaks the cluster behind
	// the clients' back once it has converged, before the checkers run.
	sabotage func(r *run)
}

// DefaultConfig returns the configuration CI runs every seed with.
func DefaultConfig() Config {
	return Config{
		Clients:        3,                // concurrent clients
		Keys:           5,                // few keys: concurrent writes make siblings
		FaultTime:      30 * time.Second, // of client work under faults
		Faults:         "all",            // every kind of fault
		Workload:       "set",            // set-adds, deletes and reads
		Grace:          3 * time.Second,  // reaping happens during the run
		ConvergeWithin: 3 * time.Minute,  // measured convergence stays well under it
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Clients == 0 {
		c.Clients = d.Clients
	}
	if c.Keys == 0 {
		c.Keys = d.Keys
	}
	if c.FaultTime == 0 {
		c.FaultTime = d.FaultTime
	}
	if c.Grace == 0 {
		c.Grace = d.Grace
	}
	if c.ConvergeWithin == 0 {
		c.ConvergeWithin = d.ConvergeWithin
	}
	if c.Workload == "" {
		c.Workload = d.Workload
	}
	return c
}

// FaultKinds are the faults the nemesis can inject.
var FaultKinds = []string{"partition", "oneway", "crash", "wipe", "pause", "clock", "messages"}

// faultSet parses Config.Faults.
func faultSet(s string) (map[string]bool, error) {
	out := map[string]bool{}
	if s == "" {
		return out, nil
	}
	for _, k := range strings.Split(s, ",") {
		if k == "all" {
			for _, f := range FaultKinds {
				out[f] = true
			}
			continue
		}
		if !slices.Contains(FaultKinds, k) {
			return nil, fmt.Errorf("sim: unknown fault %q (know %s, all)", k, strings.Join(FaultKinds, ", "))
		}
		out[k] = true
	}
	return out, nil
}

// Result is what a run measured and found.
type Result struct {
	Seed  uint64
	Nodes int
	// Ops counts client operations; Acked those acknowledged, Failed
	// those certainly not applied, Unknown the rest.
	Ops, Acked, Failed, Unknown int
	// AckedAdds counts acknowledged set-adds, AckedDeletes deletes.
	AckedAdds, AckedDeletes int
	// Lost, Phantoms and Resurrected count what the checkers found.
	Lost, Phantoms, Resurrected int
	// LostToWipes counts acknowledged writes undone by lost disks: adds
	// missing at the end, and deleted versions back, where every node that
	// acknowledged the write lost its disk afterwards. Not a defect (w=1
	// keeps one copy), so not in Lost or Resurrected, but reported.
	LostToWipes int
	// Converged reports whether the replicas agreed within
	// ConvergeWithin, and ConvergeTime how long after the heal.
	Converged    bool
	ConvergeTime time.Duration
	// Faults counts the faults the nemesis injected.
	Faults int
	// Membership lists the nodes that joined (+n6) and left (-n2; in
	// parentheses when asked to leave but not gone).
	Membership string
	// Register is the register workload's linearizability check.
	Register RegisterResult
	// Problems describe every violation, with the evidence.
	Problems []string
	History  *History
}

// Unavailable is the share of operations that failed, in percent.
func (r Result) Unavailable() float64 {
	if r.Ops == 0 {
		return 0
	}
	return 100 * float64(r.Failed) / float64(r.Ops)
}

// OK reports whether the run found nothing wrong.
func (r Result) OK() bool { return len(r.Problems) == 0 }

// bucket is the bucket the clients use: the default properties, n=3.
const bucket = "sim"

// run is one simulation in progress.
type run struct {
	t     testing.TB
	cfg   Config
	c     *simcluster.Cluster
	start time.Time
	hist  *History
	keys  []string
	fates *fates

	faultKinds map[string]bool
	// hintBudget, when positive, is a per-owner hint budget small enough
	// to fill during the run (the seed picks one for half the runs).
	hintBudget int64

	// faulting is closed when the fault phase ends.
	faulting   chan struct{}
	undos      sync.WaitGroup // the goroutines that end the nemesis's faults
	mu         sync.Mutex     // guards the nemesis's view of the nodes
	crashed    map[int]bool
	paused     map[int]bool
	joined     []int                      // nodes added by the membership change
	leaving    []int                      // nodes asked to leave
	departed   map[int]bool               // nodes that have left: stopped for good
	violations []string                   // broken promises of the API, seen by clients
	wiped      map[string][]time.Duration // when each node lost its disk
	faults     int
}

// Run runs one simulation. It must be called inside a synctest bubble.
func Run(t testing.TB, cfg Config) Result {
	cfg = cfg.withDefaults()
	kinds, err := faultSet(cfg.Faults)
	if err != nil {
		t.Fatal(err)
	}
	if m := cfg.Membership; m != "" && m != "random" && !slices.Contains(Memberships, m) {
		t.Fatalf("sim: unknown membership change %q (know %s, random)", m, strings.Join(Memberships, ", "))
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	if cfg.Nodes == 0 {
		cfg.Nodes = 3 + 2*rng.IntN(2)
	}
	r := &run{
		t: t, cfg: cfg, hist: &History{}, faulting: make(chan struct{}),
		crashed: map[int]bool{}, paused: map[int]bool{}, departed: map[int]bool{}, wiped: map[string][]time.Duration{},
		fates: newFates(cfg.Seed, rng), faultKinds: kinds,
	}
	for i := range cfg.Keys {
		r.keys = append(r.keys, fmt.Sprintf("k%d", i))
	}
	if rng.IntN(2) == 0 {
		r.hintBudget = int64(1<<10 + rng.IntN(3<<10))
	}
	r.c = simcluster.Start(t, simcluster.Options{
		Nodes:      cfg.Nodes,
		Configure:  r.configure,
		Log:        cfg.Log,
		Fate:       r.fates.rpc,
		PacketFate: r.fates.packet,
		CrashRand:  rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())),
	})
	if cfg.Workload == "register" {
		r.setupRegister()
	}
	r.start = time.Now()
	r.hist.event(0, "cluster of %d nodes up; workload %s; faults %q; hint budget %d bytes (0: the default)", cfg.Nodes, cfg.Workload, cfg.Faults, r.hintBudget)

	var wg sync.WaitGroup
	for i := range cfg.Clients {
		cl := &client{r: r, id: i + 1, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i+1)))}
		if cfg.Workload == "register" {
			wg.Go(cl.registerWork)
		} else {
			wg.Go(cl.work)
		}
	}
	if kinds["messages"] {
		r.fates.enable(true)
	}
	if len(kinds) > 0 {
		wg.Go(func() { r.nemesis(rand.New(rand.NewPCG(cfg.Seed, 0xfa17))) })
	}
	// The membership change draws from a stream of its own, so that runs
	// without one replay as they did before it existed.
	mrng := rand.New(rand.NewPCG(cfg.Seed, 0x3e3b))
	if join, leave := r.planMembership(mrng); join || leave {
		wg.Go(func() { r.membership(mrng, join, leave) })
		wg.Go(r.watchLeft)
	}
	time.Sleep(cfg.FaultTime)
	close(r.faulting)
	wg.Wait()
	r.undos.Wait()

	res := Result{Seed: cfg.Seed, Nodes: cfg.Nodes, History: r.hist, Faults: r.faults}
	r.heal()
	res.Converged, res.ConvergeTime = r.converge()
	res.Membership = r.membershipSummary()
	if !res.Converged {
		res.Problems = append(res.Problems, fmt.Sprintf("replicas did not converge within %v of the heal:\n%s", cfg.ConvergeWithin, r.divergence()))
	}
	if cfg.sabotage != nil {
		cfg.sabotage(r)
	}
	r.mu.Lock()
	res.Problems = append(res.Problems, r.violations...)
	r.mu.Unlock()
	if cfg.Workload == "register" {
		res.Register = r.checkRegister(&res)
		return res
	}
	r.check(&res)
	return res
}

// configure sets a simulated node up for the run: short tombstone grace
// and reap memory, anti-entropy, sweeps, reaps and strays running often,
// hint replay often, so that all of it happens during the run.
func (r *run) configure(_ int, cfg *node.Config) {
	if r.hintBudget > 0 {
		cfg.HintBudget = r.hintBudget
	}
	cfg.TombstoneGrace = r.cfg.Grace
	cfg.ReapMemory = 2 * r.cfg.Grace
	cfg.RequestTimeout = time.Second
	cfg.AntiEntropy.Interval = 500 * time.Millisecond
	cfg.AntiEntropy.SweepInterval = time.Second
	cfg.AntiEntropy.ReapInterval = time.Second
	cfg.AntiEntropy.StrayInterval = time.Second
	cfg.AntiEntropy.BytesPerSecond = 0
}

// violation records a broken promise of the API.
func (r *run) violation(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.violations) < 20 {
		r.violations = append(r.violations, fmt.Sprintf(format, a...))
	}
}

// since is the simulated time since the run started.
func (r *run) since() time.Duration { return time.Since(r.start) }

// faultPhase reports whether the fault phase is still on.
func (r *run) faultPhase() bool {
	select {
	case <-r.faulting:
		return false
	default:
		return true
	}
}

// heal ends every fault: the networks heal, paused nodes resume, crashed
// ones restart, messages stop being dropped. Clocks keep their steps.
func (r *run) heal() {
	r.fates.enable(false)
	r.c.Heal()
	for _, i := range r.nodes() {
		r.mu.Lock()
		paused := r.paused[i]
		delete(r.paused, i)
		r.mu.Unlock()
		if paused {
			r.c.Resume(i)
		}
		for attempt := 0; !r.restart(i); attempt++ {
			if attempt == 10 {
				r.t.Fatalf("%s does not start after the heal", r.c.ID(i))
			}
			time.Sleep(time.Second)
		}
	}
	r.hist.event(r.since(), "healed: every node up, no partition, no message lost")
}

var errNoNode = errors.New("sim: no node is up")

// anyNode picks a running node at random.
func (r *run) anyNode(rng *rand.Rand) (int, error) {
	var up []int
	for _, i := range r.nodes() {
		if r.c.Running(i) {
			up = append(up, i)
		}
	}
	if len(up) == 0 {
		return 0, errNoNode
	}
	return up[rng.IntN(len(up))], nil
}
