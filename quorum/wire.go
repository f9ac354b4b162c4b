package quorum

import (
	"github.com/quorumkv/quorumkv/version"
)

// Request is what a coordinator sends a replica, msgpack-encoded on the
// wire. The replica side is Replica.Handle.
type Request struct {
	Kind      Kind   `msgpack:"k"`
	Key       []byte `msgpack:"y"`
	Partition int    `msgpack:"p"`
	// HintFor: keep Set as a hint for this node instead of as data.
	HintFor string `msgpack:"h,omitempty"`
	// Set to merge (KindMerge, KindMarkReapable).
	Set version.Set `msgpack:"s"`
	// Write to apply (KindApply).
	Write *WriteRequest `msgpack:"w,omitempty"`
	// LWW: the bucket is last-write-wins. An apply then supersedes every
	// sibling the replica holds; merges never resolve (store.Store.Merge),
	// reads resolve what they return.
	LWW bool `msgpack:"l,omitempty"`
	// AckOnly: answer a merge without the resulting set (the write path
	// only counts acks). A replica that does not know the field sends
	// the set anyway, which is harmless.
	AckOnly bool `msgpack:"a,omitempty"`
}

// WriteRequest is a client write carried to the replica that issues its
// dot.
type WriteRequest struct {
	Context     version.Context `msgpack:"c"`
	Value       []byte          `msgpack:"v"`
	ContentType string          `msgpack:"t"`
	Deleted     bool            `msgpack:"d"`
}

// Response is a replica's answer.
type Response struct {
	Set version.Set `msgpack:"s"`
	Dot version.Dot `msgpack:"d"`
	// HintStored is false when a hint did not fit its owner's budget; the
	// partition was queued for priority anti-entropy instead.
	HintStored bool `msgpack:"h"`
}
