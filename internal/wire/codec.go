package wire

import (
	"bytes"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Helpers for hand-written msgpack codecs (msgpack.CustomEncoder and
// CustomDecoder). They read structs encoded as maps keyed by field name,
// the layout msgpack's reflection writes, so hand-written and reflective
// codecs interoperate.

// MaxPrealloc bounds the capacity a decoder reserves from a length header:
// a header can claim more elements than the input holds, so slices and
// maps grow as their elements arrive beyond this.
const MaxPrealloc = 64

// DecodeMap reads a msgpack map of string keys, calling field for each key
// with the decoder positioned at its value; field must consume the value.
// A nil map reads as no fields. what names the value in errors.
func DecodeMap(dec *msgpack.Decoder, what string, field func(key string) error) error {
	n, err := dec.DecodeMapLen()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	for range n { // n is -1 for nil
		key, err := dec.DecodeString()
		if err != nil {
			return fmt.Errorf("%s: key: %w", what, err)
		}
		if err := field(key); err != nil {
			return fmt.Errorf("%s.%s: %w", what, key, err)
		}
	}
	return nil
}

// DecodeArray reads a msgpack array of T, appending elements as they
// arrive. Nil reads as a nil slice and an empty array as an empty one, as
// msgpack's reflection does.
func DecodeArray[T any, PT interface {
	*T
	msgpack.CustomDecoder
}](dec *msgpack.Decoder) ([]T, error) {
	n, err := dec.DecodeArrayLen()
	if err != nil || n < 0 {
		return nil, err
	}
	out := make([]T, 0, min(n, MaxPrealloc))
	for range n {
		var v T
		if err := PT(&v).DecodeMsgpack(dec); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// DecodeUint reads a non-negative integer. msgpack's own DecodeUint64
// converts a negative one to a huge unsigned value; this rejects it.
func DecodeUint(dec *msgpack.Decoder) (uint64, error) {
	c, err := dec.PeekCode()
	if err != nil {
		return 0, err
	}
	if msgpcode.IsFixedNum(c) && int8(c) < 0 || c == msgpcode.Int8 || c == msgpcode.Int16 || c == msgpcode.Int32 || c == msgpcode.Int64 {
		n, err := dec.DecodeInt64()
		if err != nil {
			return 0, err
		}
		if n < 0 {
			return 0, fmt.Errorf("negative value %d", n)
		}
		return uint64(n), nil
	}
	return dec.DecodeUint64()
}

// Marshal encodes v into a buffer of sizeHint bytes (grown if v needs
// more), so that a value of known size is encoded with one allocation.
// msgpack.Marshal starts from an empty buffer and grows it by copying.
func Marshal(v msgpack.CustomEncoder, sizeHint int) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, sizeHint))
	enc := msgpack.GetEncoder()
	enc.Reset(buf)
	err := v.EncodeMsgpack(enc)
	msgpack.PutEncoder(enc)
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Fields writes the entries of a msgpack map for a hand-written encoder,
// keeping the first error so that the encoder checks once at the end.
type Fields struct {
	E   *msgpack.Encoder
	Err error
}

// Header writes the map header for n entries.
func (f *Fields) Header(n int) {
	if f.Err == nil {
		f.Err = f.E.EncodeMapLen(n)
	}
}

// Key writes an entry's key and reports whether the caller should write
// its value (no error so far).
func (f *Fields) Key(k string) bool {
	if f.Err == nil {
		f.Err = f.E.EncodeString(k)
	}
	return f.Err == nil
}

// Str writes a string entry.
func (f *Fields) Str(k, v string) {
	if f.Key(k) {
		f.Err = f.E.EncodeString(v)
	}
}

// Bytes writes a binary entry; nil is written as msgpack nil.
func (f *Fields) Bytes(k string, v []byte) {
	if f.Key(k) {
		f.Err = f.E.EncodeBytes(v)
	}
}

// Int writes an integer entry in its shortest form.
func (f *Fields) Int(k string, v int64) {
	if f.Key(k) {
		f.Err = f.E.EncodeInt(v)
	}
}

// Uint writes an unsigned integer entry in its shortest form.
func (f *Fields) Uint(k string, v uint64) {
	if f.Key(k) {
		f.Err = f.E.EncodeUint(v)
	}
}

// Bool writes a boolean entry.
func (f *Fields) Bool(k string, v bool) {
	if f.Key(k) {
		f.Err = f.E.EncodeBool(v)
	}
}
