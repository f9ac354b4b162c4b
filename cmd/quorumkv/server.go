package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/quorumkv/quorumkv/node"
)

// nodeFlags binds the node flags shared by server and dev.
type nodeFlags struct {
	cfg      node.Config
	join     string
	logLevel string
	logJSON  bool
	insecure bool
	config   string
}

func (f *nodeFlags) register(cmd *cobra.Command, withAddrs bool) {
	f.cfg = node.DefaultConfig()
	fl := cmd.Flags()
	if withAddrs {
		fl.StringVar(&f.cfg.ID, "id", "", "node ID, unique in the cluster and stable across restarts (required)")
		fl.StringVar(&f.cfg.DataDir, "data", "", "data directory (required)")
		fl.StringVar(&f.cfg.HTTPAddr, "http", f.cfg.HTTPAddr, "client HTTP API address")
		fl.StringVar(&f.cfg.RPCAddr, "rpc", f.cfg.RPCAddr, "internode RPC address")
		fl.StringVar(&f.cfg.GossipAddr, "gossip", f.cfg.GossipAddr, "gossip (memberlist) address")
		fl.StringVar(&f.join, "join", "", "gossip addresses of cluster members to join, HOST:PORT[,...]")
		fl.BoolVar(&f.cfg.Stage, "stage", false, "join gossip but take no share of the ring until quorumkv cluster commit (or a replace names this node)")
		fl.StringVar(&f.cfg.TLSCertFile, "tls-cert", "", "PEM certificate naming this node (CommonName = --id): internode RPC runs over mutual TLS and the HTTP API over HTTPS (with --tls-key and --tls-ca)")
		fl.StringVar(&f.cfg.TLSKeyFile, "tls-key", "", "PEM private key of --tls-cert")
		fl.StringVar(&f.cfg.TLSCAFile, "tls-ca", "", "PEM certificate of the CA that signs every node's certificate")
	}
	fl.Int64Var(&f.cfg.TransferRate, "transfer-rate", f.cfg.TransferRate, "bytes per second this node streams when it gains partitions in a membership change (0: no limit)")
	fl.DurationVar(&f.cfg.TransferSettle, "transfer-settle", f.cfg.TransferSettle, "how long a node gaining partitions waits for writes that started before the change was known (at least the longest request timeout)")
	fl.StringVar(&f.cfg.Cluster, "cluster", f.cfg.Cluster, "cluster name; nodes of other clusters are rejected")
	fl.StringVar(&f.cfg.GossipKeyFile, "gossip-key-file", "", "file of gossip encryption keys, one base64 key (16, 24 or 32 bytes) per line, the primary first, mode 0600 (quorumkv gossip-key generate); a keyring persisted after a rotation wins")
	fl.BoolVar(&f.cfg.Sync, "sync", true, "fsync every write before acknowledging it (false trades durability for speed)")
	fl.DurationVar(&f.cfg.WALMinSyncInterval, "wal-min-sync-interval", f.cfg.WALMinSyncInterval, "under load, the least time between WAL syncs, so commits share fsyncs (0: sync at once)")
	fl.Int64Var(&f.cfg.RowCacheSize, "row-cache", f.cfg.RowCacheSize, "bytes of hot records kept in memory to skip Pebble lookups (0: off)")
	fl.IntVar(&f.cfg.Partitions, "partitions", f.cfg.Partitions, "ring partitions (a power of two, the same on every node)")
	fl.DurationVar(&f.cfg.RequestTimeout, "timeout", f.cfg.RequestTimeout, "default request timeout")
	fl.Var(&f.cfg.ReadFanout, "read-fanout", "replicas a read asks: all (read repair reaches every replica) or quorum (R of them, the others on failure or after --read-speculate)")
	fl.DurationVar(&f.cfg.SpeculateAfter, "read-speculate", f.cfg.SpeculateAfter, "how long a --read-fanout=quorum read waits before it also asks the replicas it skipped (0: only on failure)")
	fl.DurationVar(&f.cfg.TombstoneGrace, "tombstone-grace", f.cfg.TombstoneGrace, "how long a tombstone on every replica is kept before reaping")
	fl.Int64Var(&f.cfg.HintBudget, "hint-budget", f.cfg.HintBudget, "bytes of hints kept per unreachable node")
	fl.Int64Var(&f.cfg.HintBudgetTotal, "hint-budget-total", f.cfg.HintBudgetTotal, "bytes of hints kept for all unreachable nodes together")
	fl.DurationVar(&f.cfg.AntiEntropy.Interval, "anti-entropy-interval", f.cfg.AntiEntropy.Interval, "time between background Merkle exchanges (one partition each)")
	fl.Int64Var(&f.cfg.AntiEntropy.BytesPerSecond, "anti-entropy-rate", f.cfg.AntiEntropy.BytesPerSecond, "bytes per second anti-entropy may move (0: no limit)")
	fl.Float64Var(&f.cfg.Detector.Threshold, "phi-threshold", f.cfg.Detector.Threshold, "phi accrual suspicion threshold")
	fl.IntVar(&f.cfg.Limits.MaxSiblings, "max-siblings", f.cfg.Limits.MaxSiblings, "siblings per key before writes get 409")
	fl.Int64Var(&f.cfg.Limits.MaxValueSize, "max-value-size", f.cfg.Limits.MaxValueSize, "largest value in bytes")
	fl.IntVar(&f.cfg.Limits.MaxKeyBytes, "max-key-bytes", f.cfg.Limits.MaxKeyBytes, "bytes of a key's siblings together before writes get 409")
	fl.IntVar(&f.cfg.Limits.MaxHTTPConns, "max-http-conns", f.cfg.Limits.MaxHTTPConns, "client connections open at once before new ones get 503 (keep under ulimit -n)")
	fl.StringVar(&f.cfg.TokenFile, "token-file", "", "file of bearer tokens the HTTP API requires, one per line: ROLE TOKEN [NAME], ROLE read, write or admin, tokens of 16+ characters, # comments (reloaded on SIGHUP)")
	fl.BoolVar(&f.cfg.Pprof, "pprof", false, "serve Go's profiler under /debug/pprof/ on the HTTP address, with mutex and block profiles sampled")
	fl.BoolVar(&f.insecure, "insecure", false, "run without cluster secrets: plaintext gossip and RPC, no client tokens (only on a network nobody else reaches)")
	fl.StringVar(&f.config, "config", "", "YAML file of flag values (token-file: /etc/qkv/tokens); the command line, then QUORUMKV_<FLAG> variables, take precedence")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fl.BoolVar(&f.logJSON, "log-json", false, "log JSON lines instead of console text")
}

func (f *nodeFlags) logger() (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(f.logLevel)
	if err != nil {
		return zerolog.Logger{}, fmt.Errorf("--log-level: %w", err)
	}
	// Colours only on a terminal: in a file or a log collector the escape
	// codes are noise.
	var w = zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly, NoColor: !isTerminal(os.Stderr)}
	if f.logJSON {
		return zerolog.New(os.Stderr).Level(lvl).With().Timestamp().Logger(), nil
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// errNoSecrets is why a server without cluster secrets does not start.
var errNoSecrets = errors.New("refusing to start without cluster secrets")

// checkSecrets refuses a node that lacks any of the cluster's secrets
// (gossip key, TLS certificate, key and CA, token file) unless --insecure
// says that is meant. An insecure node may still use the secrets it has.
func (f *nodeFlags) checkSecrets(log zerolog.Logger) error {
	var missing []string
	if f.cfg.GossipKeyFile == "" {
		missing = append(missing, "--gossip-key-file")
	}
	if f.cfg.TLSCertFile == "" || f.cfg.TLSKeyFile == "" || f.cfg.TLSCAFile == "" {
		missing = append(missing, "--tls-cert, --tls-key, --tls-ca")
	}
	if f.cfg.TokenFile == "" {
		missing = append(missing, "--token-file")
	}
	switch {
	case len(missing) == 0:
		return nil
	case f.insecure:
		log.Warn().Strs("without", missing).Msg("running with --insecure: whoever reaches this node's ports gets what these would have kept out")
		return nil
	}
	return fmt.Errorf("%w: missing %s. Without them anyone who reaches this node's ports can read and write data, "+
		"join the cluster and take replicas. Create them with `quorumkv certs --dir DIR --nodes ID,...` (or use your own CA, see the README), "+
		"or pass --insecure on a network nobody else can reach", errNoSecrets, strings.Join(missing, "; "))
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// With --pprof, one in pprofMutexFraction mutex contention events is
// sampled, and about one blocking event per pprofBlockRate nanoseconds
// spent blocked: cheap enough to leave on while profiling a loaded node.
const (
	pprofMutexFraction = 20
	pprofBlockRate     = 100_000
)

func newServerCmd() *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a quorumkv node",
		Example: `  quorumkv server --id n1 --data /var/lib/quorumkv/n1 --http 127.0.0.1:8081 --rpc 127.0.0.1:7071 --gossip 127.0.0.1:7947
  quorumkv server --id n2 --data /var/lib/quorumkv/n2 --http 127.0.0.1:8082 --rpc 127.0.0.1:7072 --gossip 127.0.0.1:7948 --join 127.0.0.1:7947`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(cmd, f.config); err != nil {
				return err
			}
			log, err := f.logger()
			if err != nil {
				return err
			}
			if err := f.checkSecrets(log); err != nil {
				return err
			}
			f.cfg.Join = splitList(f.join)
			if f.cfg.Pprof {
				// The process's own settings, so set here, not in the
				// node: /debug/pprof/mutex and /block then have samples.
				runtime.SetMutexProfileFraction(pprofMutexFraction)
				runtime.SetBlockProfileRate(pprofBlockRate)
			}
			n, err := node.Open(f.cfg, log)
			if err != nil {
				return err
			}
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
			defer signal.Stop(sig)
			for {
				select {
				case s := <-sig:
					if s == syscall.SIGHUP {
						reloadTokens(n, log)
						continue
					}
					log.Info().Str("signal", s.String()).Msg("shutting down")
				case <-n.Left():
					log.Info().Msg("this node left the cluster (leave or remove completed); exiting")
				}
				return n.Close()
			}
		},
	}
	f.register(cmd, true)
	return cmd
}

// reloadTokens rereads the node's token file on SIGHUP; a bad file is
// logged and the tokens in use stay.
func reloadTokens(n *node.Node, log zerolog.Logger) {
	switch err := n.ReloadTokens(); {
	case errors.Is(err, node.ErrNoTokenFile):
		log.Info().Msg("SIGHUP: no --token-file to reload")
	case err != nil:
		log.Error().Err(err).Msg("SIGHUP: token file not reloaded; the tokens in use stay")
	}
}
