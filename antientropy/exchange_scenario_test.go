package antientropy

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/version"
)

// TestExchangeScenarios runs the scripts in testdata/exchange. Commands:
//
//	init nodes=(a,b) [partitions=4 leaves=64 fanout=4]
//	put node=a key=k1 value=x [blind] [replicate=(b,...)]
//	delete node=b key=k1 [blind] [replicate=(...)]
//	put-many node=a prefix=k n=100 [value=v] [replicate=(b)]
//	forget node=b partition=1 [leaves=(0,15)]   drop rows, no tombstones
//	exchange a b                                 a exchanges every partition with b
//	dump a                                       a's keys, siblings and contexts
//	roots a b                                    which partitions' roots differ
//	stats a                                      a's counters
//
// Rewrite the expected output with: go test -run TestExchangeScenarios -rewrite
func TestExchangeScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/exchange", func(t *testing.T, path string) {
		var c *testCluster
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if d.Cmd != "init" && c == nil {
				d.Fatalf(t, "init first")
			}
			switch d.Cmd {
			case "init":
				cfg := testConfig()
				var nodes []string
				d.ScanArgs(t, "nodes", &nodes)
				d.MaybeScanArgs(t, "partitions", &cfg.Partitions)
				d.MaybeScanArgs(t, "leaves", &cfg.LeavesPerPartition)
				d.MaybeScanArgs(t, "fanout", &cfg.Fanout)
				cfg.N = len(nodes)
				c = newTestCluster(t, cfg, nodes...)
				return ""

			case "put", "delete":
				var node, key, value string
				d.ScanArgs(t, "node", &node)
				d.ScanArgs(t, "key", &key)
				d.MaybeScanArgs(t, "value", &value)
				c.write(node, key, value, d.Cmd == "delete", !d.HasArg("blind"))
				c.replicate(t, d, node, key)
				return ""

			case "put-many":
				var node, prefix, value string
				var n int
				d.ScanArgs(t, "node", &node)
				d.ScanArgs(t, "prefix", &prefix)
				d.ScanArgs(t, "n", &n)
				value = "v"
				d.MaybeScanArgs(t, "value", &value)
				for i := range n {
					key := fmt.Sprintf("%s%04d", prefix, i)
					c.write(node, key, value, false, true)
					c.replicate(t, d, node, key)
				}
				return ""

			case "forget":
				var node string
				var p int
				d.ScanArgs(t, "node", &node)
				d.ScanArgs(t, "partition", &p)
				first, last := 0, c.cfg.LeavesPerPartition-1
				if d.HasArg("leaves") {
					d.ScanArgs(t, "leaves", &first, &last)
				}
				shape, _ := c.cfg.shape()
				lo, hi := shape.LeafSpan(p, first, last)
				return fmt.Sprintf("forgot %d keys", c.node(node).st.forget(lo, hi))

			case "exchange":
				if len(d.CmdArgs) != 2 {
					d.Fatalf(t, "exchange a b")
				}
				r := c.exchange(d.CmdArgs[0].Key, d.CmdArgs[1].Key)
				return fmt.Sprintf("leaves-differing=%d keys-differing=%d pushed=%d pulled=%d\nbytes: hashes=%d leafkeys=%d records=%d calls=%d",
					r.LeavesDiffering, r.KeysDiffering, r.KeysPushed, r.KeysPulled,
					r.Traffic.Hashes, r.Traffic.LeafKeys, r.Traffic.Records, r.Traffic.Calls)

			case "dump":
				return c.dump(t, d.CmdArgs[0].Key)

			case "roots":
				a, b := d.CmdArgs[0].Key, d.CmdArgs[1].Key
				var out []string
				for p := range c.cfg.Partitions {
					ta, tb := c.node(a).svc.forest.Snapshot(p), c.node(b).svc.forest.Snapshot(p)
					if ta.Root() != tb.Root() {
						out = append(out, fmt.Sprintf("partition %d differs in leaves %v", p, ta.DiffLeaves(tb)))
					}
				}
				if len(out) == 0 {
					return "equal"
				}
				return strings.Join(out, "\n")

			case "stats":
				m := c.node(d.CmdArgs[0].Key).svc.Metrics()
				return fmt.Sprintf("exchanges=%d partitions-compared=%d partitions-equal=%d leaves-differing=%d leaves-settled=%d\nkeys-differing=%d pushed=%d pulled=%d rebuilds=%d leaf-rebuilds=%d inconsistencies=%d",
					m.Exchanges, m.PartitionsCompared, m.PartitionsEqual, m.LeavesDiffering, m.LeavesSettled,
					m.KeysDiffering, m.KeysPushed, m.KeysPulled, m.TreeRebuilds, m.LeafRebuilds, m.Inconsistencies)
			}
			d.Fatalf(t, "unknown command %q", d.Cmd)
			return ""
		})
	})
}

// replicate merges node's current set of key into the stores of the nodes
// named by the replicate argument, as replication would.
func (c *testCluster) replicate(t *testing.T, d *datadriven.TestData, node, key string) {
	if !d.HasArg("replicate") {
		return
	}
	var to []string
	d.ScanArgs(t, "replicate", &to)
	set := c.node(node).st.get(testKey(key))
	for _, id := range to {
		if _, _, err := c.node(id).st.Merge(testKey(key), set); err != nil {
			t.Fatal(err)
		}
	}
}

// dump lists a node's records in key order (at most 20, then a count).
func (c *testCluster) dump(t *testing.T, node string) string {
	st := c.node(node).st
	type row struct{ key, desc string }
	var rows []row
	err := st.Scan(0, ^uint64(0), func(_ uint64, k, setBytes []byte) error {
		_, key, err := store.DecodeKey(k)
		if err != nil {
			return err
		}
		set, err := store.DecodeSet(setBytes)
		if err != nil {
			return err
		}
		rows = append(rows, row{string(key), describeSet(set)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		return "(empty)"
	}
	slices.SortFunc(rows, func(a, b row) int { return strings.Compare(a.key, b.key) })
	var sb strings.Builder
	for i, r := range rows {
		if i == 20 {
			fmt.Fprintf(&sb, "... %d keys in all\n", len(rows))
			break
		}
		fmt.Fprintf(&sb, "%s: %s\n", r.key, r.desc)
	}
	return strings.TrimSuffix(sb.String(), "\n")
}

// describeSet renders a set as "(a,1)=x (b,1)=deleted ctx=a:1,b:1".
func describeSet(s version.Set) string {
	var parts []string
	for _, sib := range s.Siblings {
		v := fmt.Sprintf("%q", sib.Value)
		if sib.Deleted {
			v = "deleted"
		}
		parts = append(parts, fmt.Sprintf("(%s,%d)=%s", sib.Dot.Node, sib.Dot.Counter, v))
	}
	var vv []string
	for n, c := range s.Context.VV {
		vv = append(vv, fmt.Sprintf("%s:%d", n, c))
	}
	slices.Sort(vv)
	for _, d := range s.Context.Cloud {
		vv = append(vv, fmt.Sprintf("%s#%d", d.Node, d.Counter))
	}
	return strings.Join(parts, " ") + " ctx=" + strings.Join(vv, ",")
}
