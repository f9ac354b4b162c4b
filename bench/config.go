package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/quorumkv/quorumkv/internal/clock"
)

// The systems a benchmark can drive (Config.DB).
const (
	// DBQuorumKV drives quorumkv nodes over their HTTP API.
	DBQuorumKV = "quorumkv"
	// DBEtcd drives etcd through go-ycsb's etcd binding.
	DBEtcd = "etcd"
	// DBRedis drives Redis through go-ycsb's Redis binding.
	DBRedis = "redis"
)

// Phase is a YCSB phase.
type Phase string

// The YCSB phases.
const (
	// PhaseLoad inserts the records (recordcount, or insertcount from
	// insertstart) with DoInsert.
	PhaseLoad Phase = "load"
	// PhaseRun runs the workload's transaction mix with DoTransaction.
	PhaseRun Phase = "run"
)

// StartLocalFunc starts a local cluster of nodes storing under dir and
// returns the HTTP addresses of its nodes and a function that stops it.
type StartLocalFunc func(ctx context.Context, nodes int, dir string) (httpAddrs []string, stop func() error, err error)

// Config parameterises a benchmark (Run). Counts left at zero fall back to the
// matching YCSB property, as noted per field.
type Config struct {
	// DB is the system under test: DBQuorumKV, DBEtcd or DBRedis. Default
	// DBQuorumKV.
	DB string
	// Endpoints are the quorumkv nodes' HTTP addresses (host:port or URLs;
	// worker threads are spread over them) or etcd's client endpoints.
	// Default none: quorumkv needs them unless Local is set; etcd then uses
	// 127.0.0.1:2379.
	Endpoints []string
	// RedisAddr is the Redis server's host:port. Default "127.0.0.1:6379".
	RedisAddr string
	// Token is the bearer token sent to quorumkv nodes (their
	// --token-file). It is never logged nor stored in results. Default "":
	// none.
	Token string
	// CAFile is a PEM file of the CA that verifies https:// quorumkv
	// endpoints. Default "": the system's roots.
	CAFile string
	// Phases run in order against the same system. Default load then run.
	Phases []Phase
	// PropertyFiles are YCSB property files (-P), loaded in order. A name
	// that is not an existing file but names a bundled workload ("workloada"
	// or just "a", through "f") loads the bundled file. Default
	// ["workloada"].
	PropertyFiles []string
	// Properties (-p) override the files' properties. Default none.
	Properties map[string]string
	// Threads is the number of worker threads, the most operations in
	// flight. Default 0: the threadcount property, or 16 when unset.
	Threads int
	// Ops is the number of operations of the run phase. Default 0: no
	// limit when Duration is set, else the operationcount property (where
	// zero means no limit, which needs a maxexecutiontime). The load phase
	// inserts the configured records, unless Duration stops it first
	// (Result.Incomplete).
	Ops int64
	// Duration caps each phase's wall time, the load phase's too, as
	// YCSB's maxexecutiontime does. Default 0: the maxexecutiontime
	// property (seconds), or no cap when unset.
	Duration time.Duration
	// Target is an open-loop rate in operations per second: operation i is
	// due at start+i/Target whether or not earlier ones finished, and its
	// latency runs from that intended start, so a stall shows up in the
	// latencies of every operation it delayed. Default 0: the target
	// property, or a closed loop (each thread starts its next operation when
	// the last one ends) when unset.
	Target float64
	// R, W and N are sent as the r (reads), w (writes) and n (both) query
	// parameters of quorumkv requests: an integer, "one", "quorum" or
	// "all". Default "" (not sent: the bucket's defaults apply).
	R, W, N string
	// ServerTimeout is sent as the timeout query parameter of every
	// request. Default 0 (not sent).
	ServerTimeout time.Duration
	// RequestTimeout bounds one client request, counted as a timeout error
	// when it expires. Default 10s.
	RequestTimeout time.Duration
	// ScanParallelism is how many GETs an emulated quorumkv scan keeps in
	// flight. quorumkv has no range reads: a scan of count records from key
	// "userN" reads keys userN..userN+count-1, so it needs ordered inserts
	// (insertorder=ordered, as in the bundled workloade). Default 8.
	ScanParallelism int
	// Local, when positive, starts a local cluster of that many nodes with
	// StartLocal for the benchmark and stops it afterwards. DBQuorumKV only.
	// Default 0.
	Local int
	// LocalDir is the local cluster's data directory. Default "": a new
	// temporary directory, removed afterwards.
	LocalDir string
	// StartLocal starts the local cluster when Local is set. Default nil.
	StartLocal StartLocalFunc
	// Label is free text stored in the results, such as a commit. Default "".
	Label string
	// Clock times everything. Default clock.Real().
	Clock clock.Clock
	// Progress receives a live progress line every ProgressInterval. Default
	// nil (no live progress).
	Progress io.Writer
	// ProgressInterval is the length of the per-interval series of a Result
	// and the live progress period. Default 1s.
	ProgressInterval time.Duration
	// Logger logs phase starts and ends. Default zerolog.Nop().
	Logger zerolog.Logger
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{
		DB:               DBQuorumKV,
		RedisAddr:        "127.0.0.1:6379",
		Phases:           []Phase{PhaseLoad, PhaseRun},
		PropertyFiles:    []string{"workloada"},
		RequestTimeout:   10 * time.Second,
		ScanParallelism:  8,
		Clock:            clock.Real(),
		ProgressInterval: time.Second,
		Logger:           zerolog.Nop(),
	}
}

// Validate reports the first invalid field, wrapping ErrInvalidConfig.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch c.DB {
	case DBQuorumKV:
		if c.Local == 0 && len(c.Endpoints) == 0 {
			return bad("quorumkv needs endpoints or a local cluster")
		}
	case DBEtcd, DBRedis:
		if c.Local > 0 {
			return bad("a local cluster is quorumkv only, not %s", c.DB)
		}
	default:
		return bad("unknown db %q", c.DB)
	}
	if len(c.Phases) == 0 {
		return bad("no phases")
	}
	for _, p := range c.Phases {
		if p != PhaseLoad && p != PhaseRun {
			return bad("unknown phase %q", p)
		}
	}
	if c.Threads < 0 {
		return bad("negative threads %d", c.Threads)
	}
	if c.Ops < 0 {
		return bad("negative ops %d", c.Ops)
	}
	if c.Duration < 0 {
		return bad("negative duration %v", c.Duration)
	}
	if c.Target < 0 || math.IsNaN(c.Target) || math.IsInf(c.Target, 0) {
		return bad("target %v is not a finite non-negative rate", c.Target)
	}
	for _, q := range []struct{ name, v string }{{"r", c.R}, {"w", c.W}, {"n", c.N}} {
		if err := validQuorum(q.v); err != nil {
			return bad("%s: %v", q.name, err)
		}
	}
	if c.ServerTimeout < 0 {
		return bad("negative server timeout %v", c.ServerTimeout)
	}
	if c.RequestTimeout <= 0 {
		return bad("request timeout %v is not positive", c.RequestTimeout)
	}
	if c.ScanParallelism < 1 {
		return bad("scan parallelism %d is below 1", c.ScanParallelism)
	}
	if c.Local < 0 {
		return bad("negative local nodes %d", c.Local)
	}
	if c.Local > 0 && c.StartLocal == nil {
		return bad("local cluster requested but no StartLocal")
	}
	if c.Clock == nil {
		return bad("nil clock")
	}
	if c.ProgressInterval <= 0 {
		return bad("progress interval %v is not positive", c.ProgressInterval)
	}
	return nil
}

// validQuorum accepts "" (unset), "one", "quorum", "all" and positive integers.
func validQuorum(v string) error {
	switch v {
	case "", "one", "quorum", "all":
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return fmt.Errorf("%q is not a positive integer, one, quorum or all", v)
	}
	return nil
}
