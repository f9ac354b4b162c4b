package bench

import (
	"context"
	"errors"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
)

// runMem runs the phases of cfg against db with the real runner and
// go-ycsb's core workload.
func runMem(t *testing.T, cfg Config, db *memDB) []*Result {
	t.Helper()
	pl, err := cfg.resolve()
	if err != nil {
		t.Fatal(err)
	}
	var out []*Result
	for _, ph := range cfg.Phases {
		res, err := runPhase(context.Background(), cfg, pl, db, ph)
		if err != nil {
			t.Fatalf("phase %s: %v", ph, err)
		}
		out = append(out, res)
	}
	return out
}

func memConfig(workload string, records, ops int) Config {
	cfg := DefaultConfig()
	cfg.Endpoints = []string{"unused:1"}
	cfg.PropertyFiles = []string{workload}
	cfg.Properties = map[string]string{
		"recordcount":    itoa(records),
		"operationcount": itoa(ops),
		"fieldlength":    "20",
	}
	cfg.Threads = 4
	return cfg
}

func itoa(n int) string { return strconv.Itoa(n) }

// Every bundled workload runs through go-ycsb's core workload with the
// expected operation mix, and the counts add up.
func TestRunBundledWorkloads(t *testing.T) {
	tests := []struct {
		workload string
		ops      map[string]float64 // expected share of each op
	}{
		{"a", map[string]float64{OpRead: 0.5, OpUpdate: 0.5}},
		{"b", map[string]float64{OpRead: 0.95, OpUpdate: 0.05}},
		{"c", map[string]float64{OpRead: 1}},
		{"d", map[string]float64{OpRead: 0.95, OpInsert: 0.05}},
		{"e", map[string]float64{OpScan: 0.95, OpInsert: 0.05}},
		{"f", map[string]float64{OpRead: 0.5, OpReadModifyWrite: 0.5}},
	}
	const records, ops = 300, 1000
	for _, tt := range tests {
		t.Run(tt.workload, func(t *testing.T) {
			db := newMemDB()
			res := runMem(t, memConfig(tt.workload, records, ops), db)
			load, run := res[0], res[1]

			if load.Phase != PhaseLoad || load.Total.Count != records || load.Total.Errors != 0 {
				t.Fatalf("load: %s %d ops %d errors", load.Phase, load.Total.Count, load.Total.Errors)
			}
			if ins, _ := load.Op(OpInsert); ins.Count != records || len(load.Ops) != 1 {
				t.Fatalf("load ops %+v", load.Ops)
			}
			if run.Phase != PhaseRun || run.Total.Count != ops {
				t.Fatalf("run: %s %d ops", run.Phase, run.Total.Count)
			}
			// Reads of loaded keys find them: no error of any kind.
			if run.Total.Errors != 0 {
				t.Fatalf("run errors %v", run.Errors)
			}
			var sum int64
			names := []string{}
			for _, o := range run.Ops {
				sum += o.Count
				names = append(names, o.Op)
				share := float64(o.Count) / ops
				if want := tt.ops[o.Op]; share < want-0.07 || share > want+0.07 {
					t.Errorf("%s: %.3f of ops, want about %.2f", o.Op, share, want)
				}
			}
			if sum != ops {
				t.Fatalf("per-op counts sum to %d, want %d", sum, ops)
			}
			if want := slices.Sorted(maps.Keys(tt.ops)); !slices.Equal(names, want) {
				t.Fatalf("ops %v, want %v", names, want)
			}
			var seriesOps int64
			for _, s := range append(load.Series, run.Series...) {
				seriesOps += s.Ops
			}
			if seriesOps != records+ops {
				t.Fatalf("series hold %d ops, want %d", seriesOps, records+ops)
			}
			ins, _ := run.Op(OpInsert)
			if db.size() != records+int(ins.Count) || db.callCount(OpInsert) != records+int(ins.Count) {
				t.Fatalf("%d rows and %d insert calls after loading %d and inserting %d", db.size(), db.callCount(OpInsert), records, ins.Count)
			}
			if rmw, ok := run.Op(OpReadModifyWrite); ok && db.callCount(OpUpdate) != int(rmw.Count) {
				t.Fatalf("%d updates for %d read-modify-writes", db.callCount(OpUpdate), rmw.Count)
			}
			if run.Workload != "workload"+tt.workload || run.System != DBQuorumKV || run.Threads != 4 {
				t.Fatalf("result header %+v", run)
			}
			if run.Properties["recordcount"] != "300" || run.Properties["dotransactions"] != "true" {
				t.Fatalf("properties %v", run.Properties)
			}
		})
	}
}

func TestRunDurationOnly(t *testing.T) {
	cfg := memConfig("c", 50, 0)
	cfg.Phases = []Phase{PhaseLoad, PhaseRun}
	cfg.Duration = 300 * time.Millisecond
	db := newMemDB()
	res := runMem(t, cfg, db)
	run := res[1]
	if run.Elapsed < 0.3 || run.Elapsed > 2 || run.Total.Count == 0 {
		t.Fatalf("run of %.3fs with %d ops", run.Elapsed, run.Total.Count)
	}
}

// slowInserts is a memDB whose inserts each take d on a fake clock.
type slowInserts struct {
	*memDB
	clk *clock.Fake
	d   time.Duration
}

func (s slowInserts) Insert(ctx context.Context, table, key string, values map[string][]byte) error {
	s.clk.Advance(s.d)
	return s.memDB.Insert(ctx, table, key, values)
}

// A load phase that its duration ends before every record is inserted is
// marked incomplete, in the result and its summary line: the run phase
// would otherwise report reads of the missing records as not found.
func TestLoadCutByDurationIsIncomplete(t *testing.T) {
	for _, tt := range []struct {
		records  int
		duration time.Duration
		want     bool
	}{
		{50, time.Second, false},             // 50 ms of inserts
		{1000, 100 * time.Millisecond, true}, // 1 s of inserts
	} {
		cfg := memConfig("c", tt.records, 0)
		cfg.Phases = []Phase{PhaseLoad}
		cfg.Duration = tt.duration
		fc := clock.NewFake()
		cfg.Clock = fc
		pl, err := cfg.resolve()
		if err != nil {
			t.Fatal(err)
		}
		load, err := runPhase(context.Background(), cfg, pl, slowInserts{newMemDB(), fc, time.Millisecond}, PhaseLoad)
		if err != nil {
			t.Fatal(err)
		}
		if load.Incomplete != tt.want || (load.Total.Count < int64(tt.records)) != tt.want {
			t.Fatalf("%d records in %v: %d inserted, incomplete %v", tt.records, tt.duration, load.Total.Count, load.Incomplete)
		}
		var b strings.Builder
		if err := WriteSummary(&b, load); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(b.String(), "incomplete") != tt.want {
			t.Fatalf("summary %q: incomplete should show: %v", b.String(), tt.want)
		}
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/my.properties"
	if err := os.WriteFile(file, []byte("threadcount=3\nrecordcount=77\noperationcount=5\ntarget=250\nmaxexecutiontime=9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.PropertyFiles = []string{"workloadb", file}
	cfg.Properties = map[string]string{"operationcount": "6"}
	pl, err := cfg.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if pl.threads != 3 || pl.loadOps != 77 || pl.runOps != 6 || pl.target != 250 || pl.duration != 9*time.Second {
		t.Fatalf("plan %+v", pl)
	}
	if pl.workload != "my" || pl.props.GetString("readproportion", "") != "0.95" {
		t.Fatalf("workload %q, readproportion %q", pl.workload, pl.props.GetString("readproportion", ""))
	}
	// A Duration alone bounds the run.
	cfg.Duration = time.Second
	if pl, err = cfg.resolve(); err != nil || pl.runOps != 0 || pl.duration != time.Second {
		t.Fatalf("duration only: %+v %v", pl, err)
	}
	// The Config's counts win over the properties.
	cfg.Threads, cfg.Ops, cfg.Target, cfg.Duration = 2, 8, 10, time.Second
	if pl, err = cfg.resolve(); err != nil {
		t.Fatal(err)
	}
	if pl.threads != 2 || pl.runOps != 8 || pl.target != 10 || pl.duration != time.Second ||
		pl.props.GetInt("threadcount", 0) != 2 || pl.props.GetInt("operationcount", 0) != 8 {
		t.Fatalf("plan %+v", pl)
	}
	cfg.Properties = map[string]string{"insertstart": "10", "insertcount": "20"}
	if pl, err = cfg.resolve(); err != nil || pl.loadOps != 20 {
		t.Fatalf("insertcount: %+v %v", pl, err)
	}
}

func TestResolveRejects(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		props map[string]string
	}{
		{"missing file", []string{"/nonexistent/workload"}, nil},
		{"unknown distribution", []string{"a"}, map[string]string{"requestdistribution": "gaussian"}},
		{"unknown insert order", []string{"a"}, map[string]string{"insertorder": "random"}},
		{"integrity needs constant", []string{"a"}, map[string]string{"dataintegrity": "true", "fieldlengthdistribution": "uniform"}},
		{"other workload", []string{"a"}, map[string]string{"workload": "site.ycsb.workloads.TimeSeriesWorkload"}},
		{"batch", []string{"a"}, map[string]string{"batch.size": "10"}},
		{"no records", []string{"a"}, map[string]string{"recordcount": "0"}},
		{"bad count", []string{"a"}, map[string]string{"operationcount": "many"}},
		{"inserts beyond records", []string{"a"}, map[string]string{"insertstart": "900", "insertcount": "200"}},
		{"no run limit", []string{"a"}, map[string]string{"operationcount": "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.PropertyFiles, cfg.Properties = tt.files, tt.props
			if _, err := cfg.resolve(); err == nil {
				t.Fatal("resolve succeeded")
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Endpoints = []string{"127.0.0.1:1"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := map[string]func(*Config){
		"unknown db":            func(c *Config) { c.DB = "mongo" },
		"no endpoints":          func(c *Config) { c.Endpoints = nil },
		"local without hook":    func(c *Config) { c.Local = 3 },
		"local for etcd":        func(c *Config) { c.DB = DBEtcd; c.Local = 3 },
		"no phases":             func(c *Config) { c.Phases = nil },
		"bad phase":             func(c *Config) { c.Phases = []Phase{"warmup"} },
		"negative threads":      func(c *Config) { c.Threads = -1 },
		"negative ops":          func(c *Config) { c.Ops = -1 },
		"negative duration":     func(c *Config) { c.Duration = -time.Second },
		"negative target":       func(c *Config) { c.Target = -1 },
		"bad r":                 func(c *Config) { c.R = "two" },
		"zero w":                func(c *Config) { c.W = "0" },
		"negative timeout":      func(c *Config) { c.ServerTimeout = -1 },
		"zero request timeout":  func(c *Config) { c.RequestTimeout = 0 },
		"zero scan parallelism": func(c *Config) { c.ScanParallelism = 0 },
		"nil clock":             func(c *Config) { c.Clock = nil },
		"zero interval":         func(c *Config) { c.ProgressInterval = 0 },
	}
	for name, mod := range tests {
		c := ok
		mod(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Validate() = %v", name, err)
		}
	}
	etcd := DefaultConfig()
	etcd.DB = DBEtcd
	if err := etcd.Validate(); err != nil {
		t.Fatalf("etcd with default endpoints: %v", err)
	}
}

// Run starts the local cluster through the hook, drives its nodes and stops
// it. The fake node only stands in for the cluster's addresses here.
func TestRunLocalHook(t *testing.T) {
	node := newFakeNode(t)
	var gotNodes int
	var gotDir string
	stopped := 0
	cfg := DefaultConfig()
	cfg.Local = 3
	cfg.PropertyFiles = []string{"c"}
	cfg.Properties = map[string]string{"recordcount": "20", "operationcount": "30"}
	cfg.Threads = 2
	cfg.R = "all"
	cfg.StartLocal = func(_ context.Context, nodes int, dir string) ([]string, func() error, error) {
		gotNodes, gotDir = nodes, dir
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			t.Errorf("data dir %q: %v", dir, err)
		}
		return []string{node.addr()}, func() error { stopped++; return nil }, nil
	}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if gotNodes != 3 || stopped != 1 {
		t.Fatalf("hook got %d nodes, stopped %d times", gotNodes, stopped)
	}
	if _, err := os.Stat(gotDir); !os.IsNotExist(err) {
		t.Fatalf("temporary data dir left behind: %v", err)
	}
	if len(res) != 2 || res[0].Total.Count != 20 || res[1].Total.Count != 30 || res[1].Total.Errors != 0 {
		t.Fatalf("results %+v", res)
	}
	if res[1].Siblings == nil || res[1].Siblings.Gets != 30 || res[1].Consistency.R != "all" {
		t.Fatalf("run result siblings %+v consistency %+v", res[1].Siblings, res[1].Consistency)
	}
	for _, r := range node.log() {
		if got, want := r.query.Get("r"), map[bool]string{true: "all"}[r.method == "GET"]; got != want {
			t.Fatalf("%s with r=%q on the wire", r.method, got)
		}
	}

	cfg.StartLocal = func(context.Context, int, string) ([]string, func() error, error) {
		return nil, nil, errors.New("no binary")
	}
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "no binary") {
		t.Fatalf("failing hook: %v", err)
	}
}

func TestRunInterrupted(t *testing.T) {
	node := newFakeNode(t)
	cfg := DefaultConfig()
	cfg.Endpoints = []string{node.addr()}
	cfg.PropertyFiles = []string{"c"}
	cfg.Properties = map[string]string{"recordcount": "10", "operationcount": "0"}
	cfg.Phases = []Phase{PhaseLoad, PhaseRun}
	cfg.Duration = time.Hour
	cfg.Threads = 2
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	res, err := Run(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if len(res) != 2 || !res[1].Interrupted || res[1].Total.Count == 0 || res[0].Interrupted {
		t.Fatalf("results %d, interrupted %v", len(res), res[len(res)-1].Interrupted)
	}
}
