package gossip

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// Gossip encryption keys. memberlist holds them in a Keyring: the primary
// encrypts every packet and stream this node sends, and a message received
// is accepted if any installed key decrypts it. A rotation without downtime
// is therefore three steps, each done on every member before the next
// starts: InstallKey(new) (every node can read the new key), UseKey(new)
// (every node sends with it), RemoveKey(old) (the old key no longer
// admits anyone).

// ValidateKey returns an error wrapping ErrBadKey unless k is a key
// Config.Keys accepts: 16, 24 or 32 bytes (AES-128, -192 or -256).
func ValidateKey(k []byte) error {
	if err := memberlist.ValidateKey(k); err != nil {
		return fmt.Errorf("%w: %d bytes, want 16, 24 or 32", ErrBadKey, len(k))
	}
	return nil
}

// KeyFingerprint names a key in logs and answers without revealing it: the
// first 8 hex digits of its SHA-256.
func KeyFingerprint(k []byte) string {
	sum := sha256.Sum256(k)
	return hex.EncodeToString(sum[:4])
}

// keyring returns a memberlist keyring holding copies of c.Keys, the first
// primary, or nil (encryption off) when there are none. Validate has
// checked the keys.
func (c Config) keyring() *memberlist.Keyring {
	if len(c.Keys) == 0 {
		return nil
	}
	keys := make([][]byte, len(c.Keys))
	for i, k := range c.Keys {
		keys[i] = bytes.Clone(k)
	}
	kr, err := memberlist.NewKeyring(keys[1:], keys[0])
	if err != nil { // unreachable: Validate checks every key
		panic(fmt.Sprintf("gossip: keyring of validated keys: %v", err))
	}
	return kr
}

// Keys returns copies of the installed keys, the primary first, or nil when
// the Gossip was started without keys.
func (g *Gossip) Keys() [][]byte {
	if g.keyring == nil {
		return nil
	}
	g.keyMu.Lock()
	defer g.keyMu.Unlock()
	return g.keysLocked()
}

func (g *Gossip) keysLocked() [][]byte {
	var out [][]byte
	for _, k := range g.keyring.GetKeys() {
		out = append(out, bytes.Clone(k))
	}
	return out
}

// InstallKey adds k to the keys that decrypt what this node receives;
// installing a key already there does nothing. Errors: ErrBadKey,
// ErrNoKeyring (the Gossip was started without keys: encryption cannot be
// turned on while running), ErrClosed.
func (g *Gossip) InstallKey(k []byte) error {
	if err := g.keyOp(k); err != nil {
		return err
	}
	g.keyMu.Lock()
	defer g.keyMu.Unlock()
	return g.keyring.AddKey(bytes.Clone(k))
}

// UseKey makes the installed key k the primary, which encrypts everything
// this node sends from now on; every member must have installed it first.
// Errors: ErrKeyNotInstalled, ErrBadKey, ErrNoKeyring, ErrClosed.
func (g *Gossip) UseKey(k []byte) error {
	if err := g.keyOp(k); err != nil {
		return err
	}
	g.keyMu.Lock()
	defer g.keyMu.Unlock()
	if !g.installedLocked(k) {
		return fmt.Errorf("%w: %s", ErrKeyNotInstalled, KeyFingerprint(k))
	}
	return g.keyring.UseKey(k)
}

// RemoveKey drops k: messages encrypted with it are refused from now on.
// Removing a key that is not installed does nothing, so a rotation step
// may be retried. Errors: ErrRemovePrimary (UseKey another key first),
// ErrBadKey, ErrNoKeyring, ErrClosed.
//
// memberlist's Keyring.RemoveKey shifts the keys after the one removed in
// place, under the feet of goroutines decrypting with the slice GetKeys
// gave them; removing the last key shifts nothing. So the keys after k are
// taken off from the end, k is removed as the last, and they are put back:
// messages sent with one of those keys in these few microseconds are
// dropped, as if lost. In the usual rotation (new primary, old key)
// the old key is the last and nothing is dropped.
func (g *Gossip) RemoveKey(k []byte) error {
	if err := g.keyOp(k); err != nil {
		return err
	}
	g.keyMu.Lock()
	defer g.keyMu.Unlock()
	keys := g.keysLocked()
	if bytes.Equal(keys[0], k) {
		return fmt.Errorf("%w: %s", ErrRemovePrimary, KeyFingerprint(k))
	}
	at := -1
	for i, have := range keys {
		if bytes.Equal(have, k) {
			at = i
		}
	}
	if at < 0 {
		return nil
	}
	for i := len(keys) - 1; i >= at; i-- {
		if err := g.keyring.RemoveKey(keys[i]); err != nil {
			return fmt.Errorf("gossip: remove key: %w", err)
		}
	}
	for _, back := range keys[at+1:] {
		if err := g.keyring.AddKey(back); err != nil {
			return fmt.Errorf("gossip: restore key: %w", err)
		}
	}
	return nil
}

// keyOp checks what every key change needs.
func (g *Gossip) keyOp(k []byte) error {
	switch {
	case g.closed.Load():
		return ErrClosed
	case g.keyring == nil:
		return ErrNoKeyring
	}
	return ValidateKey(k)
}

func (g *Gossip) installedLocked(k []byte) bool {
	for _, have := range g.keyring.GetKeys() {
		if bytes.Equal(have, k) {
			return true
		}
	}
	return false
}
