package node

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/memberlist"

	"github.com/quorumkv/quorumkv/antientropy"
	"github.com/quorumkv/quorumkv/gossip"
	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/transport"
)

// Config configures a node. Zero fields take the defaults of DefaultConfig.
type Config struct {
	// ID names the node; it is persisted in the data directory, and a
	// directory written by another ID is refused.
	ID string
	// DataDir holds the node's Pebble store.
	DataDir string
	// HTTPAddr is the client API address ("127.0.0.1:8080"; port 0 picks a
	// free one). Ignored when HTTPListener is set.
	HTTPAddr string
	// HTTPListener, if set, is where the HTTP API is served (a simulated
	// cluster passes an in-memory listener). The node closes it.
	HTTPListener net.Listener
	// RPCAddr is the internode RPC address (TCP). Ignored when Transport is
	// set.
	RPCAddr string
	// GossipAddr is the memberlist address. Ignored when GossipTransport is
	// set.
	GossipAddr string
	// TLSCertFile, TLSKeyFile and TLSCAFile (PEM; all three or none) make
	// internode RPC mutual TLS (transport.MutualTLS): the certificate's
	// CommonName must be ID, peers must hold a certificate from the CA
	// that names a current member, and the HTTP API serves HTTPS with the
	// same certificate (no client certificate asked). The RPC part is
	// ignored when Transport is set.
	TLSCertFile, TLSKeyFile, TLSCAFile string
	// Join lists gossip addresses of nodes already in the cluster.
	Join []string
	// Cluster names the cluster; gossip from another cluster is rejected.
	Cluster string
	// GossipKeyFile names a file of gossip encryption keys, one standard
	// base64 key of 16, 24 or 32 bytes per line, the first the primary
	// (gossipkeys.go); it must not be accessible to group or others. With
	// keys, gossip is encrypted and authenticated, and a node without the
	// cluster's key cannot join. A keyring the node persisted in DataDir
	// after a rotation wins over it, and is used even without a key file.
	// Empty, with nothing persisted (the default): no encryption.
	GossipKeyFile string
	// Sync makes every acknowledged write fsynced first (group commit). It
	// is on by default; false is an explicit opt-out.
	Sync bool
	// WALMinSyncInterval spaces WAL syncs under load so that more commits
	// share each fsync (see store.Config); zero syncs at once.
	WALMinSyncInterval time.Duration
	// RowCacheSize bounds the store's cache of hot records, in bytes (see
	// store.Config); 0 turns it off.
	RowCacheSize int64
	// Partitions is the ring's partition count (a power of two). Every
	// node of a cluster must use the same value.
	Partitions int

	// Limits bound what clients may send.
	Limits Limits
	// DefaultBucket are the properties of buckets nobody configured.
	DefaultBucket gossip.BucketProps
	// RequestTimeout bounds a request that gives no timeout parameter.
	RequestTimeout time.Duration
	// ReadFanout is how many replicas a read asks at first: R (quorum) or
	// every one (all). See quorum.Config.
	ReadFanout quorum.Fanout
	// SpeculateAfter is how long a quorum-fanout read waits before it
	// asks the replicas it skipped (15 ms); zero never speculates.
	SpeculateAfter time.Duration
	// HeartbeatInterval is how often the node pings every other member to
	// feed the phi accrual failure detector.
	HeartbeatInterval time.Duration
	// RejoinInterval is how often the node rejoins members that gossip
	// lost (declared dead long enough to forget) while the failure
	// detector trusts them again.
	RejoinInterval time.Duration
	// Detector configures the failure detector.
	Detector gossip.DetectorConfig
	// TombstoneGrace is how long a tombstone held by every replica is kept
	// before it is reaped.
	TombstoneGrace time.Duration
	// ReapMemory is how long a reaped key is remembered (see
	// store.Config): a late copy of what its tombstones deleted is dropped
	// meanwhile. It must be well past the longest a message may stay in
	// flight.
	ReapMemory time.Duration
	// HintBudget is the most bytes of hints kept for one owner.
	HintBudget int64
	// HintBudgetTotal is the most bytes of hints kept for all owners
	// together; past it a hint is refused (hint_refused) and the
	// coordinator turns to another fallback.
	HintBudgetTotal int64
	// Stage starts a new node that joins gossip but takes no share of the
	// ring until an operator commits it (quorumkv cluster commit); by
	// default a new node claims its share by itself.
	Stage bool
	// TransferRate caps the bytes per second this node pulls when it
	// streams partitions it gains in a membership change (0: no cap). A
	// batch asks for a quarter second's worth at most.
	TransferRate int64
	// TransferSettle is how long a node that gains partitions waits, after
	// every member has seen the change, before its final check with the
	// sources: writes that started before a coordinator knew of the change
	// went to the old replicas only, and must have landed by then. Keep it
	// at least the longest request timeout.
	TransferSettle time.Duration
	// BootstrapWait is how long a node started with --join waits to hear
	// the cluster's layout before the smallest-ID member it trusts creates
	// the first one (a cluster whose members all predate layouts).
	BootstrapWait time.Duration
	// MembershipInterval is how often the node looks at the membership
	// change in progress even when gossip is quiet.
	MembershipInterval time.Duration
	// AntiEntropy configures Merkle anti-entropy and tombstone reaping.
	// The node fills in NodeID, Partitions, TombstoneGrace, Replicates and
	// LWW.
	AntiEntropy antientropy.Config

	// FS is the filesystem under Pebble; nil is the OS.
	FS vfs.FS
	// Clock is the node's time source; nil is the wall clock.
	Clock clock.Clock
	// Transport replaces the TCP transport (tests use the in-memory
	// network). The node closes it.
	Transport transport.Transport
	// GossipTransport replaces memberlist's UDP/TCP transport.
	GossipTransport memberlist.Transport
	// FastGossip shortens memberlist's intervals, for tests and local
	// clusters.
	FastGossip bool
	// TokenFile, if set, names the file of bearer tokens the HTTP API
	// requires (see ParseTokens for its format); every request then needs
	// a token whose role covers the endpoint. Empty: the API is open.
	TokenFile string
	// Pprof serves Go's profiler under /debug/pprof/ on the HTTP address.
	// Off by default: profiles reveal internals and cost CPU.
	Pprof bool
	// ShutdownTimeout bounds a graceful HTTP shutdown.
	ShutdownTimeout time.Duration
}

// Limits bound client requests.
type Limits struct {
	// MaxKeyLen is the longest key, in bytes (1024).
	MaxKeyLen int
	// MaxBucketLen is the longest bucket name, in bytes (255).
	MaxBucketLen int
	// MaxValueSize is the largest value, in bytes (4 MiB); larger bodies get 413.
	MaxValueSize int64
	// MaxSiblings caps a key's siblings; past it a write gets 409 (100).
	MaxSiblings int
	// MaxKeyBytes caps the bytes of a key's siblings together; past it a
	// write gets 409 key_too_large. At least MaxValueSize.
	MaxKeyBytes int
	// MaxHTTPConns caps the client connections open at once; past it a
	// new connection gets 503 with Retry-After and is closed. Keep it
	// under the process's file descriptor limit (ulimit -n).
	MaxHTTPConns int
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout cut off
	// slow clients (10 s, 60 s, 60 s, 120 s).
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxHeaderBytes bounds request headers (64 KiB).
	MaxHeaderBytes int
}

// DefaultLimits returns the documented limits.
func DefaultLimits() Limits {
	return Limits{
		MaxKeyLen:         1024,
		MaxBucketLen:      255,
		MaxValueSize:      4 << 20,
		MaxSiblings:       100,
		MaxKeyBytes:       16 << 20, // 16 MiB: a quarter of the 64 MiB RPC frame
		MaxHTTPConns:      4096,     // under a raised descriptor limit; see README
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// DefaultConfig returns a node configuration with every default set.
func DefaultConfig() Config {
	return Config{
		HTTPAddr:           "127.0.0.1:8080",
		RPCAddr:            "127.0.0.1:7070",
		GossipAddr:         "127.0.0.1:7946",
		Cluster:            "quorumkv",
		Sync:               true,                 // fsync before acknowledging
		WALMinSyncInterval: 5 * time.Millisecond, // spaces WAL syncs only while several commits wait (BENCHMARKS.md)
		RowCacheSize:       16 << 20,             // 16 MiB of hot records (store.DefaultConfig)
		Partitions:         256,                  // Riak's default is 64; 256 balances 3-16 nodes within 10%
		Limits:             DefaultLimits(),
		DefaultBucket:      gossip.DefaultBucketProps(), // n=3, r=2, w=2, siblings
		RequestTimeout:     5 * time.Second,
		ReadFanout:         quorum.DefaultConfig().ReadFanout,     // every replica, as Riak: read repair reaches all N
		SpeculateAfter:     quorum.DefaultConfig().SpeculateAfter, // 15 ms
		HeartbeatInterval:  time.Second,                           // phi accrual heartbeats, as Cassandra's gossip rounds
		RejoinInterval:     10 * time.Second,                      // mend gossip after long partitions
		Detector:           gossip.DefaultDetectorConfig(),
		TombstoneGrace:     time.Hour,                        // Riak reaps after 3 s, Cassandra after 10 days; an hour covers a restart
		ReapMemory:         store.DefaultConfig().ReapMemory, // 6 h
		HintBudget:         64 << 20,                         // per owner; past it, priority anti-entropy takes over
		HintBudgetTotal:    256 << 20,                        // all owners together: four owners' budgets
		TransferRate:       32 << 20,                         // 32 MiB/s of partition streaming per gaining node
		TransferSettle:     5 * time.Second,                  // the default request timeout
		BootstrapWait:      10 * time.Second,                 // several gossip rounds
		MembershipInterval: time.Second,
		AntiEntropy:        antientropy.DefaultConfig(), // one partition exchange per 10 s, 8 MiB/s
		ShutdownTimeout:    10 * time.Second,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("node: config: --id is required"))
	} else if strings.Contains(c.ID, quorum.ActorSep) || strings.IndexFunc(c.ID, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		errs = append(errs, fmt.Errorf("node: config: --id %q may not contain %q, spaces or control characters", c.ID, quorum.ActorSep))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("node: config: --data is required"))
	}
	if set := countSet(c.TLSCertFile, c.TLSKeyFile, c.TLSCAFile); set != 0 && set != 3 {
		errs = append(errs, errors.New("node: config: --tls-cert, --tls-key and --tls-ca go together: give all three or none"))
	}
	if c.RowCacheSize < 0 {
		errs = append(errs, fmt.Errorf("node: config: row cache size %d is negative", c.RowCacheSize))
	}
	if c.Partitions < 1 || c.Partitions&(c.Partitions-1) != 0 {
		errs = append(errs, fmt.Errorf("node: config: partitions %d is not a power of two", c.Partitions))
	}
	if int64(c.Limits.MaxKeyBytes) < c.Limits.MaxValueSize {
		errs = append(errs, fmt.Errorf("node: config: the byte cap per key (%d) is below the value size limit (%d)", c.Limits.MaxKeyBytes, c.Limits.MaxValueSize))
	}
	if c.Limits.MaxKeyLen < 1 || c.Limits.MaxValueSize < 1 || c.Limits.MaxSiblings < 1 || c.Limits.MaxHTTPConns < 1 {
		errs = append(errs, errors.New("node: config: limits must be positive"))
	}
	if err := c.DefaultBucket.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("node: config: default bucket: %w", err))
	}
	if c.TombstoneGrace <= 0 || c.ReapMemory <= 0 {
		errs = append(errs, errors.New("node: config: tombstone grace and reap memory must be positive"))
	}
	if c.TransferRate < 0 || c.TransferSettle < 0 || c.BootstrapWait < 0 || c.MembershipInterval <= 0 {
		errs = append(errs, errors.New("node: config: transfer rate, settle time and bootstrap wait must not be negative, the membership interval positive"))
	}
	if c.RequestTimeout <= 0 || c.HeartbeatInterval <= 0 || c.RejoinInterval <= 0 {
		errs = append(errs, errors.New("node: config: timeouts must be positive"))
	}
	if c.SpeculateAfter < 0 {
		errs = append(errs, errors.New("node: config: speculative read delay is negative"))
	}
	if err := c.Detector.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// countSet counts the non-empty strings.
func countSet(ss ...string) int {
	n := 0
	for _, s := range ss {
		if s != "" {
			n++
		}
	}
	return n
}
