package gossip

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
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

// checkShape walks one msgpack value and bounds every container.
func checkShape(b []byte) error {
	r := bytes.NewReader(b)
	d := msgpack.NewDecoder(r)
	return walk(d, r, 0)
}

func walk(d *msgpack.Decoder, r *bytes.Reader, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: nested deeper than %d", errShape, maxDepth)
	}
	c, err := d.PeekCode()
	if err != nil {
		return err
	}
	var n, per int
	switch {
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err = d.DecodeArrayLen()
		per = 1
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, err = d.DecodeMapLen()
		per = 2
	default:
		return d.Skip()
	}
	if err != nil {
		return err
	}
	if n > maxContainerLen || n*per > r.Len() {
		return fmt.Errorf("%w: container of %d with %d bytes left", errShape, n, r.Len())
	}
	for i := 0; i < n*per; i++ {
		if err := walk(d, r, depth+1); err != nil {
			return err
		}
	}
	return nil
}
