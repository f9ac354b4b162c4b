package antientropy

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// maxContainer caps the elements of any msgpack array or map in a message
// from a peer; it is the largest count the protocol needs.
const maxContainer = 1 << 16

var errMsgpack = errors.New("malformed msgpack")

// checkMsgpack walks one msgpack value in b without decoding it and
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
	pending := 1 // values still to read
	pos := 0
	for pending > 0 {
		if pos >= len(b) {
			return fmt.Errorf("%w: truncated", errMsgpack)
		}
		c := b[pos]
		pos++
		pending--
		var n, skip int // n: elements to read; skip: bytes to skip
		var err error
		switch {
		case c <= 0x7f || c >= 0xe0: // fixint
		case c <= 0x8f: // fixmap
			n = 2 * int(c&0x0f)
		case c <= 0x9f: // fixarray
			n = int(c & 0x0f)
		case c <= 0xbf: // fixstr
			skip = int(c & 0x1f)
		default:
			switch c {
			case 0xc0, 0xc2, 0xc3: // nil, false, true
			case 0xc4, 0xd9: // bin8, str8
				skip, pos, err = readLen(b, pos, 1)
			case 0xc5, 0xda: // bin16, str16
				skip, pos, err = readLen(b, pos, 2)
			case 0xc6, 0xdb: // bin32, str32
				skip, pos, err = readLen(b, pos, 4)
			case 0xc7: // ext8: length, type, data
				skip, pos, err = readLen(b, pos, 1)
				skip++
			case 0xc8: // ext16
				skip, pos, err = readLen(b, pos, 2)
				skip++
			case 0xc9: // ext32
				skip, pos, err = readLen(b, pos, 4)
				skip++
			case 0xcc, 0xd0: // uint8, int8
				skip = 1
			case 0xcd, 0xd1: // uint16, int16
				skip = 2
			case 0xca, 0xce, 0xd2: // float32, uint32, int32
				skip = 4
			case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
				skip = 8
			case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16 (plus type)
				skip = 1 + 1<<(c-0xd4)
			case 0xdc: // array16
				n, pos, err = readLen(b, pos, 2)
			case 0xdd: // array32
				n, pos, err = readLen(b, pos, 4)
			case 0xde: // map16
				n, pos, err = readLen(b, pos, 2)
				n *= 2
			case 0xdf: // map32
				n, pos, err = readLen(b, pos, 4)
				n *= 2
			default: // 0xc1 is never used
				return fmt.Errorf("%w: code %#x", errMsgpack, c)
			}
		}
		if err != nil {
			return err
		}
		if skip > len(b)-pos {
			return fmt.Errorf("%w: %d bytes claimed, %d left", errMsgpack, skip, len(b)-pos)
		}
		pos += skip
		if n > 2*maxContainer || n > len(b)-pos {
			return fmt.Errorf("%w: %d elements claimed, %d bytes left", errMsgpack, n, len(b)-pos)
		}
		pending += n
	}
	return nil
}

func readLen(b []byte, pos, size int) (int, int, error) {
	if len(b)-pos < size {
		return 0, pos, fmt.Errorf("%w: truncated length", errMsgpack)
	}
	var n uint64
	switch size {
	case 1:
		n = uint64(b[pos])
	case 2:
		n = uint64(binary.BigEndian.Uint16(b[pos:]))
	case 4:
		n = uint64(binary.BigEndian.Uint32(b[pos:]))
	}
	return int(n), pos + size, nil
}
