package version

import (
	"slices"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quorumkv/quorumkv/internal/wire"
)

// The types of this package encode themselves as msgpack maps keyed by the
// names in their struct tags, exactly as msgpack's reflection would write
// them with compact integers, except that a context's vector is written in
// sorted node order, so equal values always encode to equal bytes. Stored
// records depend on that: their bytes are compared to detect no-op writes
// and hashed into the Merkle trees.
//
// Writing the codec by hand rather than through reflection takes the
// per-field lookups and allocations off the request path, where every
// replica reply and every stored record goes through it.
//
// The decoders accept the fields in any order, skip unknown fields (a newer
// peer may add some), and read nil as the zero value. Slices are grown as
// elements arrive, never sized from a length header alone.

var (
	_ msgpack.CustomEncoder = Dot{}
	_ msgpack.CustomDecoder = (*Dot)(nil)
	_ msgpack.CustomEncoder = Sibling{}
	_ msgpack.CustomDecoder = (*Sibling)(nil)
	_ msgpack.CustomEncoder = Context{}
	_ msgpack.CustomDecoder = (*Context)(nil)
	_ msgpack.CustomEncoder = Set{}
	_ msgpack.CustomDecoder = (*Set)(nil)
)

// EncodeMsgpack implements msgpack.CustomEncoder.
func (d Dot) EncodeMsgpack(e *msgpack.Encoder) error {
	f := wire.Fields{E: e}
	f.Header(2)
	f.Str("n", d.Node)
	f.Uint("c", d.Counter)
	return f.Err
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (d *Dot) DecodeMsgpack(dec *msgpack.Decoder) error {
	*d = Dot{}
	return wire.DecodeMap(dec, "dot", func(key string) (err error) {
		switch key {
		case "n":
			d.Node, err = dec.DecodeString()
		case "c":
			d.Counter, err = wire.DecodeUint(dec)
		default:
			err = dec.Skip()
		}
		return err
	})
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (s Sibling) EncodeMsgpack(e *msgpack.Encoder) error {
	n := 2 // "d" and "w" are always present
	if len(s.Value) > 0 {
		n++
	}
	if s.ContentType != "" {
		n++
	}
	if s.Deleted {
		n++
	}
	f := wire.Fields{E: e}
	f.Header(n)
	if f.Key("d") {
		f.Err = s.Dot.EncodeMsgpack(e)
	}
	if len(s.Value) > 0 {
		f.Bytes("v", s.Value)
	}
	if s.ContentType != "" {
		f.Str("t", s.ContentType)
	}
	if s.Deleted {
		f.Bool("x", true)
	}
	f.Int("w", s.WriteTime)
	return f.Err
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (s *Sibling) DecodeMsgpack(dec *msgpack.Decoder) error {
	*s = Sibling{}
	return wire.DecodeMap(dec, "sibling", func(key string) (err error) {
		switch key {
		case "d":
			err = s.Dot.DecodeMsgpack(dec)
		case "v":
			s.Value, err = dec.DecodeBytes()
		case "t":
			s.ContentType, err = dec.DecodeString()
		case "x":
			s.Deleted, err = dec.DecodeBool()
		case "w":
			s.WriteTime, err = dec.DecodeInt64()
		default:
			err = dec.Skip()
		}
		return err
	})
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (c Context) EncodeMsgpack(e *msgpack.Encoder) error {
	n := 0
	if len(c.VV) > 0 {
		n++
	}
	if len(c.Cloud) > 0 {
		n++
	}
	f := wire.Fields{E: e}
	f.Header(n)
	if len(c.VV) > 0 && f.Key("v") {
		f.Err = e.EncodeMapLen(len(c.VV))
		var buf [8]string
		nodes := buf[:0]
		for node := range c.VV {
			nodes = append(nodes, node)
		}
		slices.Sort(nodes)
		for _, node := range nodes {
			f.Uint(node, c.VV[node])
		}
	}
	if len(c.Cloud) > 0 && f.Key("d") {
		f.Err = e.EncodeArrayLen(len(c.Cloud))
		for i := 0; i < len(c.Cloud) && f.Err == nil; i++ {
			f.Err = c.Cloud[i].EncodeMsgpack(e)
		}
	}
	return f.Err
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (c *Context) DecodeMsgpack(dec *msgpack.Decoder) error {
	*c = Context{}
	return wire.DecodeMap(dec, "context", func(key string) error {
		switch key {
		case "v":
			n, err := dec.DecodeMapLen()
			if err != nil || n < 0 {
				return err
			}
			c.VV = make(map[string]uint64, min(n, wire.MaxPrealloc))
			for range n {
				node, err := dec.DecodeString()
				if err != nil {
					return err
				}
				if c.VV[node], err = wire.DecodeUint(dec); err != nil {
					return err
				}
			}
			return nil
		case "d":
			var err error
			c.Cloud, err = wire.DecodeArray[Dot](dec)
			return err
		default:
			return dec.Skip()
		}
	})
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (s Set) EncodeMsgpack(e *msgpack.Encoder) error {
	n := 1 // "c" is always present
	if len(s.Siblings) > 0 {
		n++
	}
	f := wire.Fields{E: e}
	f.Header(n)
	if len(s.Siblings) > 0 && f.Key("s") {
		f.Err = e.EncodeArrayLen(len(s.Siblings))
		for i := 0; i < len(s.Siblings) && f.Err == nil; i++ {
			f.Err = s.Siblings[i].EncodeMsgpack(e)
		}
	}
	if f.Key("c") {
		f.Err = s.Context.EncodeMsgpack(e)
	}
	return f.Err
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (s *Set) DecodeMsgpack(dec *msgpack.Decoder) error {
	*s = Set{}
	return wire.DecodeMap(dec, "set", func(key string) (err error) {
		switch key {
		case "s":
			s.Siblings, err = wire.DecodeArray[Sibling](dec)
		case "c":
			err = s.Context.DecodeMsgpack(dec)
		default:
			err = dec.Skip()
		}
		return err
	})
}

// SizeHint estimates the set's msgpack size, for sizing a buffer before
// encoding it. It is at least the true size for any set whose node names
// are under 32 bytes and content types under 64.
func (s Set) SizeHint() int {
	n := 16
	for _, sib := range s.Siblings {
		n += 64 + len(sib.Value) + len(sib.ContentType) + len(sib.Dot.Node)
	}
	return n + s.Context.SizeHint()
}

// SizeHint estimates the context's msgpack size; see Set.SizeHint.
func (c Context) SizeHint() int {
	n := 8
	for node := range c.VV {
		n += 12 + len(node)
	}
	for _, d := range c.Cloud {
		n += 16 + len(d.Node)
	}
	return n
}
