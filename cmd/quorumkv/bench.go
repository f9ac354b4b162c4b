package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/quorumkv/quorumkv/bench"
	"github.com/quorumkv/quorumkv/quorum"
)

// newBenchCmd returns the "bench" command: YCSB workloads against quorumkv,
// etcd or Redis, with live progress, a summary and optional JSON and HTML
// reports. The local cluster of --local comes from startLocalCluster.
func newBenchCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "bench",
		Short: "Load-test quorumkv (or etcd, Redis) with YCSB workloads",
		Long: `Run YCSB core workloads (bundled: workloada to workloadf) through go-ycsb's
workload generators against quorumkv, etcd or Redis.

  quorumkv bench --local 3 --workload a --ops 100000 --out results/
  quorumkv bench run --endpoints 127.0.0.1:8080 -P my.properties -p recordcount=1e5 -r quorum -w quorum
  quorumkv bench --db etcd --endpoints 127.0.0.1:2379 --workload b --duration 1m
  quorumkv bench --db redis --addr 127.0.0.1:6379 --workload c --target 20000
  quorumkv bench report --out combined/ a/results.json b/results.json

"bench" runs the load phase then the run phase; "bench load" and "bench run"
run one. Live progress goes to stderr once a second, the summary to stdout.`,
		Args: cobra.NoArgs,
	}
	benchPhaseCmd(root, []bench.Phase{bench.PhaseLoad, bench.PhaseRun})
	root.AddCommand(
		benchPhaseCmd(&cobra.Command{Use: "load", Short: "Insert the workload's records", Args: cobra.NoArgs},
			[]bench.Phase{bench.PhaseLoad}),
		benchPhaseCmd(&cobra.Command{Use: "run", Short: "Run the workload's operation mix", Args: cobra.NoArgs},
			[]bench.Phase{bench.PhaseRun}),
		benchReportCmd(),
	)
	return root
}

// benchOptions are the flags of a benchmark command.
type benchOptions struct {
	localSync                                            bool
	localFanout                                          quorum.Fanout
	db, addr, localDir, workload, label, out, cpuProfile string
	r, w, n                                              string
	endpoints, propFiles, props                          []string
	local, threads, scanPar                              int
	ops                                                  int64
	duration, timeout, requestTimeout                    time.Duration
	target                                               float64
	quiet, verbose                                       bool
	conn                                                 connFlags
}

func benchAddFlags(fs *pflag.FlagSet, o *benchOptions) {
	def := bench.DefaultConfig()
	fs.StringVar(&o.db, "db", def.DB, "system to drive: quorumkv, etcd or redis")
	fs.StringSliceVar(&o.endpoints, "endpoints", nil, "quorumkv HTTP addresses or etcd client endpoints (comma separated)")
	fs.StringVar(&o.addr, "addr", def.RedisAddr, "Redis address")
	o.conn.register(fs)
	fs.IntVar(&o.local, "local", 0, "start a local quorumkv cluster of this many nodes for the benchmark")
	fs.StringVar(&o.localDir, "local-dir", "", "data directory of the local cluster (default: a temporary directory)")
	fs.StringVar(&o.workload, "workload", "", "bundled workload: a to f (loaded before -P files; default a when no -P)")
	fs.StringArrayVarP(&o.propFiles, "property-file", "P", nil, "YCSB property file, or a bundled workload name (repeatable)")
	fs.StringArrayVarP(&o.props, "prop", "p", nil, "YCSB property key=value, overriding the files (repeatable)")
	fs.IntVar(&o.threads, "threads", 0, "worker threads (default: threadcount property, else 16)")
	fs.Int64Var(&o.ops, "ops", 0, "operations of the run phase (default: none with --duration, else the operationcount property)")
	fs.DurationVar(&o.duration, "duration", 0, "time limit per phase (default: maxexecutiontime property, else none)")
	fs.Float64Var(&o.target, "target", 0, "open-loop rate in ops/s; latency counts from each op's intended start (default: closed loop)")
	fs.StringVarP(&o.r, "read-quorum", "r", "", "r query parameter: integer, one, quorum or all")
	fs.StringVarP(&o.w, "write-quorum", "w", "", "w query parameter: integer, one, quorum or all")
	fs.StringVarP(&o.n, "replicas", "n", "", "n query parameter: integer, one, quorum or all")
	fs.DurationVar(&o.timeout, "timeout", 0, "timeout query parameter sent to quorumkv (default: not sent)")
	fs.DurationVar(&o.requestTimeout, "request-timeout", def.RequestTimeout, "client-side limit per request")
	fs.IntVar(&o.scanPar, "scan-parallelism", def.ScanParallelism, "point reads in flight per emulated quorumkv scan")
	fs.StringVar(&o.label, "label", "", "label stored in the results")
	fs.StringVar(&o.out, "out", "", "directory to write results.json and report.html into")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "no live progress")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "log phase starts and ends to stderr")
	fs.BoolVar(&o.localSync, "local-sync", true, "with --local: fsync every write before acknowledging it (false measures without durability)")
	fs.Var(&o.localFanout, "local-read-fanout", "with --local: replicas a read asks, all or quorum (as the server's --read-fanout)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (with --local: client and nodes) to this file")
}

// benchPhaseCmd gives cmd the benchmark flags and makes it run phases.
func benchPhaseCmd(cmd *cobra.Command, phases []bench.Phase) *cobra.Command {
	o := &benchOptions{}
	benchAddFlags(cmd.Flags(), o)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := benchConfig(o, phases, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if o.cpuProfile != "" {
			f, err := os.Create(o.cpuProfile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		results, runErr := bench.Run(ctx, cfg)
		for _, r := range results {
			if err := bench.WriteSummary(cmd.OutOrStdout(), r); err != nil {
				return err
			}
		}
		if o.out != "" && len(results) > 0 {
			if err := bench.WriteReport(o.out, results); err != nil {
				return errors.Join(runErr, err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s/%s and %s/%s\n", o.out, bench.ResultsFile, o.out, bench.ReportFile)
		}
		return runErr
	}
	return cmd
}

// benchConfig turns flags into a bench.Config.
func benchConfig(o *benchOptions, phases []bench.Phase, stderr io.Writer) (bench.Config, error) {
	cfg := bench.DefaultConfig()
	cfg.DB = o.db
	cfg.Endpoints = o.endpoints
	cfg.RedisAddr = o.addr
	cfg.Token, cfg.CAFile = o.conn.bearer(), o.conn.caFile
	cfg.Phases = phases
	cfg.PropertyFiles = nil
	if o.workload != "" {
		cfg.PropertyFiles = append(cfg.PropertyFiles, o.workload)
	}
	cfg.PropertyFiles = append(cfg.PropertyFiles, o.propFiles...)
	if len(cfg.PropertyFiles) == 0 {
		cfg.PropertyFiles = bench.DefaultConfig().PropertyFiles
	}
	if len(o.props) > 0 {
		cfg.Properties = make(map[string]string, len(o.props))
		for _, kv := range o.props {
			k, v, err := bench.ParseProperty(kv)
			if err != nil {
				return cfg, err
			}
			cfg.Properties[k] = v
		}
	}
	cfg.Threads = o.threads
	cfg.Ops = o.ops
	cfg.Duration = o.duration
	cfg.Target = o.target
	cfg.R, cfg.W, cfg.N = o.r, o.w, o.n
	cfg.ServerTimeout = o.timeout
	cfg.RequestTimeout = o.requestTimeout
	cfg.ScanParallelism = o.scanPar
	cfg.Local = o.local
	cfg.LocalDir = o.localDir
	cfg.Label = o.label
	if o.local > 0 {
		cfg.StartLocal = func(ctx context.Context, nodes int, dir string) ([]string, func() error, error) {
			return startLocalCluster(ctx, nodes, dir, o.localSync, o.localFanout)
		}
	}
	if !o.quiet {
		cfg.Progress = stderr
	}
	if o.verbose {
		cfg.Logger = zerolog.New(zerolog.ConsoleWriter{Out: stderr, TimeFormat: time.TimeOnly}).With().Timestamp().Logger()
	}
	return cfg, cfg.Validate()
}

// benchReportCmd combines results files into one report.
func benchReportCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "report --out DIR RESULTS.json...",
		Short: "Combine results files into one JSON and HTML report, systems side by side",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("bench report: --out is required")
			}
			var all []*bench.Result
			for _, path := range args {
				rs, err := bench.ReadResultsFile(path)
				if err != nil {
					return err
				}
				all = append(all, rs...)
			}
			for _, r := range all {
				if err := bench.WriteSummary(cmd.OutOrStdout(), r); err != nil {
					return err
				}
			}
			if err := bench.WriteReport(out, all); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s/%s and %s/%s\n", out, bench.ResultsFile, out, bench.ReportFile)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write results.json and report.html into")
	return cmd
}
