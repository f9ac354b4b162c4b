package antientropy

import (
	"errors"
	"fmt"

	"github.com/quorumkv/quorumkv/internal/wire"
)

// maxContainer caps the elements of any msgpack array or map in a message
// from a peer; it is the largest count the protocol needs.
const maxContainer = 1 << 16

var errMsgpack = errors.New("malformed msgpack")

// checkMsgpack walks one msgpack value in b (internal/wire) without
// decoding it and
// rejects it if any array or map claims more elements than the bytes left
// could hold, or more than maxContainer, or any string, binary or
// extension claims more bytes than are left.
//
// It exists because vmihailenco/msgpack v5.4.1 does not apply its
// allocation limit when decoding slices of structs (decodeSliceValue tests
// the flag with "!= 1"), so a 5-byte array header can make it allocate
// gigabytes. After this check a message allocates at most a small multiple
// of its own size.
func checkMsgpack(b []byte) error {
	if err := wire.CheckLimits(b, wire.Limits{MaxItems: 2 * maxContainer}); err != nil {
		return fmt.Errorf("%w: %v", errMsgpack, err)
	}
	return nil
}
