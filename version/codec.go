package version

import (
	"encoding/base64"
	"errors"
	"fmt"
	"sort"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quorumkv/quorumkv/internal/wire"
)

// contextFormat is the first byte of an encoded context.
const contextFormat byte = 1

// MaxContextSize bounds an encoded context (the X-Context header), in bytes
// after base64 decoding.
const MaxContextSize = 16 << 10

// ErrBadContext means a client sent a context that does not decode.
var ErrBadContext = errors.New("version: malformed context")

// EncodeContext renders a context as the opaque X-Context string: URL-safe
// base64 of a format byte and msgpack. The empty context encodes as "".
func EncodeContext(c Context) string {
	if c.IsEmpty() {
		return ""
	}
	b, err := MarshalContext(c)
	if err != nil { // a Context always marshals
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeContext parses an X-Context string. "" is the empty context.
func DecodeContext(s string) (Context, error) {
	if s == "" {
		return Context{}, nil
	}
	if base64.RawURLEncoding.DecodedLen(len(s)) > MaxContextSize {
		return Context{}, fmt.Errorf("%w: longer than %d bytes", ErrBadContext, MaxContextSize)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Context{}, fmt.Errorf("%w: %v", ErrBadContext, err)
	}
	return UnmarshalContext(b)
}

// MarshalContext encodes a context as a format byte plus msgpack.
func MarshalContext(c Context) ([]byte, error) {
	body, err := msgpack.Marshal(&c)
	if err != nil {
		return nil, err
	}
	return append([]byte{contextFormat}, body...), nil
}

// UnmarshalContext decodes MarshalContext's output and checks that it is
// well formed: no empty node names, no zero counters and none above
// MaxCounter, a sorted cloud.
func UnmarshalContext(b []byte) (Context, error) {
	if len(b) == 0 || b[0] != contextFormat {
		return Context{}, fmt.Errorf("%w: unknown format", ErrBadContext)
	}
	if err := wire.Check(b[1:]); err != nil {
		return Context{}, fmt.Errorf("%w: %v", ErrBadContext, err)
	}
	var c Context
	if err := msgpack.Unmarshal(b[1:], &c); err != nil {
		return Context{}, fmt.Errorf("%w: %v", ErrBadContext, err)
	}
	for n, counter := range c.VV {
		if n == "" {
			return Context{}, fmt.Errorf("%w: empty node name", ErrBadContext)
		}
		if counter > MaxCounter {
			return Context{}, fmt.Errorf("%w: counter %d of %s above %d", ErrBadContext, counter, n, MaxCounter)
		}
	}
	for _, d := range c.Cloud {
		if d.Node == "" || d.Counter == 0 || d.Counter > MaxCounter {
			return Context{}, fmt.Errorf("%w: bad dot %v", ErrBadContext, d)
		}
	}
	if !sort.SliceIsSorted(c.Cloud, func(i, j int) bool { return c.Cloud[i].Less(c.Cloud[j]) }) {
		sort.Slice(c.Cloud, func(i, j int) bool { return c.Cloud[i].Less(c.Cloud[j]) })
	}
	// Normalise: drop duplicates and dots the vector covers.
	norm := Context{}
	norm.Merge(c)
	return norm, nil
}
