package gossip

import (
	"fmt"
	"slices"
	"strings"
)

// stateFormat is the first byte of an encoded State.
const stateFormat byte = 1

// State is what a node persists so that a restart remembers every ring
// member (including those that are down) and every bucket's properties.
// Restore it through Config.Initial.
type State struct {
	// Members holds every member ever seen, tombstones included, sorted by
	// ID.
	Members []Meta `msgpack:"members" json:"members"`
	// Buckets maps bucket names to their properties.
	Buckets map[string]BucketProps `msgpack:"buckets" json:"buckets"`
	// Layout is the committed layout held, if any. States persisted by
	// older versions have none.
	Layout *Layout `msgpack:"layout,omitempty" json:"layout,omitempty"`
}

// Validate checks every member and bucket, that IDs are unique, and the
// layout if there is one.
func (s State) Validate() error {
	seen := make(map[string]bool, len(s.Members))
	for _, m := range s.Members {
		if err := m.Validate(); err != nil {
			return fmt.Errorf("%w: member %q: %v", ErrBadState, m.ID, err)
		}
		if seen[m.ID] {
			return fmt.Errorf("%w: duplicate member %q", ErrBadState, m.ID)
		}
		seen[m.ID] = true
	}
	for name, p := range s.Buckets {
		if err := validBucketName(name); err != nil {
			return fmt.Errorf("%w: %v", ErrBadState, err)
		}
		if err := p.Validate(); err != nil {
			return fmt.Errorf("%w: bucket %q: %v", ErrBadState, name, err)
		}
	}
	if s.Layout != nil {
		if err := s.Layout.Validate(); err != nil {
			return fmt.Errorf("%w: %v", ErrBadState, err)
		}
	}
	return nil
}

// EncodeState renders s for persisting: a format byte and msgpack.
func EncodeState(s State) ([]byte, error) {
	return marshal(stateFormat, s)
}

// DecodeState parses and validates a persisted State.
func DecodeState(b []byte) (State, error) {
	var s State
	if err := unmarshal(b, stateFormat, &s); err != nil {
		return State{}, fmt.Errorf("%w: %v", ErrBadState, err)
	}
	if err := s.Validate(); err != nil {
		return State{}, err
	}
	return s, nil
}

// sortMetas orders metas by ID.
func sortMetas(ms []Meta) {
	slices.SortFunc(ms, func(a, b Meta) int { return strings.Compare(a.ID, b.ID) })
}
