package node

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// On the OS filesystem the persisted keyring is private (0600), replaced
// whole with no temporary file left, and wins over the key file at the
// next start; nothing logged holds a key.
func TestPersistedGossipKeysOnDisk(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 16)
	keyFile := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(k1)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	n := &Node{cfg: Config{DataDir: dir, GossipKeyFile: keyFile}, log: zerolog.New(&logs)}
	keys, err := n.loadGossipKeys()
	if err != nil || len(keys) != 1 || !bytes.Equal(keys[0], k1) {
		t.Fatalf("from the key file: %d keys, %v", len(keys), err)
	}
	for _, ring := range [][][]byte{{k1, k2}, {k2, k1}, {k2}} {
		if err := n.persistGossipKeys(ring); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, gossipKeysFile)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("persisted keyring has mode %#o, want 0600", st.Mode().Perm())
		}
		if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
			t.Fatalf("temporary file left: %v", err)
		}
		restarted := &Node{cfg: n.cfg, log: zerolog.New(&logs)}
		got, err := restarted.loadGossipKeys()
		if err != nil || len(got) != len(ring) {
			t.Fatalf("after persisting %d keys, start with %d, %v", len(ring), len(got), err)
		}
		for i := range ring {
			if !bytes.Equal(got[i], ring[i]) {
				t.Fatalf("key %d differs after a restart", i)
			}
		}
	}
	for _, k := range [][]byte{k1, k2} {
		if enc := base64.StdEncoding.EncodeToString(k); strings.Contains(logs.String(), enc[:12]) {
			t.Fatalf("a key is in the log:\n%s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "out of date") {
		t.Fatalf("no warning that the key file's primary is no longer in the keyring:\n%s", logs.String())
	}
}

// A key file others may read is refused, and one with no keys too.
func TestGossipKeyFileRefused(t *testing.T) {
	dir := t.TempDir()
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)) + "\n"
	for _, tc := range []struct {
		name, body string
		perm       os.FileMode
	}{
		{"group-readable", key, 0o640},
		{"world-readable", key, 0o604},
		{"no keys", "# none\n", 0o600},
		{"missing", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if tc.perm != 0 {
				if err := os.WriteFile(path, []byte(tc.body), tc.perm); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tc.perm); err != nil {
					t.Fatal(err)
				}
			}
			n := &Node{cfg: Config{DataDir: t.TempDir(), GossipKeyFile: path}}
			if _, err := n.loadGossipKeys(); !errors.Is(err, ErrGossipKeyFile) {
				t.Fatalf("loaded: %v", err)
			}
		})
	}
}
