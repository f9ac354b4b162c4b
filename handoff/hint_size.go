package handoff

import "github.com/quorumkv/quorumkv/version"

// Bounds of msgpack framing, used by hintSize. Each is at least what the
// encoder spends on the item, so the estimate never falls short.
const (
	hintRowOverhead     = 1 + 1 + 8 + 64 // 'h', 0x00, hash, and slack for the store's value framing
	hintSetOverhead     = 1 + 2 + 5 + 2  // map header, "s" + array header, "c"
	hintContextOverhead = 1 + 2 + 5 + 2 + 5
	hintVVEntry         = 5 + 9 // string header + uint64
	hintDotOverhead     = 1 + 2 + 5 + 2 + 9
	hintSiblingOverhead = 1 + 2 + hintDotOverhead + 2 + 5 + 2 + 5 + 2 + 1 + 2 + 9
)

// hintSize is an upper bound on the bytes a hint of set for (owner, k)
// adds to the owner's pending hint bytes in the store: the row key plus the
// msgpack encoding of the set, with every header counted at its largest
// size. Because a merged hint (version.Sync) holds only siblings and context
// entries of its two inputs, the growth of a merged hint is also bounded by
// hintSize of the incoming set. It is also the size the byte rate limit
// charges for a hint.
func hintSize(owner string, k []byte, set version.Set) int64 {
	n := int64(hintRowOverhead+len(owner)+len(k)) + hintSetOverhead + hintContextOverhead
	for _, s := range set.Siblings {
		n += int64(hintSiblingOverhead + len(s.Dot.Node) + len(s.Value) + len(s.ContentType))
	}
	for node := range set.Context.VV {
		n += int64(hintVVEntry + len(node))
	}
	for _, d := range set.Context.Cloud {
		n += int64(hintDotOverhead + len(d.Node))
	}
	return n
}
