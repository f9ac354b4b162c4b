package store

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// maxMsgpackDepth bounds container nesting in decoded input. A set nests
// four deep (set, context, vector or cloud, dot).
const maxMsgpackDepth = 8

var errMsgpackShape = errors.New("malformed msgpack")

// checkMsgpack verifies that b holds exactly one msgpack value, nested at
// most maxMsgpackDepth deep, with every string, binary, array and map
// length within the bytes that remain, and no floats or extension types
// (EncodeSet and encodeRecord produce neither). It allocates nothing and
// runs in time linear in len(b).
//
// It exists because msgpack/v5 (v5.4.1) sizes a decoded slice from the
// length prefix before reading its elements: its allocation limit is
// disabled by a bug in decodeSliceValue (flags&disableAllocLimitFlag != 1
// is always true), so a 9-byte input claiming 500 million siblings would
// make it allocate tens of gigabytes. After this check every length is
// bounded by the input size.
func checkMsgpack(b []byte) error {
	w := msgpackWalker{b: b}
	if err := w.value(0); err != nil {
		return err
	}
	if w.off != len(b) {
		return fmt.Errorf("%d trailing bytes", len(b)-w.off)
	}
	return nil
}

type msgpackWalker struct {
	b   []byte
	off int
}

func (w *msgpackWalker) remaining() int { return len(w.b) - w.off }

// take consumes n bytes.
func (w *msgpackWalker) take(n uint64) error {
	if n > uint64(w.remaining()) {
		return fmt.Errorf("%w: length %d exceeds the %d bytes left", errMsgpackShape, n, w.remaining())
	}
	w.off += int(n)
	return nil
}

// length reads a big-endian length of size bytes.
func (w *msgpackWalker) length(size int) (uint64, error) {
	if w.remaining() < size {
		return 0, fmt.Errorf("%w: truncated length", errMsgpackShape)
	}
	p := w.b[w.off : w.off+size]
	w.off += size
	switch size {
	case 1:
		return uint64(p[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(p)), nil
	default:
		return uint64(binary.BigEndian.Uint32(p)), nil
	}
}

// container checks n nested values (each takes at least one byte).
func (w *msgpackWalker) container(n uint64, depth int) error {
	if depth >= maxMsgpackDepth {
		return fmt.Errorf("%w: nested deeper than %d", errMsgpackShape, maxMsgpackDepth)
	}
	if n > uint64(w.remaining()) {
		return fmt.Errorf("%w: %d elements in %d bytes", errMsgpackShape, n, w.remaining())
	}
	for i := uint64(0); i < n; i++ {
		if err := w.value(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

func (w *msgpackWalker) value(depth int) error {
	if w.remaining() < 1 {
		return fmt.Errorf("%w: truncated", errMsgpackShape)
	}
	c := w.b[w.off]
	w.off++
	switch {
	case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3: // ints, nil, bools
		return nil
	case c >= 0x80 && c <= 0x8f: // fixmap
		return w.container(2*uint64(c&0x0f), depth)
	case c >= 0x90 && c <= 0x9f: // fixarray
		return w.container(uint64(c&0x0f), depth)
	case c >= 0xa0 && c <= 0xbf: // fixstr
		return w.take(uint64(c & 0x1f))
	}
	switch c {
	case 0xcc, 0xd0:
		return w.take(1)
	case 0xcd, 0xd1:
		return w.take(2)
	case 0xce, 0xd2:
		return w.take(4)
	case 0xcf, 0xd3:
		return w.take(8)
	case 0xc4, 0xd9: // bin8, str8
		return w.sized(1)
	case 0xc5, 0xda: // bin16, str16
		return w.sized(2)
	case 0xc6, 0xdb: // bin32, str32
		return w.sized(4)
	case 0xdc, 0xdd: // array16, array32
		n, err := w.length(2 << (c - 0xdc))
		if err != nil {
			return err
		}
		return w.container(n, depth)
	case 0xde, 0xdf: // map16, map32
		n, err := w.length(2 << (c - 0xde))
		if err != nil {
			return err
		}
		return w.container(2*n, depth)
	}
	return fmt.Errorf("%w: unexpected type byte 0x%02x", errMsgpackShape, c)
}

// sized consumes a length of size bytes and that many bytes of payload.
func (w *msgpackWalker) sized(size int) error {
	n, err := w.length(size)
	if err != nil {
		return err
	}
	return w.take(n)
}
