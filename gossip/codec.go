package gossip

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quorumkv/quorumkv/internal/wire"
)

// Decoding limits. msgpack preallocates slices and maps from the declared
// length, so a few hostile bytes could ask for gigabytes; checkShape rejects
// any container longer than maxContainerLen or than the bytes left to hold
// its elements, and any nesting deeper than maxDepth, before decoding.
const (
	maxContainerLen = 1 << 16
	maxDepth        = 8
)

var errShape = errors.New("bad msgpack shape")

// marshal renders v as a format byte followed by msgpack.
func marshal(format byte, v any) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(format)
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// unmarshal checks the format byte and the shape of b, then decodes the
// msgpack body into v, rejecting trailing bytes.
func unmarshal(b []byte, format byte, v any) error {
	if len(b) == 0 {
		return errors.New("empty input")
	}
	if b[0] != format {
		return fmt.Errorf("unknown format %d", b[0])
	}
	body := b[1:]
	if err := checkShape(body); err != nil {
		return err
	}
	r := bytes.NewReader(body)
	dec := msgpack.NewDecoder(r)
	if err := dec.Decode(v); err != nil {
		return err
	}
	if r.Len() != 0 {
		return fmt.Errorf("%d trailing bytes", r.Len())
	}
	return nil
}

// checkShape bounds every container and length of one msgpack value
// before it is decoded (internal/wire).
func checkShape(b []byte) error {
	if err := wire.CheckLimits(b, wire.Limits{MaxDepth: maxDepth, MaxItems: 2 * maxContainerLen}); err != nil {
		return fmt.Errorf("%w: %v", errShape, err)
	}
	return nil
}
