package handoff

import (
	"fmt"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"
)

// progressFormat is the first byte of a persisted progress record.
const progressFormat byte = 1

// progressMetaPrefix names the store meta rows that hold one partition's
// transfer progress each: handoff.transfer.<partition>. An empty value is
// no progress (a partition that was dropped).
const progressMetaPrefix = "handoff.transfer."

func progressMeta(p int) string { return progressMetaPrefix + strconv.Itoa(p) }

// progress is what survives a restart of one partition's transfer. Its
// size is bounded by one cursor key (maxCursorKey) plus a few integers.
type progress struct {
	// Plan is the plan of the last write; a Done of another plan is not
	// trusted after a restart (the partition may have been lost and
	// regained while this node was down): Finish runs again.
	Plan uint64 `msgpack:"p"`
	// After is the last record merged durably.
	After Cursor `msgpack:"a"`
	// Streamed is set once the stream reached Done: only Finish is left.
	Streamed bool `msgpack:"s"`
	// Done is set once Finish succeeded.
	Done bool `msgpack:"d"`
	// Keys, Bytes, Skipped and Undecodable carry Status's figures over.
	Keys        int64 `msgpack:"k"`
	Bytes       int64 `msgpack:"b"`
	Skipped     int64 `msgpack:"x"`
	Undecodable int64 `msgpack:"u"`
}

func encodeProgress(pr progress) []byte {
	b, err := msgpack.Marshal(&pr)
	if err != nil { // plain fields: cannot fail
		panic(fmt.Sprintf("handoff: encoding progress: %v", err))
	}
	return append([]byte{progressFormat}, b...)
}

// decodeProgress decodes encodeProgress's output. An empty value is the
// zero progress; anything else that does not decode to a sane record is
// an error.
func decodeProgress(b []byte) (progress, error) {
	var pr progress
	if len(b) == 0 {
		return pr, nil
	}
	if b[0] != progressFormat {
		return progress{}, fmt.Errorf("handoff: progress format %d", b[0])
	}
	if err := msgpack.Unmarshal(b[1:], &pr); err != nil {
		return progress{}, fmt.Errorf("handoff: progress: %w", err)
	}
	switch {
	case pr.Keys < 0 || pr.Bytes < 0 || pr.Skipped < 0 || pr.Undecodable < 0:
		return progress{}, fmt.Errorf("handoff: progress: negative counts")
	case len(pr.After.Key) > maxCursorKey:
		return progress{}, fmt.Errorf("handoff: progress: cursor key of %d bytes", len(pr.After.Key))
	case pr.Done && !pr.Streamed:
		return progress{}, fmt.Errorf("handoff: progress: done but not streamed")
	}
	return pr, nil
}
