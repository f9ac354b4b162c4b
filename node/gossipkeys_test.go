package node_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quorumkv/quorumkv/gossip"
	"github.com/quorumkv/quorumkv/internal/simcluster"
	"github.com/quorumkv/quorumkv/node"
)

// gossipKey is a 32-byte key of one repeated byte.
func gossipKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// writeKeyFile writes keys as a key file with mode perm and returns its
// path.
func writeKeyFile(t *testing.T, name string, perm os.FileMode, keys ...[]byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	b := []byte("# test keys\n\n")
	for _, k := range keys {
		b = append(b, base64.StdEncoding.EncodeToString(k)+"\n"...)
	}
	if err := os.WriteFile(path, b, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

// putKeys writes n keys through node 0 and returns their values.
func putKeys(t *testing.T, c *simcluster.Cluster, n int) map[string][]byte {
	t.Helper()
	data := map[string][]byte{}
	for i := range n {
		path := fmt.Sprintf("/v1/kv/b/k%d", i)
		data[path] = fmt.Appendf(nil, "value %d", i)
		if r := simDo(t, c, i%c.Size(), "PUT", path+"?w=all", data[path], nil); r.Status != http.StatusNoContent {
			t.Fatalf("PUT %s: %d %s", path, r.Status, r.Body)
		}
	}
	return data
}

// checkKeys reads every key back through every running node.
func checkKeys(t *testing.T, c *simcluster.Cluster, data map[string][]byte) {
	t.Helper()
	for i := range c.Size() {
		if !c.Running(i) {
			continue
		}
		for path, want := range data {
			if r := simDo(t, c, i, "GET", path+"?r=all", nil, nil); r.Status != http.StatusOK || !bytes.Equal(r.Body, want) {
				t.Fatalf("GET %s via %s: %d %q, want %q", path, c.ID(i), r.Status, r.Body, want)
			}
		}
	}
}

// gossipStatuses returns each member's gossip status as node i sees it.
func gossipStatuses(t *testing.T, c *simcluster.Cluster, i int) map[string]string {
	t.Helper()
	r := simDo(t, c, i, "GET", "/v1/cluster", nil, nil)
	var st node.ClusterStatus
	if err := json.Unmarshal(r.Body, &st); err != nil {
		t.Fatalf("GET /v1/cluster via %s: %v", c.ID(i), err)
	}
	out := map[string]string{}
	for _, m := range st.Members {
		out[m.ID] = m.Gossip
	}
	return out
}

// allAliveIn reports whether every running node sees exactly ids, each
// alive in gossip and on its ring.
func allAliveIn(t *testing.T, c *simcluster.Cluster, ids ...string) error {
	for i := range c.Size() {
		if !c.Running(i) {
			continue
		}
		st := gossipStatuses(t, c, i)
		if len(st) != len(ids) {
			return fmt.Errorf("%s sees %v, want %v", c.ID(i), st, ids)
		}
		r := c.Node(i).Ring()
		for _, id := range ids {
			if st[id] != "alive" {
				return fmt.Errorf("%s sees %v, want %v alive", c.ID(i), st, ids)
			}
			if r == nil || !r.Contains(id) || r.Len() != len(ids) {
				return fmt.Errorf("%s's ring lacks %s or has others", c.ID(i), id)
			}
		}
	}
	return nil
}

// A node with the wrong gossip key, or with none, is not admitted: it does
// not start (it reaches no seed), no member lists it or gives it a ring
// share, and the data reads back unchanged. A key file others may read
// is refused.
func TestWrongGossipKeyNotAdmitted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		good := writeKeyFile(t, "good.keys", 0o600, gossipKey(1))
		c := simcluster.Start(t, simcluster.Options{Nodes: 3, Configure: func(_ int, cfg *node.Config) {
			cfg.GossipKeyFile = good
		}})
		data := putKeys(t, c, 12)
		for _, tc := range []struct {
			name    string
			keyFile string
			err     error
		}{
			{"wrong key", writeKeyFile(t, "wrong.keys", 0o600, gossipKey(2)), nil},
			{"no key", "", nil},
			{"right key as a secondary", writeKeyFile(t, "second.keys", 0o600, gossipKey(2), gossipKey(1)), nil},
			{"world-readable file", writeKeyFile(t, "open.keys", 0o644, gossipKey(1)), node.ErrGossipKeyFile},
		} {
			i, err := c.TryAdd(func(cfg *node.Config) { cfg.GossipKeyFile = tc.keyFile })
			if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) {
				t.Fatalf("%s: %s started (%v), want it refused", tc.name, c.ID(i), err)
			}
			c.Advance(5 * time.Second)
			if err := allAliveIn(t, c, "n1", "n2", "n3"); err != nil {
				t.Fatalf("after %s: %v", tc.name, err)
			}
		}
		checkKeys(t, c, data)
	})
}

// gossipKeysDo calls a gossip key endpoint on node i and decodes the
// answer.
func gossipKeysDo(t *testing.T, c *simcluster.Cluster, i int, method, path string, body any) (int, node.GossipKeys) {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	r := simDo(t, c, i, method, "/v1/cluster/gossip-keys"+path, b, nil)
	var out node.GossipKeys
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatalf("%s %s: %d %s", method, path, r.Status, r.Body)
	}
	return r.Status, out
}

// keysEverywhere checks that every listed node holds keys (fingerprints,
// primary first) and that the list covers ids.
func keysEverywhere(t *testing.T, what string, got node.GossipKeys, ids []string, keys ...[]byte) {
	t.Helper()
	want := []string{}
	for _, k := range keys {
		want = append(want, gossip.KeyFingerprint(k))
	}
	var seen []string
	for _, nk := range got.Nodes {
		seen = append(seen, nk.Node)
		if nk.Error != "" || nk.Primary != want[0] || !slices.Equal(nk.Keys, want) {
			t.Fatalf("%s: %s holds %v (primary %s, error %q), want %v", what, nk.Node, nk.Keys, nk.Primary, nk.Error, want)
		}
	}
	if !slices.Equal(seen, ids) {
		t.Fatalf("%s: answered for %v, want %v", what, seen, ids)
	}
}

// The rotation endpoints rotate every member's key through any node, with
// no member failing in between; the steps out of order are refused; each
// node persists its keyring, so one restarted with only the old key in
// its key file rejoins with the new key; and the old key no longer admits
// a node.
func TestGossipKeyRotationOverHTTP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		old, nw := gossipKey(1), gossipKey(2)
		oldFile := writeKeyFile(t, "old.keys", 0o600, old)
		c := simcluster.Start(t, simcluster.Options{Nodes: 3, Configure: func(_ int, cfg *node.Config) {
			cfg.GossipKeyFile = oldFile
		}})
		ids := []string{"n1", "n2", "n3"}
		data := putKeys(t, c, 12)
		status, got := gossipKeysDo(t, c, 1, "GET", "", nil)
		if status != http.StatusOK {
			t.Fatalf("GET: %d", status)
		}
		keysEverywhere(t, "at start", got, ids, old)

		b64 := base64.StdEncoding.EncodeToString
		for _, step := range []struct {
			name   string
			via    int
			op     string
			body   any
			status int
			code   string
			keys   [][]byte // every node's after the step, primary first
		}{
			{"bad base64", 0, "install", map[string]any{"key": "not base64!"}, 400, node.CodeBadGossipKey, [][]byte{old}},
			{"short key", 0, "install", map[string]any{"key": b64(nw[:20])}, 400, node.CodeBadGossipKey, [][]byte{old}},
			{"unknown field", 0, "install", map[string]any{"key": b64(nw), "x": 1}, 400, node.CodeBadBody, [][]byte{old}},
			{"use before install", 0, "use", map[string]any{"key": b64(nw)}, 409, node.CodeConflict, [][]byte{old}},
			{"install", 0, "install", map[string]any{"key": b64(nw)}, 200, "", [][]byte{old, nw}},
			{"install again", 2, "install", map[string]any{"key": b64(nw)}, 200, "", [][]byte{old, nw}},
			{"remove the primary", 1, "remove", map[string]any{"key": b64(old)}, 409, node.CodeConflict, [][]byte{old, nw}},
			{"use", 1, "use", map[string]any{"key": b64(nw)}, 200, "", [][]byte{nw, old}},
			{"remove", 2, "remove", map[string]any{"key": b64(old)}, 200, "", [][]byte{nw}},
			{"remove again", 0, "remove", map[string]any{"key": b64(old)}, 200, "", [][]byte{nw}},
		} {
			status, got := gossipKeysDo(t, c, step.via, "POST", "/"+step.op, step.body)
			if status != step.status || got.Code != step.code {
				t.Fatalf("%s: %d %s %q, want %d %s", step.name, status, got.Code, got.Error, step.status, step.code)
			}
			if status == http.StatusOK {
				keysEverywhere(t, step.name, got, ids, step.keys...)
			}
			c.Advance(3 * time.Second) // several probe rounds with the new keyrings
			if err := allAliveIn(t, c, ids...); err != nil {
				t.Fatalf("after %s: %v", step.name, err)
			}
			_, got = gossipKeysDo(t, c, step.via, "GET", "", nil)
			keysEverywhere(t, step.name+", listed", got, ids, step.keys...)
		}

		c.Stop(2)
		c.Restart(2) // its key file still holds only the old key
		c.Await(time.Minute, "n3 back in gossip with the new key", func() bool { return allAliveIn(t, c, ids...) == nil })
		_, got = gossipKeysDo(t, c, 2, "GET", "", nil)
		keysEverywhere(t, "after n3's restart", got, ids, nw)
		checkKeys(t, c, data)

		if i, err := c.TryAdd(func(cfg *node.Config) { cfg.GossipKeyFile = oldFile }); err == nil {
			t.Fatalf("%s started with the old key only", c.ID(i))
		}
		c.Advance(5 * time.Second)
		if err := allAliveIn(t, c, ids...); err != nil {
			t.Fatalf("after a node with the old key tried: %v", err)
		}
	})
}

// A member that cannot be reached makes a change incomplete: 502 naming
// it, the others applied, and the same request once it is back completes.
func TestGossipKeyChangeReportsUnreachableMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		keyFile := writeKeyFile(t, "k.keys", 0o600, gossipKey(1))
		c := simcluster.Start(t, simcluster.Options{Nodes: 3, Configure: func(_ int, cfg *node.Config) {
			cfg.GossipKeyFile = keyFile
		}})
		body := map[string]any{"key": base64.StdEncoding.EncodeToString(gossipKey(2))}
		c.Partition([]int{2})
		status, got := gossipKeysDo(t, c, 0, "POST", "/install", body)
		if status != http.StatusBadGateway || got.Code != node.CodeGossipKeyIncomplete {
			t.Fatalf("install with n3 cut off: %d %s, want 502 %s", status, got.Code, node.CodeGossipKeyIncomplete)
		}
		for _, nk := range got.Nodes {
			if (nk.Error != "") != (nk.Node == "n3") || nk.Node != "n3" && len(nk.Keys) != 2 {
				t.Fatalf("with n3 cut off: %+v", nk)
			}
		}
		// use is refused while a member may lack the key.
		if status, got := gossipKeysDo(t, c, 0, "POST", "/use", body); status != http.StatusConflict {
			t.Fatalf("use while n3 is cut off: %d %s", status, got.Error)
		}
		c.Heal()
		status, got = gossipKeysDo(t, c, 0, "POST", "/install", body)
		if status != http.StatusOK {
			t.Fatalf("install again after the heal: %d %s", status, got.Error)
		}
		keysEverywhere(t, "after the retry", got, []string{"n1", "n2", "n3"}, gossipKey(1), gossipKey(2))
	})
}

func TestParseGossipKeys(t *testing.T) {
	k16, k32 := base64.StdEncoding.EncodeToString(make([]byte, 16)), base64.StdEncoding.EncodeToString(gossipKey(7))
	for _, tc := range []struct {
		name, in string
		keys     int
		ok       bool
	}{
		{"one", k32 + "\n", 1, true},
		{"comments, blanks, spaces", "# c\n\n  " + k32 + "  \n#" + k16 + "\n\t" + k16, 2, true},
		{"crlf", k32 + "\r\n" + k16 + "\r\n", 2, true},
		{"empty", "", 0, false},
		{"only comments", "# nothing\n\n", 0, false},
		{"bad base64", k32 + "\n%%%\n", 0, false},
		{"url base64", "_-" + k32[2:], 0, false},
		{"10 bytes", base64.StdEncoding.EncodeToString(make([]byte, 10)), 0, false},
		{"two on a line", k32 + " " + k32, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := node.ParseGossipKeys([]byte(tc.in))
			if tc.ok != (err == nil) || len(keys) != tc.keys {
				t.Fatalf("%d keys, %v; want %d, ok=%v", len(keys), err, tc.keys, tc.ok)
			}
			if err != nil && bytes.Contains([]byte(err.Error()), []byte(k32[:8])) {
				t.Fatalf("the error %q shows key material", err)
			}
		})
	}
}

// FuzzParseGossipKeys: whatever the file, parsing does not panic, every key
// returned is a valid size, and an error never echoes the input.
func FuzzParseGossipKeys(f *testing.F) {
	f.Add([]byte(base64.StdEncoding.EncodeToString(gossipKey(1)) + "\n"))
	f.Add([]byte("# c\n\n" + base64.StdEncoding.EncodeToString(make([]byte, 24))))
	f.Add([]byte("QUJD\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := node.ParseGossipKeys(b)
		if err != nil {
			if len(b) >= 16 && bytes.Contains([]byte(err.Error()), b) {
				t.Fatalf("error %q echoes the input", err)
			}
			return
		}
		for _, k := range keys {
			if gossip.ValidateKey(k) != nil {
				t.Fatalf("a %d-byte key parsed", len(k))
			}
		}
	})
}
