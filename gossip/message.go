package gossip

import (
	"fmt"

	"github.com/hashicorp/memberlist"
)

// Message kinds; the first byte of every gossip message.
const (
	kindBucket byte = 0x11 // bucketMsg, broadcast
	kindMember byte = 0x12 // metaWire, broadcast (tombstones)
	kindState  byte = 0x13 // stateMsg, push-pull
	kindLayout byte = 0x14 // layoutMsg, reliable user message
)

// bucketMsg announces one bucket's properties.
type bucketMsg struct {
	Cluster string      `msgpack:"c"`
	Name    string      `msgpack:"n"`
	Props   BucketProps `msgpack:"p"`
}

// stateMsg is the push-pull state: the whole member table, all buckets and
// the layout held (absent from older versions' states, which also skip
// it).
type stateMsg struct {
	Cluster string                 `msgpack:"c"`
	Members []metaWire             `msgpack:"m"`
	Buckets map[string]BucketProps `msgpack:"b"`
	Layout  *Layout                `msgpack:"l,omitempty"`
}

// layoutMsg carries a layout to one node, over memberlist's reliable
// stream (Memberlist.SendReliable): a layout may be too big for a UDP
// broadcast.
type layoutMsg struct {
	Cluster string `msgpack:"c"`
	Layout  Layout `msgpack:"l"`
}

// message is a decoded gossip message; exactly one field is set.
type message struct {
	bucket *bucketMsg
	member *versioned
	state  *stateMsg
	layout *layoutMsg
}

func encodeMessage(kind byte, v any) ([]byte, error) { return marshal(kind, v) }

// decodeMessage parses any gossip message. It checks structure and field
// bounds of members and of a layout message's layout; bucket properties,
// and the members and layout of a state, are validated when merged.
func decodeMessage(b []byte) (message, error) {
	if len(b) == 0 {
		return message{}, fmt.Errorf("%w: empty", ErrBadMessage)
	}
	var m message
	var err error
	switch b[0] {
	case kindBucket:
		var bm bucketMsg
		if err = unmarshal(b, kindBucket, &bm); err == nil {
			m.bucket = &bm
		}
	case kindMember:
		var w metaWire
		if err = unmarshal(b, kindMember, &w); err == nil {
			var v versioned
			if v, err = w.versioned(); err == nil {
				m.member = &v
			}
		}
	case kindState:
		var sm stateMsg
		if err = unmarshal(b, kindState, &sm); err == nil {
			m.state = &sm
		}
	case kindLayout:
		var lm layoutMsg
		if err = unmarshal(b, kindLayout, &lm); err == nil {
			if err = lm.Layout.Validate(); err == nil {
				m.layout = &lm
			}
		}
	default:
		err = fmt.Errorf("unknown kind %#x", b[0])
	}
	if err != nil {
		return message{}, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	return m, nil
}

// broadcast is a queued gossip message. A newer broadcast about the same
// bucket or member replaces an older one still in the queue.
type broadcast struct {
	name string
	msg  []byte
}

var _ memberlist.NamedBroadcast = (*broadcast)(nil)

func (b *broadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(memberlist.NamedBroadcast)
	return ok && o.Name() == b.name
}
func (b *broadcast) Name() string    { return b.name }
func (b *broadcast) Message() []byte { return b.msg }
func (b *broadcast) Finished()       {}
