package gossip

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/quorumkv/quorumkv/internal/clock"
)

// DefaultCluster is the cluster name DefaultConfig uses.
const DefaultCluster = "quorumkv"

// Config configures a Gossip. Tunables default to
// memberlist.DefaultLANConfig values.
type Config struct {
	// Meta is this node's metadata. Meta.ID is the memberlist node name
	// and Meta.Cluster the cluster name. If Meta.Joined is 0 it is taken
	// from this node's entry in Initial, or else from Clock; a zero Seen or
	// Synced is taken from that entry too. Meta.Intent, Staged and Seed are
	// the node's initial intent (for instance IntentJoin, staged or not):
	// they are used only if the entry in Initial has no intent group (an
	// entry from an older version has none), and carry IntentVer 0
	// whatever Meta.IntentVer says, so that any intent an operator set,
	// and any group the cluster remembers for this ID, wins over them.
	Meta Meta
	// BindAddr is the gossip address, host:port; port 0 picks a free one
	// (Addr reports it). Ignored when Transport is set.
	BindAddr string
	// AdvertiseAddr is the host:port other nodes should use, if it differs
	// from BindAddr (NAT). Optional.
	AdvertiseAddr string
	// Transport replaces memberlist's UDP/TCP transport. Optional.
	Transport memberlist.Transport
	// Keys turn on encrypted, authenticated gossip (AES-GCM, memberlist's
	// keyring): each key is 16, 24 or 32 bytes (AES-128, -192, -256), the
	// first is the primary, which encrypts everything this node sends, and
	// every key is tried on what it receives. With keys set, unencrypted
	// or undecryptable messages are dropped, so a node without one of the
	// cluster's keys cannot join. No keys (the default): plain gossip,
	// which anyone who reaches the port can join. InstallKey, UseKey and
	// RemoveKey change the keys of a running Gossip.
	Keys [][]byte
	// Vet, if set, decides whether another node may enter the member
	// table: memberlist's alive messages and joins, and member entries
	// arriving in broadcasts and push-pulls, are admitted only when it
	// returns nil (the node checks that the peer holds a certificate
	// naming it). wait is true where the caller may block for a moment (a
	// push-pull, which carries joins) and false on the gossip packet path,
	// where Vet must answer at once, and may refuse now and admit later.
	// Tombstones and this node's own entry are not vetted. Optional: nil
	// admits every node of the cluster.
	Vet func(m Meta, wait bool) error
	// Initial is the state persisted by a previous run: members, buckets
	// and the layout.
	Initial State
	// OnChange is called after membership, metadata, intent, status,
	// bucket or layout changes; calls are coalesced, made from a goroutine the Gossip owns,
	// never under its locks, so it may call any Gossip method except Close
	// (Close waits for it). Optional.
	OnChange func()
	// Clock stamps bucket updates, meta versions and join times, and times
	// Join retries.
	Clock clock.Clock

	// GossipInterval is the period of piggyback-free gossip (200 ms).
	GossipInterval time.Duration
	// GossipNodes is how many random nodes each gossip round reaches (3).
	GossipNodes int
	// ProbeInterval is the period of failure-detection probes (1 s).
	ProbeInterval time.Duration
	// ProbeTimeout is how long a probe waits for an ack (500 ms).
	ProbeTimeout time.Duration
	// PushPullInterval is the period of full-state syncs, which carry the
	// member table and all buckets (30 s).
	PushPullInterval time.Duration
	// SuspicionMult scales how long a node stays suspect before it is
	// declared dead (4).
	SuspicionMult int
	// RetransmitMult scales how often a broadcast is retransmitted (4).
	RetransmitMult int
	// TCPTimeout bounds stream connects and I/O, including joins (10 s).
	TCPTimeout time.Duration
	// GossipToTheDeadTime is how long memberlist keeps gossiping to a dead
	// node, and keeps it in its own list (30 s). The ring member table
	// keeps dead nodes regardless.
	GossipToTheDeadTime time.Duration
	// DeadNodeReclaimTime is how long a node must have been dead before a
	// node with the same ID at another address may take its place, as after
	// a restart on a new address (1 s; memberlist's own default, 0, would
	// refuse it until the dead entry is reaped).
	DeadNodeReclaimTime time.Duration
	// JoinAttempts is how many times Join tries the seed list (3).
	JoinAttempts int
	// JoinBackoff is the pause between Join attempts (1 s).
	JoinBackoff time.Duration
	// UpdateTimeout bounds how long UpdateMeta waits for its broadcast to
	// go out (5 s); after it the change still spreads through push-pull.
	UpdateTimeout time.Duration

	// disableLabel turns off memberlist's packet label so tests can check
	// that the delegates alone keep clusters apart.
	disableLabel bool
}

// DefaultConfig returns a Config with memberlist's LAN defaults, cluster
// DefaultCluster, state StateUp, bind address 127.0.0.1:7946 and the real
// clock. Meta.ID must still be set.
func DefaultConfig() Config {
	lan := memberlist.DefaultLANConfig()
	return Config{
		Meta:                Meta{Cluster: DefaultCluster, State: StateUp},
		BindAddr:            "127.0.0.1:7946",
		Clock:               clock.Real(),
		GossipInterval:      lan.GossipInterval,
		GossipNodes:         lan.GossipNodes,
		ProbeInterval:       lan.ProbeInterval,
		ProbeTimeout:        lan.ProbeTimeout,
		PushPullInterval:    lan.PushPullInterval,
		SuspicionMult:       lan.SuspicionMult,
		RetransmitMult:      lan.RetransmitMult,
		TCPTimeout:          lan.TCPTimeout,
		GossipToTheDeadTime: lan.GossipToTheDeadTime,
		DeadNodeReclaimTime: time.Second,
		JoinAttempts:        3,
		JoinBackoff:         time.Second,
		UpdateTimeout:       5 * time.Second,
	}
}

// Fast returns a copy of c with intervals shortened for tests on loopback:
// failures are detected in about a second and push-pull runs every 250 ms.
func (c Config) Fast() Config {
	c.GossipInterval = 20 * time.Millisecond
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	c.PushPullInterval = 250 * time.Millisecond
	c.SuspicionMult = 3
	c.TCPTimeout = time.Second
	c.GossipToTheDeadTime = 2 * time.Second
	c.DeadNodeReclaimTime = 10 * time.Millisecond
	c.JoinBackoff = 50 * time.Millisecond
	c.UpdateTimeout = time.Second
	return c
}

// Validate checks the configuration.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	if err := c.Meta.Validate(); err != nil {
		return bad("meta: %v", err)
	}
	if c.Meta.Removed() {
		return bad("meta: state %q is reserved for tombstones", StateRemoved)
	}
	if c.Transport == nil {
		if _, _, err := splitHostPort(c.BindAddr); err != nil {
			return bad("bind address %q: %v", c.BindAddr, err)
		}
	}
	if c.AdvertiseAddr != "" {
		if _, _, err := splitHostPort(c.AdvertiseAddr); err != nil {
			return bad("advertise address %q: %v", c.AdvertiseAddr, err)
		}
	}
	for i, k := range c.Keys {
		if err := ValidateKey(k); err != nil {
			return bad("key %d: %v", i+1, err)
		}
	}
	if err := c.Initial.Validate(); err != nil {
		return bad("initial state: %v", err)
	}
	if c.Clock == nil {
		return bad("nil clock")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"gossip interval", c.GossipInterval},
		{"probe interval", c.ProbeInterval},
		{"probe timeout", c.ProbeTimeout},
		{"push-pull interval", c.PushPullInterval},
		{"tcp timeout", c.TCPTimeout},
		{"update timeout", c.UpdateTimeout},
	} {
		if d.v <= 0 {
			return bad("%s must be positive", d.name)
		}
	}
	if c.GossipToTheDeadTime < 0 || c.DeadNodeReclaimTime < 0 || c.JoinBackoff < 0 {
		return bad("negative duration")
	}
	if c.ProbeTimeout > c.ProbeInterval {
		return bad("probe timeout %v exceeds probe interval %v", c.ProbeTimeout, c.ProbeInterval)
	}
	if c.GossipNodes < 1 || c.SuspicionMult < 1 || c.RetransmitMult < 1 || c.JoinAttempts < 1 {
		return bad("gossip nodes, suspicion mult, retransmit mult and join attempts must be at least 1")
	}
	return nil
}

func splitHostPort(addr string) (string, int, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", ps)
	}
	return host, port, nil
}

// resolveHost returns host as an IP address: itself when it is one (or
// empty), else the first IPv4 address it resolves to, else the first
// address.
func resolveHost(host string) (string, error) {
	if host == "" || net.ParseIP(host) != nil {
		return host, nil
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return "", err
	}
	if len(ips) == 0 {
		return "", fmt.Errorf("%q resolves to no address", host)
	}
	for _, ip := range ips {
		if ip.To4() != nil {
			return ip.String(), nil
		}
	}
	return ips[0].String(), nil
}

// label is the memberlist packet label of a cluster.
func label(cluster string) string { return "quorumkv/" + cluster }

// memberlistConfig translates c; the delegates are filled in by New.
func (c Config) memberlistConfig() *memberlist.Config {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.Meta.ID
	mc.Transport = c.Transport
	if c.Transport == nil {
		host, port, _ := splitHostPort(c.BindAddr)
		mc.BindAddr, mc.BindPort = host, port
		mc.AdvertisePort = port
	}
	if c.AdvertiseAddr != "" {
		host, port, _ := splitHostPort(c.AdvertiseAddr)
		mc.AdvertiseAddr, mc.AdvertisePort = host, port
	}
	if !c.disableLabel {
		mc.Label = label(c.Meta.Cluster)
	}
	mc.Keyring = c.keyring()
	// memberlist's defaults, set here because they are what makes keys
	// authenticate: nothing unencrypted is sent or accepted.
	mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	mc.GossipInterval = c.GossipInterval
	mc.GossipNodes = c.GossipNodes
	mc.ProbeInterval = c.ProbeInterval
	mc.ProbeTimeout = c.ProbeTimeout
	mc.PushPullInterval = c.PushPullInterval
	mc.SuspicionMult = c.SuspicionMult
	mc.RetransmitMult = c.RetransmitMult
	mc.TCPTimeout = c.TCPTimeout
	mc.GossipToTheDeadTime = c.GossipToTheDeadTime
	mc.DeadNodeReclaimTime = c.DeadNodeReclaimTime
	return mc
}
