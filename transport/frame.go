package transport

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// kind says what a frame carries.
type kind uint8

const (
	kindRequest  kind = 1 // a call: Method, From and Body are set
	kindResponse kind = 2 // a successful reply: Body is set
	kindError    kind = 3 // a failed reply: ErrCode and ErrMsg are set
)

func (k kind) valid() bool { return k >= kindRequest && k <= kindError }

// frame is one message on a connection. On the wire it is a 4-byte
// big-endian length followed by that many bytes holding the msgpack encoding
// of an 8-element array [ID, Kind, Method, From, Body, ErrCode, ErrMsg, To].
// A 7-element array (an earlier version's, without To) is accepted. See
// doc.go.
type frame struct {
	ID      uint64 // request ID, chosen by the caller, echoed by the reply
	Kind    kind   // request, response or error
	Method  string // requests: the method name
	From    string // requests: the caller's node ID
	Body    []byte // requests and responses: the payload
	ErrCode string // errors: RemoteError.Code
	ErrMsg  string // errors: RemoteError.Message
	To      string // requests: the node ID the caller means to reach; "" for any
}

const (
	// prefixSize is the size of the length prefix.
	prefixSize = 4
	// frameFields is the number of elements in a frame's msgpack array;
	// oldFrameFields, without To, is still accepted.
	frameFields    = 8
	oldFrameFields = 7
	// readChunk bounds how much readFrame allocates ahead of the bytes that
	// have actually arrived, so a peer that announces a large (but allowed)
	// frame and then stalls cannot make us allocate all of it up front.
	readChunk = 1 << 20
	// maxErrMsg bounds the error message put in an error frame.
	maxErrMsg = 64 << 10
)

// msgpack codes used by frames.
const (
	mpNil      = 0xc0
	mpBin8     = 0xc4
	mpBin16    = 0xc5
	mpBin32    = 0xc6
	mpUint8    = 0xcc
	mpUint16   = 0xcd
	mpUint32   = 0xce
	mpUint64   = 0xcf
	mpInt8     = 0xd0
	mpInt16    = 0xd1
	mpInt32    = 0xd2
	mpInt64    = 0xd3
	mpStr8     = 0xd9
	mpStr16    = 0xda
	mpStr32    = 0xdb
	mpArray16  = 0xdc
	mpArray32  = 0xdd
	mpFixArray = 0x90
	mpFixStr   = 0xa0
)

// size returns the length of f's msgpack encoding, without the prefix.
func (f *frame) size() int {
	return 1 + uintSize(f.ID) + uintSize(uint64(f.Kind)) +
		strHdrSize(len(f.Method)) + len(f.Method) +
		strHdrSize(len(f.From)) + len(f.From) +
		binHdrSize(len(f.Body)) + len(f.Body) +
		strHdrSize(len(f.ErrCode)) + len(f.ErrCode) +
		strHdrSize(len(f.ErrMsg)) + len(f.ErrMsg) +
		strHdrSize(len(f.To)) + len(f.To)
}

// appendHead appends the length prefix and everything up to and including
// the Body's header. size must be f.size().
func appendHead(dst []byte, f *frame, size int) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(size))
	dst = append(dst, mpFixArray|frameFields)
	dst = appendUint(dst, f.ID)
	dst = appendUint(dst, uint64(f.Kind))
	dst = appendStr(dst, f.Method)
	dst = appendStr(dst, f.From)
	return appendBinHdr(dst, len(f.Body))
}

// appendTail appends what follows the Body.
func appendTail(dst []byte, f *frame) []byte {
	dst = appendStr(dst, f.ErrCode)
	dst = appendStr(dst, f.ErrMsg)
	return appendStr(dst, f.To)
}

// appendFrame appends the whole wire form of f, prefix included.
func appendFrame(dst []byte, f *frame) []byte {
	dst = appendHead(dst, f, f.size())
	dst = append(dst, f.Body...)
	return appendTail(dst, f)
}

func uintSize(v uint64) int {
	switch {
	case v <= 0x7f:
		return 1
	case v <= math.MaxUint8:
		return 2
	case v <= math.MaxUint16:
		return 3
	case v <= math.MaxUint32:
		return 5
	default:
		return 9
	}
}

func appendUint(dst []byte, v uint64) []byte {
	switch {
	case v <= 0x7f:
		return append(dst, byte(v))
	case v <= math.MaxUint8:
		return append(dst, mpUint8, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, mpUint16), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, mpUint32), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(dst, mpUint64), v)
	}
}

func strHdrSize(n int) int {
	switch {
	case n < 32:
		return 1
	case n <= math.MaxUint8:
		return 2
	case n <= math.MaxUint16:
		return 3
	default:
		return 5
	}
}

func appendStr(dst []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		dst = append(dst, mpFixStr|byte(n))
	case n <= math.MaxUint8:
		dst = append(dst, mpStr8, byte(n))
	case n <= math.MaxUint16:
		dst = binary.BigEndian.AppendUint16(append(dst, mpStr16), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, mpStr32), uint32(n))
	}
	return append(dst, s...)
}

func binHdrSize(n int) int {
	switch {
	case n <= math.MaxUint8:
		return 2
	case n <= math.MaxUint16:
		return 3
	default:
		return 5
	}
}

func appendBinHdr(dst []byte, n int) []byte {
	switch {
	case n <= math.MaxUint8:
		return append(dst, mpBin8, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, mpBin16), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(dst, mpBin32), uint32(n))
	}
}

// readFrame reads one frame from r. It rejects a length above max with
// ErrFrameTooLarge before allocating anything, and never allocates more than
// readChunk bytes beyond what has arrived. It returns the frame and the
// number of bytes consumed. The frame's Body aliases a buffer owned by the
// frame alone. Errors other than ErrFrameTooLarge and ErrBadFrame come from
// r.
func readFrame(r *bufio.Reader, max int) (frame, int, error) {
	size, n, err := readPrefix(r, max)
	if err != nil {
		return frame{}, n, err
	}
	f, m, err := readPayload(r, size)
	return f, n + m, err
}

// readPrefix reads a frame's length prefix and checks the length against
// max. It returns the length and the bytes consumed.
func readPrefix(r *bufio.Reader, max int) (size, n int, err error) {
	hdr, err := r.Peek(prefixSize)
	if err != nil {
		if err == io.EOF && len(hdr) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, err
	}
	u := binary.BigEndian.Uint32(hdr)
	if _, err := r.Discard(prefixSize); err != nil {
		return 0, 0, err
	}
	if uint64(u) > uint64(max) {
		return 0, prefixSize, fmt.Errorf("%w: %d bytes announced, limit %d", ErrFrameTooLarge, u, max)
	}
	if u == 0 {
		return 0, prefixSize, fmt.Errorf("%w: empty frame", ErrBadFrame)
	}
	return int(u), prefixSize, nil
}

// readPayload reads and decodes the size bytes that follow a length
// prefix, and returns the frame and the bytes consumed.
func readPayload(r *bufio.Reader, size int) (frame, int, error) {
	buf, err := readBody(r, size)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return frame{}, len(buf), err
	}
	f, err := decodeFrame(buf)
	return f, len(buf), err
}

// readBody reads exactly n bytes, growing the buffer at most readChunk at a
// time ahead of the data.
func readBody(r io.Reader, n int) ([]byte, error) {
	if n <= readChunk {
		buf := make([]byte, n)
		m, err := io.ReadFull(r, buf)
		return buf[:m], err
	}
	buf := make([]byte, 0, readChunk)
	for len(buf) < n {
		if len(buf) == cap(buf) {
			grow := min(cap(buf), n-len(buf))
			nb := make([]byte, len(buf), len(buf)+grow)
			copy(nb, buf)
			buf = nb
		}
		m, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// decodeFrame decodes the msgpack part of a frame. It accepts any valid
// msgpack encoding of the fields (compact or not; str, bin or nil for the
// strings and the body) and rejects trailing bytes, a wrong field count, an
// unknown kind and a request without a method.
func decodeFrame(b []byte) (frame, error) {
	d := decoder{b: b}
	var f frame
	n, err := d.arrayLen()
	if err != nil {
		return frame{}, err
	}
	if n != frameFields && n != oldFrameFields {
		return frame{}, fmt.Errorf("%w: %d fields, want %d", ErrBadFrame, n, frameFields)
	}
	if f.ID, err = d.uint(); err != nil {
		return frame{}, err
	}
	k, err := d.uint()
	if err != nil {
		return frame{}, err
	}
	if k > math.MaxUint8 || !kind(k).valid() {
		return frame{}, fmt.Errorf("%w: unknown kind %d", ErrBadFrame, k)
	}
	f.Kind = kind(k)
	if f.Method, err = d.str(); err != nil {
		return frame{}, err
	}
	if f.From, err = d.str(); err != nil {
		return frame{}, err
	}
	if f.Body, err = d.raw(); err != nil {
		return frame{}, err
	}
	if f.ErrCode, err = d.str(); err != nil {
		return frame{}, err
	}
	if f.ErrMsg, err = d.str(); err != nil {
		return frame{}, err
	}
	if n == frameFields {
		if f.To, err = d.str(); err != nil {
			return frame{}, err
		}
	}
	if d.off != len(b) {
		return frame{}, fmt.Errorf("%w: %d trailing bytes", ErrBadFrame, len(b)-d.off)
	}
	if f.Kind == kindRequest && f.Method == "" {
		return frame{}, fmt.Errorf("%w: request without method", ErrBadFrame)
	}
	if len(f.Body) == 0 {
		f.Body = nil
	}
	return f, nil
}

// decoder reads msgpack values from a byte slice, checking every length
// against what is left before slicing.
type decoder struct {
	b   []byte
	off int
}

var errTruncated = fmt.Errorf("%w: truncated", ErrBadFrame)

func (d *decoder) next(n int) ([]byte, error) {
	if n < 0 || n > len(d.b)-d.off {
		return nil, errTruncated
	}
	p := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return p, nil
}

func (d *decoder) code() (byte, error) {
	p, err := d.next(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

// be reads an n-byte big-endian unsigned integer, n in {1, 2, 4, 8}.
func (d *decoder) be(n int) (uint64, error) {
	p, err := d.next(n)
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return uint64(p[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(p)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(p)), nil
	default:
		return binary.BigEndian.Uint64(p), nil
	}
}

func (d *decoder) arrayLen() (int, error) {
	c, err := d.code()
	if err != nil {
		return 0, err
	}
	var n uint64
	switch {
	case c&0xf0 == mpFixArray:
		return int(c & 0x0f), nil
	case c == mpArray16:
		n, err = d.be(2)
	case c == mpArray32:
		n, err = d.be(4)
	default:
		return 0, fmt.Errorf("%w: code 0x%02x is not an array", ErrBadFrame, c)
	}
	return int(n), err
}

func (d *decoder) uint() (uint64, error) {
	c, err := d.code()
	if err != nil {
		return 0, err
	}
	switch {
	case c <= 0x7f:
		return uint64(c), nil
	case c >= mpUint8 && c <= mpUint64:
		return d.be(1 << (c - mpUint8))
	case c >= mpInt8 && c <= mpInt64:
		n := 1 << (c - mpInt8)
		v, err := d.be(n)
		if err != nil {
			return 0, err
		}
		if v>>(uint(n)*8-1)&1 != 0 {
			return 0, fmt.Errorf("%w: negative integer", ErrBadFrame)
		}
		return v, nil
	default:
		return 0, fmt.Errorf("%w: code 0x%02x is not an unsigned integer", ErrBadFrame, c)
	}
}

// raw reads a str, bin or nil value and returns its bytes (aliasing d.b).
func (d *decoder) raw() ([]byte, error) {
	c, err := d.code()
	if err != nil {
		return nil, err
	}
	var n uint64
	switch {
	case c == mpNil:
		return nil, nil
	case c&0xe0 == mpFixStr:
		n = uint64(c & 0x1f)
	case c == mpStr8 || c == mpBin8:
		n, err = d.be(1)
	case c == mpStr16 || c == mpBin16:
		n, err = d.be(2)
	case c == mpStr32 || c == mpBin32:
		n, err = d.be(4)
	default:
		return nil, fmt.Errorf("%w: code 0x%02x is not a string", ErrBadFrame, c)
	}
	if err != nil {
		return nil, err
	}
	if n > uint64(len(d.b)-d.off) {
		return nil, errTruncated
	}
	return d.next(int(n))
}

func (d *decoder) str() (string, error) {
	p, err := d.raw()
	if err != nil || len(p) == 0 {
		return "", err
	}
	return string(p), nil
}
