package store

import (
	"errors"
	"fmt"

	"github.com/quorumkv/quorumkv/internal/wire"
)

// maxMsgpackDepth bounds container nesting in decoded input. A set nests
// four deep (set, context, vector or cloud, dot).
const maxMsgpackDepth = 8

var errMsgpackShape = errors.New("malformed msgpack")

// checkMsgpack verifies that b holds exactly one msgpack value, nested at
// most maxMsgpackDepth deep, with every string, binary, array and map
// length within the bytes that remain, and no floats or extension types
// (EncodeSet and encodeRecord produce neither), using the shared walker in
// internal/wire. It allocates nothing and runs in time linear in len(b).
//
// It exists because msgpack/v5 (v5.4.1) sizes a decoded slice from the
// length prefix before reading its elements: its allocation limit is
// disabled by a bug in decodeSliceValue (flags&disableAllocLimitFlag != 1
// is always true), so a 9-byte input claiming 500 million siblings would
// make it allocate tens of gigabytes. After this check every length is
// bounded by the input size.
func checkMsgpack(b []byte) error {
	if err := wire.CheckLimits(b, wire.Limits{MaxDepth: maxMsgpackDepth, Strict: true}); err != nil {
		return fmt.Errorf("%w: %v", errMsgpackShape, err)
	}
	return nil
}
