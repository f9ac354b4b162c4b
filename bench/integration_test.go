package bench

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pingcap/go-ycsb/pkg/util"

	"github.com/quorumkv/quorumkv/internal/testcluster"
	"github.com/quorumkv/quorumkv/node"
)

// The quorumkv driver against a real in-process cluster: short bounded runs
// of workloads A and C whose counts add up, without errors, and after which
// every loaded key reads back as a full record.
func TestIntegrationWorkloads(t *testing.T) {
	// A cluster that stays healthy on a busy machine (the race detector on
	// two cores): this test measures the driver, not failure detection.
	c := testcluster.StartWith(t, testcluster.Options{Nodes: 3, Configure: func(_ int, cfg *node.Config) {
		cfg.Detector.AcceptablePause = 3 * time.Second
		cfg.Detector.MinStdDev = 500 * time.Millisecond
		cfg.RequestTimeout = 10 * time.Second
	}})
	const records, ops, fields, fieldLen = 200, 600, 10, 100
	for _, w := range []string{"a", "c"} {
		t.Run("workload"+w, func(t *testing.T) {
			table := "usertable_" + w
			cfg := DefaultConfig()
			cfg.Endpoints = c.HTTPAddrs()
			cfg.PropertyFiles = []string{w}
			cfg.Properties = map[string]string{"recordcount": fmt.Sprint(records), "table": table}
			cfg.Ops = ops
			cfg.Threads = 6
			cfg.R, cfg.W = "quorum", "quorum"
			cfg.Duration = 20 * time.Second // a bound, not the limit that should end the run
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 2 {
				t.Fatalf("%d results, want load and run", len(res))
			}
			load, run := res[0], res[1]
			for _, r := range res {
				if r.Total.Errors != 0 {
					t.Fatalf("%s: %d errors %v, first %v", r.Phase, r.Total.Errors, r.Errors, r.FirstErrors)
				}
			}
			if ins, _ := load.Op(OpInsert); load.Total.Count != records || ins.Count != records {
				t.Fatalf("load: %d ops, %d inserts, want %d", load.Total.Count, ins.Count, records)
			}
			if run.Total.Count != ops {
				t.Fatalf("run: %d ops, want %d (ended by the duration bound?)", run.Total.Count, ops)
			}
			var sum int64
			for _, o := range run.Ops {
				sum += o.Count
			}
			read, _ := run.Op(OpRead)
			upd, _ := run.Op(OpUpdate)
			if sum != ops || read.Count+upd.Count != ops {
				t.Fatalf("per-op counts %+v sum to %d, want %d", run.Ops, sum, ops)
			}
			if w == "c" && upd.Count != 0 {
				t.Fatalf("workload C made %d updates", upd.Count)
			}
			if w == "a" && (read.Count < ops/4 || upd.Count < ops/4) {
				t.Fatalf("workload A mix: %d reads, %d updates", read.Count, upd.Count)
			}
			// Every read and every update reads once.
			if s := run.Siblings; s == nil || s.Gets < read.Count+upd.Count {
				t.Fatalf("siblings %+v for %d reads and %d updates", run.Siblings, read.Count, upd.Count)
			}
			var seriesOps int64
			for _, s := range run.Series {
				seriesOps += s.Ops
			}
			if seriesOps != ops || run.Total.Latency.P50 <= 0 || run.Total.Latency.Max < run.Total.Latency.P99 {
				t.Fatalf("series ops %d, latency %+v", seriesOps, run.Total.Latency)
			}

			// Reads of the loaded keys find them, as full records.
			d, err := NewQuorumKV(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			for i := range int64(records) {
				key := fmt.Sprintf("user%d", util.Hash64(i)) // the core workload's hashed key names
				rec, err := d.Read(context.Background(), table, key, nil)
				if err != nil {
					t.Fatalf("loaded key %d (%s): %v", i, key, err)
				}
				if len(rec) != fields {
					t.Fatalf("key %s: %d fields, want %d", key, len(rec), fields)
				}
				for name, v := range rec {
					if len(v) != fieldLen || bytes.Equal(v, make([]byte, fieldLen)) {
						t.Fatalf("key %s field %s: %d bytes %q", key, name, len(v), v)
					}
				}
			}
			t.Logf("workload %s: load %.0f ops/s p99 %dus; run %.0f ops/s, read p99 %dus, update p99 %dus, sibling rate %.4f",
				w, load.Total.OpsPerSec, load.Total.Latency.P99, run.Total.OpsPerSec, read.Latency.P99, upd.Latency.P99, run.Siblings.Rate)
		})
	}
}
