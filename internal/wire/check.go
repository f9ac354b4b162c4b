// Package wire guards msgpack decoding of untrusted bytes. msgpack v5
// allocates a slice of structs as long as the array header claims, before
// reading any element, so a few bytes can demand gigabytes. Check walks the
// encoding once, without allocating, and rejects any array, map, string or
// binary whose claimed length cannot fit in the bytes that are left, so a
// decode that follows allocates at most in proportion to its input.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed means the bytes are not well-formed msgpack within limits.
var ErrMalformed = errors.New("wire: malformed msgpack")

// MaxDepth bounds container nesting in Check.
const MaxDepth = 32

// Limits tighten the check for a particular format.
type Limits struct {
	// MaxDepth bounds container nesting; 0 means MaxDepth.
	MaxDepth int
	// MaxItems bounds the elements of any one array or map (a map's pairs
	// count twice); 0 means only the remaining input bounds them.
	MaxItems int
	// Strict rejects floats and extension types, for formats that never
	// contain them.
	Strict bool
}

// Check reports whether b holds exactly one well-formed msgpack value whose
// every claimed length fits in the remaining input.
func Check(b []byte) error { return CheckLimits(b, Limits{}) }

// CheckLimits is Check with tighter limits.
func CheckLimits(b []byte, lim Limits) error {
	if lim.MaxDepth <= 0 {
		lim.MaxDepth = MaxDepth
	}
	n, err := skip(b, 0, &lim)
	if err != nil {
		return err
	}
	if n != len(b) {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b)-n)
	}
	return nil
}

func bad(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, a...)...)
}

// skip returns the length of the value at the start of b.
func skip(b []byte, depth int, lim *Limits) (int, error) {
	if depth > lim.MaxDepth {
		return 0, bad("nested deeper than %d", lim.MaxDepth)
	}
	if len(b) == 0 {
		return 0, bad("truncated")
	}
	c := b[0]
	uintN := func(size int) (uint64, error) {
		if len(b) < 1+size {
			return 0, bad("truncated length")
		}
		switch size {
		case 1:
			return uint64(b[1]), nil
		case 2:
			return uint64(binary.BigEndian.Uint16(b[1:])), nil
		default:
			return uint64(binary.BigEndian.Uint32(b[1:])), nil
		}
	}
	blob := func(hdr int, n uint64) (int, error) {
		if len(b) < hdr {
			return 0, bad("truncated header")
		}
		if n > uint64(len(b)-hdr) {
			return 0, bad("claims %d bytes, %d left", n, len(b)-hdr)
		}
		return hdr + int(n), nil
	}
	container := func(hdr int, items uint64) (int, error) {
		if len(b) < hdr {
			return 0, bad("truncated header")
		}
		if items > uint64(len(b)-hdr) {
			return 0, bad("claims %d items, %d bytes left", items, len(b)-hdr)
		}
		if lim.MaxItems > 0 && items > uint64(lim.MaxItems) {
			return 0, bad("claims %d items, at most %d allowed", items, lim.MaxItems)
		}
		off := hdr
		for i := uint64(0); i < items; i++ {
			m, err := skip(b[off:], depth+1, lim)
			if err != nil {
				return 0, err
			}
			off += m
		}
		return off, nil
	}
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return 1, nil
	case c >= 0x80 && c <= 0x8f:
		return container(1, 2*uint64(c&0x0f))
	case c >= 0x90 && c <= 0x9f:
		return container(1, uint64(c&0x0f))
	case c >= 0xa0 && c <= 0xbf:
		return blob(1, uint64(c&0x1f))
	}
	if lim.Strict && (c == 0xca || c == 0xcb || (c >= 0xc7 && c <= 0xc9) || (c >= 0xd4 && c <= 0xd8)) {
		return 0, bad("code 0x%02x (float or extension) not allowed here", c)
	}
	switch c {
	case 0xc4, 0xd9: // bin8, str8
		n, err := uintN(1)
		if err != nil {
			return 0, err
		}
		return blob(2, n)
	case 0xc5, 0xda:
		n, err := uintN(2)
		if err != nil {
			return 0, err
		}
		return blob(3, n)
	case 0xc6, 0xdb:
		n, err := uintN(4)
		if err != nil {
			return 0, err
		}
		return blob(5, n)
	case 0xc7, 0xc8, 0xc9: // ext8/16/32: length, type, data
		size := map[byte]int{0xc7: 1, 0xc8: 2, 0xc9: 4}[c]
		n, err := uintN(size)
		if err != nil {
			return 0, err
		}
		return blob(2+size, n)
	case 0xca:
		return blob(1, 4)
	case 0xcb:
		return blob(1, 8)
	case 0xcc, 0xd0:
		return blob(1, 1)
	case 0xcd, 0xd1:
		return blob(1, 2)
	case 0xce, 0xd2:
		return blob(1, 4)
	case 0xcf, 0xd3:
		return blob(1, 8)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1..16 plus a type byte
		return blob(2, uint64(1)<<(c-0xd4))
	case 0xdc:
		n, err := uintN(2)
		if err != nil {
			return 0, err
		}
		return container(3, n)
	case 0xdd:
		n, err := uintN(4)
		if err != nil {
			return 0, err
		}
		return container(5, n)
	case 0xde:
		n, err := uintN(2)
		if err != nil {
			return 0, err
		}
		return container(3, 2*n)
	case 0xdf:
		n, err := uintN(4)
		if err != nil {
			return 0, err
		}
		return container(5, 2*n)
	}
	return 0, bad("invalid code 0x%02x", c)
}
