package quorum

import (
	"fmt"
	"math"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/quorumkv/quorumkv/internal/wire"
)

// Request, WriteRequest and Response encode themselves as msgpack maps keyed
// by their struct tags, the layout msgpack's reflection writes (integers in
// their shortest form), so either side of a connection may use either
// codec. Every internode read and write goes through these; writing them by
// hand takes reflection off the request path.

var (
	_ msgpack.CustomEncoder = (*Request)(nil)
	_ msgpack.CustomDecoder = (*Request)(nil)
	_ msgpack.CustomEncoder = (*WriteRequest)(nil)
	_ msgpack.CustomDecoder = (*WriteRequest)(nil)
	_ msgpack.CustomEncoder = (*Response)(nil)
	_ msgpack.CustomDecoder = (*Response)(nil)
)

// EncodeMsgpack implements msgpack.CustomEncoder.
func (r *Request) EncodeMsgpack(e *msgpack.Encoder) error {
	n := 4 // k, y, p, s
	if r.HintFor != "" {
		n++
	}
	if r.Write != nil {
		n++
	}
	if r.LWW {
		n++
	}
	if r.AckOnly {
		n++
	}
	f := wire.Fields{E: e}
	f.Header(n)
	f.Int("k", int64(r.Kind))
	f.Bytes("y", r.Key)
	f.Int("p", int64(r.Partition))
	if r.HintFor != "" {
		f.Str("h", r.HintFor)
	}
	if f.Key("s") {
		f.Err = r.Set.EncodeMsgpack(e)
	}
	if r.Write != nil && f.Key("w") {
		f.Err = r.Write.EncodeMsgpack(e)
	}
	if r.LWW {
		f.Bool("l", true)
	}
	if r.AckOnly {
		f.Bool("a", true)
	}
	return f.Err
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (r *Request) DecodeMsgpack(dec *msgpack.Decoder) error {
	*r = Request{}
	return wire.DecodeMap(dec, "request", func(key string) (err error) {
		switch key {
		case "k":
			var k uint64
			if k, err = wire.DecodeUint(dec); err == nil && k > math.MaxUint8 {
				err = fmt.Errorf("kind %d out of range", k)
			}
			r.Kind = Kind(k)
		case "y":
			r.Key, err = dec.DecodeBytes()
		case "p":
			var p int64
			if p, err = dec.DecodeInt64(); err == nil && (p < math.MinInt32 || p > math.MaxInt32) {
				err = fmt.Errorf("partition %d out of range", p)
			}
			r.Partition = int(p)
		case "h":
			r.HintFor, err = dec.DecodeString()
		case "s":
			err = r.Set.DecodeMsgpack(dec)
		case "w":
			r.Write = nil
			var c byte
			if c, err = dec.PeekCode(); err != nil {
				return err
			}
			if c == msgpcode.Nil { // no write
				return dec.DecodeNil()
			}
			r.Write = new(WriteRequest)
			err = r.Write.DecodeMsgpack(dec)
		case "l":
			r.LWW, err = dec.DecodeBool()
		case "a":
			r.AckOnly, err = dec.DecodeBool()
		default:
			err = dec.Skip()
		}
		return err
	})
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (w *WriteRequest) EncodeMsgpack(e *msgpack.Encoder) error {
	f := wire.Fields{E: e}
	f.Header(4)
	if f.Key("c") {
		f.Err = w.Context.EncodeMsgpack(e)
	}
	f.Bytes("v", w.Value)
	f.Str("t", w.ContentType)
	f.Bool("d", w.Deleted)
	return f.Err
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (w *WriteRequest) DecodeMsgpack(dec *msgpack.Decoder) error {
	*w = WriteRequest{}
	return wire.DecodeMap(dec, "write", func(key string) (err error) {
		switch key {
		case "c":
			err = w.Context.DecodeMsgpack(dec)
		case "v":
			w.Value, err = dec.DecodeBytes()
		case "t":
			w.ContentType, err = dec.DecodeString()
		case "d":
			w.Deleted, err = dec.DecodeBool()
		default:
			err = dec.Skip()
		}
		return err
	})
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (r *Response) EncodeMsgpack(e *msgpack.Encoder) error {
	f := wire.Fields{E: e}
	f.Header(3)
	if f.Key("s") {
		f.Err = r.Set.EncodeMsgpack(e)
	}
	if f.Key("d") {
		f.Err = r.Dot.EncodeMsgpack(e)
	}
	f.Bool("h", r.HintStored)
	return f.Err
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (r *Response) DecodeMsgpack(dec *msgpack.Decoder) error {
	*r = Response{}
	return wire.DecodeMap(dec, "response", func(key string) (err error) {
		switch key {
		case "s":
			err = r.Set.DecodeMsgpack(dec)
		case "d":
			err = r.Dot.DecodeMsgpack(dec)
		case "h":
			r.HintStored, err = dec.DecodeBool()
		default:
			err = dec.Skip()
		}
		return err
	})
}

// SizeHint estimates the request's encoded size; see version.Set.SizeHint.
func (r *Request) SizeHint() int {
	n := 32 + len(r.Key) + len(r.HintFor) + r.Set.SizeHint()
	if w := r.Write; w != nil {
		n += 16 + w.Context.SizeHint() + len(w.Value) + len(w.ContentType)
	}
	return n
}

// SizeHint estimates the response's encoded size; see version.Set.SizeHint.
func (r *Response) SizeHint() int {
	return 48 + r.Set.SizeHint() + len(r.Dot.Node)
}
