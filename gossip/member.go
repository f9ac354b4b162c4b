package gossip

// Status is the liveness of a member as memberlist last reported it. It is
// local knowledge, not gossiped, and unrelated to ring membership.
type Status int

// Member statuses.
const (
	// StatusUnknown: not seen alive since this node started (for example a
	// member restored from Initial or learned from another node's table
	// while it is down).
	StatusUnknown Status = iota
	// StatusAlive: memberlist reports the node alive.
	StatusAlive
	// StatusSuspect: the node is suspected but not yet declared dead.
	// memberlist v0.7.0 does not publish suspicion to delegates (its event
	// Node.State is never filled in), so this value is reserved; use the
	// phi accrual Detector for fine-grained liveness.
	StatusSuspect
	// StatusDead: memberlist declared the node failed.
	StatusDead
	// StatusLeft: the node left gracefully. Close never leaves (leaving is
	// explicit), and memberlist's leave event is indistinguishable from a
	// failure, so nodes that stop are reported StatusDead.
	StatusLeft
)

// String returns "unknown", "alive", "suspect", "dead" or "left".
func (s Status) String() string {
	switch s {
	case StatusAlive:
		return "alive"
	case StatusSuspect:
		return "suspect"
	case StatusDead:
		return "dead"
	case StatusLeft:
		return "left"
	default:
		return "unknown"
	}
}

// MarshalText renders the status as its String, for JSON.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Member is a ring member and its current liveness.
type Member struct {
	Meta   Meta   `json:"meta"`
	Status Status `json:"status"`
}
