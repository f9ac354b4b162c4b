package version

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quorumkv/quorumkv/internal/wire"
)

// contextFormat is the first byte of an encoded context. Format 1 carried
// no key binding; it is refused (see ErrForeignContext).
const contextFormat byte = 2

// keyTagSize is the length of the key binding that follows the format
// byte: the first bytes of the SHA-256 of the key the context was issued
// for. It is not a secret and proves nothing about who made the context;
// it catches a context copied from another key, which would otherwise
// supersede versions of this key it never saw, or carry another key's
// counters here. Eight bytes make an accidental match a 2^-64 event.
const keyTagSize = 8

// MaxContextSize bounds an encoded context (the X-Context header), in bytes
// after base64 decoding.
const MaxContextSize = 16 << 10

// Errors of the context codec.
var (
	// ErrBadContext means a client sent a context that does not decode.
	ErrBadContext = errors.New("version: malformed context")
	// ErrForeignContext means a context was issued for another key, or by
	// a version of quorumkv that did not bind contexts to their key. The
	// client reads the key again and writes with that read's context.
	ErrForeignContext = errors.New("version: context issued for another key")
)

// keyTag is the binding of a context to key (see keyTagSize).
func keyTag(key []byte) [keyTagSize]byte {
	sum := sha256.Sum256(key)
	return [keyTagSize]byte(sum[:keyTagSize])
}

// EncodeContext renders the context of key as the opaque X-Context string:
// URL-safe base64 of a format byte, key's tag and msgpack. The empty
// context encodes as "" whatever the key.
func EncodeContext(key []byte, c Context) string {
	if c.IsEmpty() {
		return ""
	}
	b, err := MarshalContext(key, c)
	if err != nil { // a Context always marshals
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeContext parses an X-Context string sent for a write of key. "" is
// the empty context. A context issued for another key is refused with
// ErrForeignContext.
func DecodeContext(key []byte, s string) (Context, error) {
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
	return UnmarshalContext(key, b)
}

// MarshalContext encodes the context of key as a format byte, key's tag
// and msgpack.
func MarshalContext(key []byte, c Context) ([]byte, error) {
	body, err := msgpack.Marshal(&c)
	if err != nil {
		return nil, err
	}
	tag := keyTag(key)
	b := make([]byte, 0, 1+keyTagSize+len(body))
	b = append(append(b, contextFormat), tag[:]...)
	return append(b, body...), nil
}

// UnmarshalContext decodes MarshalContext's output for key and checks
// that it was issued for key (ErrForeignContext) and is well formed: no
// empty node names, no zero counters and none above MaxCounter, a sorted
// cloud. Whether its counters are plausible is Context.Plausible's
// question.
func UnmarshalContext(key, b []byte) (Context, error) {
	switch {
	case len(b) == 0:
		return Context{}, fmt.Errorf("%w: empty", ErrBadContext)
	case b[0] == 1:
		return Context{}, fmt.Errorf("%w: format 1 is not bound to a key", ErrForeignContext)
	case b[0] != contextFormat:
		return Context{}, fmt.Errorf("%w: unknown format %d", ErrBadContext, b[0])
	case len(b) < 1+keyTagSize:
		return Context{}, fmt.Errorf("%w: too short for its key binding", ErrBadContext)
	}
	if tag := keyTag(key); !bytes.Equal(b[1:1+keyTagSize], tag[:]) {
		return Context{}, ErrForeignContext
	}
	body := b[1+keyTagSize:]
	if err := wire.Check(body); err != nil {
		return Context{}, fmt.Errorf("%w: %v", ErrBadContext, err)
	}
	var c Context
	if err := msgpack.Unmarshal(body, &c); err != nil {
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
