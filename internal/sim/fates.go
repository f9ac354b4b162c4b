package sim

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/quorumkv/quorumkv/gossip"
	"github.com/quorumkv/quorumkv/transport"
)

// fates decides what happens to each message during the fault phase: it
// is dropped, delayed, duplicated or loses its reply with rates the seed
// picks. A message's fate is a hash of the seed, its link, its content and
// how often that same message was sent on that link before, so it does not
// depend on the order in which goroutines send messages.
type fates struct {
	seed                          uint64
	on                            atomic.Bool
	drop, dropReply, dup, delayed uint64 // per 10,000 messages
	maxDelay                      time.Duration

	mu   sync.Mutex
	seen map[uint64]uint64 // message hash -> times sent
}

func newFates(seed uint64, rng *rand.Rand) *fates {
	return &fates{
		seed:      seed,
		drop:      uint64(rng.IntN(300)), // up to 3%
		dropReply: uint64(rng.IntN(200)), // up to 2%
		dup:       uint64(rng.IntN(300)), // up to 3%
		delayed:   uint64(rng.IntN(2000)),
		maxDelay:  time.Duration(1+rng.IntN(200)) * time.Millisecond,
		seen:      map[uint64]uint64{},
	}
}

func (f *fates) enable(on bool) { f.on.Store(on) }

// roll returns the random draw for one message.
func (f *fates) roll(from, to, kind string, body []byte) uint64 {
	d := xxhash.New()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], f.seed)
	_, _ = d.Write(b[:])
	_, _ = d.WriteString(from + "\x00" + to + "\x00" + kind + "\x00")
	_, _ = d.Write(body)
	h := d.Sum64()
	f.mu.Lock()
	n := f.seen[h]
	f.seen[h] = n + 1
	f.mu.Unlock()
	// splitmix64 of the hash and the repeat count.
	x := h + (n+1)*0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// rpc is the fate of an internode RPC.
func (f *fates) rpc(from, to, method string, body []byte) transport.Fate {
	if !f.on.Load() {
		return transport.Fate{}
	}
	x := f.roll(from, to, method, body)
	p := x % 10000
	var out transport.Fate
	switch {
	case p < f.drop:
		out.Drop = true
	case p < f.drop+f.dropReply:
		out.DropReply = true
	case p < f.drop+f.dropReply+f.dup:
		out.Dup = 1
	}
	if (x/10000)%10000 < f.delayed {
		out.Delay = time.Duration((x / 100000000) % uint64(f.maxDelay))
	}
	return out
}

// packet is the fate of a gossip packet: dropped or delayed as an RPC.
func (f *fates) packet(from, to string, b []byte) gossip.PacketFate {
	if !f.on.Load() {
		return gossip.PacketFate{}
	}
	x := f.roll(from, to, "gossip", b)
	var out gossip.PacketFate
	if x%10000 < f.drop {
		out.Drop = true
	}
	if (x/10000)%10000 < f.delayed {
		out.Delay = time.Duration((x / 100000000) % uint64(f.maxDelay))
	}
	return out
}
