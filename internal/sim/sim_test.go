package sim

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

var (
	seedFlag  = flag.Int64("seed", -1, "run only this seed, and print its history")
	seedsFlag = flag.Int("sim.seeds", 20, "how many seeds TestSimSeeds runs (CI runs 1000)")
	firstFlag = flag.Uint64("sim.first", 1, "the first seed TestSimSeeds runs")
	quietFlag = flag.Bool("sim.quiet", false, "do not print the per-seed summary lines")
	logFlag   = flag.Bool("sim.log", false, "with -seed, print the nodes' logs")
	faults    = flag.String("sim.faults", "all", "the faults the nemesis injects: all, or a comma-separated list of "+strings.Join(FaultKinds, ", ")+"; empty for none")
	workload  = flag.String("sim.workload", "set", "set (set-adds, deletes, reads) or register (linearizability, with porcupine)")
	nodesFlag = flag.Int("sim.nodes", 0, "cluster size; 0 lets each seed pick 3 or 5")
	regMode   = flag.String("sim.register", "strict", "the register workload's settings: strict (r=w=quorum, sloppy=false) or default")
	member    = flag.String("sim.membership", "", "the membership change each run makes under the faults: "+strings.Join(Memberships, ", ")+", random (the seed picks one or none), or empty for none")
	visualize = flag.String("sim.visualize", "", "with -seed and the register workload, write porcupine's picture of the history to this HTML file")
)

// config is the run configuration the flags ask for.
func config(seed uint64) Config {
	cfg := Config{Seed: seed, Faults: *faults, Workload: *workload, Nodes: *nodesFlag, RegisterMode: *regMode, Membership: *member}
	if *workload == "register" {
		// Shorter: a write whose outcome is unknown may take effect at any
		// later time, and porcupine's search grows fast with them.
		cfg.FaultTime = 10 * time.Second
	}
	return cfg
}

func TestMain(m *testing.M) {
	flag.Parse()
	goleak.VerifyTestMain(m)
}

// runSeed runs one seed in its own bubble and reports its result.
func runSeed(t *testing.T, cfg Config) Result {
	var res Result
	synctest.Test(t, func(t *testing.T) {
		res = Run(t, cfg)
	})
	if cfg.Workload == "register" {
		vis := ""
		if *seedFlag >= 0 {
			vis = *visualize
		}
		var err error
		if res.Register, err = CheckRegister(res.Register, 10*time.Second, vis); err != nil {
			t.Error(err)
		}
	}
	if !res.OK() {
		t.Errorf("seed %d (%d nodes): %d problems\n%s\n\nhistory of seed %d:\n%s\nreproduce: go test ./internal/sim -run 'TestSim$' -cpu 1 -seed %d -v",
			res.Seed, res.Nodes, len(res.Problems), joinProblems(res.Problems), res.Seed, res.History, res.Seed)
	}
	return res
}

func joinProblems(ps []string) string {
	out := ""
	for _, p := range ps {
		out += "  - " + p + "\n"
	}
	return out
}

// TestSim runs one seed (-seed N) and prints its history and result.
func TestSim(t *testing.T) {
	if *seedFlag < 0 {
		t.Skip("pass -seed N to run one seed; TestSimSeeds runs many")
	}
	cfg := config(uint64(*seedFlag))
	if *logFlag {
		cfg.Log = os.Stderr
	}
	res := runSeed(t, cfg)
	t.Logf("history:\n%s", res.History)
	t.Logf("%s", summary(res))
}

func summary(r Result) string {
	if *workload == "register" {
		return fmt.Sprintf("seed %d: %d nodes, %d faults, %d writes (%d unknown), %d reads: linearizable %s",
			r.Seed, r.Nodes, r.Faults, r.Register.Writes, r.Register.Unknown, r.Register.Reads, r.Register.Linearizable)
	}
	s := fmt.Sprintf("seed %d: %d nodes, %d faults, %d ops (%d acked: %d adds, %d deletes; %d failed, %d unknown), lost %d (%d more to wiped disks), phantoms %d, resurrected %d, converged %v in %v",
		r.Seed, r.Nodes, r.Faults, r.Ops, r.Acked, r.AckedAdds, r.AckedDeletes, r.Failed, r.Unknown,
		r.Lost, r.LostToWipes, r.Phantoms, r.Resurrected, r.Converged, r.ConvergeTime.Round(time.Millisecond))
	if r.Membership != "" {
		s += "; membership" + r.Membership
	}
	return s
}

// TestSimSeeds runs -sim.seeds seeds from -sim.first, two at a time per
// core, and summarizes them. Every seed must find nothing wrong.
func TestSimSeeds(t *testing.T) {
	var mu sync.Mutex
	var results []Result
	t.Run("seeds", func(t *testing.T) {
		for s := *firstFlag; s < *firstFlag+uint64(*seedsFlag); s++ {
			t.Run(fmt.Sprint(s), func(t *testing.T) {
				t.Parallel()
				res := runSeed(t, config(s))
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
			})
		}
	})
	sort.Slice(results, func(i, j int) bool { return results[i].Seed < results[j].Seed })
	if !*quietFlag && testing.Verbose() {
		for _, r := range results {
			t.Log(summary(r))
		}
	}
	t.Logf("%s", aggregate(results))
}

// aggregate sums results into one line (a RELIABILITY.md row's numbers).
func aggregate(rs []Result) string {
	if *workload == "register" {
		verdicts := map[string]int{}
		var ops, failed int
		for _, r := range rs {
			verdicts[string(r.Register.Linearizable)]++
			ops += r.Ops
			failed += r.Failed
		}
		return fmt.Sprintf("%d seeds of the register workload (%s, faults %q): %d ops, %.1f%% unavailable; linearizable: %d, not linearizable: %d, undecided: %d",
			len(rs), *regMode, *faults, ops, 100*float64(failed)/float64(max(ops, 1)), verdicts["Ok"], verdicts["Illegal"], verdicts["Unknown"])
	}
	var a Result
	var maxConv, sumConv time.Duration
	faults := 0
	for _, r := range rs {
		a.Ops += r.Ops
		a.Acked += r.Acked
		a.Failed += r.Failed
		a.Unknown += r.Unknown
		a.Lost += r.Lost
		a.Phantoms += r.Phantoms
		a.Resurrected += r.Resurrected
		faults += r.Faults
		sumConv += r.ConvergeTime
		maxConv = max(maxConv, r.ConvergeTime)
	}
	mean := time.Duration(0)
	if len(rs) > 0 {
		mean = sumConv / time.Duration(len(rs))
	}
	return fmt.Sprintf("%d seeds, %d faults: %d ops, %d acknowledged, %d failed (%.1f%% unavailable), %d unknown; lost %d, phantoms %d, resurrected %d; converged in %v mean, %v max",
		len(rs), faults, a.Ops, a.Acked, a.Failed, a.Unavailable(), a.Unknown, a.Lost, a.Phantoms, a.Resurrected,
		mean.Round(time.Millisecond), maxConv.Round(time.Millisecond))
}
