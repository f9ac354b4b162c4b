package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/quorumkv/quorumkv/gossip"
	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/transport"
)

// Gossip encryption keys: where a node's keys come from, how it keeps them
// across restarts, and the cluster-wide rotation behind
// /v1/cluster/gossip-keys.
//
// A key file (Config.GossipKeyFile) holds one key per line, standard
// base64 of 16, 24 or 32 bytes; blank lines and lines starting with # are
// ignored, and the first key is the primary. It must not be readable or
// writable by group or others (chmod 600), as ssh asks of a private key.
// The node persists its live keyring in its data directory (gossipKeysFile,
// the same format, mode 0600, replaced atomically) whenever an operator
// changes it, and at start that file, when present, wins over the key file:
// a node restarted after a rotation keeps the new keys although its key
// file still names the old one. Keys are never logged or answered; their
// fingerprints (gossip.KeyFingerprint) are.

// gossipKeysFile is the persisted keyring, in the data directory.
const gossipKeysFile = "gossip.keys"

// maxKeyFileSize bounds what is read of a key file: a few hundred keys.
const maxKeyFileSize = 64 << 10

// rpcGossipKeys lists or changes a member's keys (gossipKeyRequest).
const rpcGossipKeys = "gossip.keys"

// Error codes of the gossip key endpoints.
const (
	// CodeBadGossipKey: the key is not standard base64 of 16, 24 or 32
	// bytes (400).
	CodeBadGossipKey = "bad_gossip_key"
	// CodeGossipKeyIncomplete: some members did not apply the change; the
	// answer says which, and the request may be repeated (502).
	CodeGossipKeyIncomplete = "gossip_key_incomplete"
)

// ErrGossipKeyFile is wrapped by the errors of a key file, or a persisted
// keyring, that cannot be used.
var ErrGossipKeyFile = errors.New("node: gossip key file")

// Key operations: over HTTP, POST /v1/cluster/gossip-keys/{op}, and over
// RPC, gossipKeyRequest.Op (with keyList, which lists).
const (
	keyInstall = "install"
	keyUse     = "use"
	keyRemove  = "remove"
	keyList    = "list"
)

// gossipKeyState serializes this node's key changes with their persisting.
type gossipKeyState struct {
	mu    sync.Mutex
	saved []byte // the persisted keyring last written or read
}

// NodeGossipKeys is one member's keys, by fingerprint.
type NodeGossipKeys struct {
	Node string `json:"node" msgpack:"node"`
	// Primary is the key the member sends with; Keys every key it
	// accepts, the primary first. Both are empty when its gossip is not
	// encrypted.
	Primary string   `json:"primary,omitempty" msgpack:"primary"`
	Keys    []string `json:"keys" msgpack:"keys"`
	// Error says why the member could not be asked or refused the change.
	Error string `json:"error,omitempty" msgpack:"-"`
}

// GossipKeys is the body of GET /v1/cluster/gossip-keys and of the
// changing POSTs, which also name the operation and the key's fingerprint.
// When a member failed, Error and Code say so (HTTP 502).
type GossipKeys struct {
	Op    string           `json:"op,omitempty"`
	Key   string           `json:"key,omitempty"`
	Nodes []NodeGossipKeys `json:"nodes"`
	Error string           `json:"error,omitempty"`
	Code  string           `json:"code,omitempty"`
}

// gossipKeyBody is the body of POST /v1/cluster/gossip-keys/{op}.
type gossipKeyBody struct {
	// Key is the key in standard base64.
	Key string `json:"key"`
	// Force skips the check that every member can take the change (for
	// use: every member has the key; for remove: none sends with it).
	Force bool `json:"force"`
}

// gossipKeyRequest is the body of rpcGossipKeys.
type gossipKeyRequest struct {
	Op  string `msgpack:"op"`
	Key []byte `msgpack:"key"`
}

// ParseGossipKeys reads keys in the key file format: one standard base64
// key per line, blank lines and # comments ignored, the first the primary.
// Errors name the line, never its content.
func ParseGossipKeys(b []byte) ([][]byte, error) {
	var keys [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		k, err := DecodeGossipKey(s)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("no keys")
	}
	return keys, nil
}

// DecodeGossipKey decodes one key in standard base64 and checks its size;
// errors wrap gossip.ErrBadKey.
func DecodeGossipKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: not standard base64", gossip.ErrBadKey)
	}
	return k, gossip.ValidateKey(k)
}

// formatGossipKeys writes keys in the key file format.
func formatGossipKeys(keys [][]byte) []byte {
	var b bytes.Buffer
	b.WriteString("# quorumkv gossip keyring, rewritten by the node on every key change. Primary first.\n")
	for _, k := range keys {
		b.WriteString(base64.StdEncoding.EncodeToString(k))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// readKeyFile reads and parses the operator's key file, refusing one that
// group or others may read or write.
func readKeyFile(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrGossipKeyFile, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrGossipKeyFile, err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%w: %s has mode %#o: others may read or change the cluster's key; chmod 600 it", ErrGossipKeyFile, path, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrGossipKeyFile, err)
	}
	if len(b) > maxKeyFileSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrGossipKeyFile, path, maxKeyFileSize)
	}
	keys, err := ParseGossipKeys(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrGossipKeyFile, path, err)
	}
	return keys, nil
}

// fs is the filesystem of the data directory.
func (n *Node) fs() vfs.FS {
	if n.cfg.FS == nil {
		return vfs.Default
	}
	return n.cfg.FS
}

// loadGossipKeys returns the keys gossip starts with: the persisted
// keyring if there is one, else the key file's, else none (unencrypted).
func (n *Node) loadGossipKeys() ([][]byte, error) {
	path := filepath.Join(n.cfg.DataDir, gossipKeysFile)
	b, err := readAll(n.fs(), path)
	switch {
	case err == nil:
		keys, err := ParseGossipKeys(b)
		if err != nil {
			return nil, fmt.Errorf("%w: persisted keyring %s: %w (remove it to start from the key file)", ErrGossipKeyFile, path, err)
		}
		n.gossipKeys.saved = b
		n.logKeys("persisted keyring", keys)
		if n.cfg.GossipKeyFile != "" {
			if fk, err := readKeyFile(n.cfg.GossipKeyFile); err != nil || !slices.ContainsFunc(keys, func(k []byte) bool { return bytes.Equal(k, fk[0]) }) {
				n.log.Warn().Str("key_file", n.cfg.GossipKeyFile).
					Msg("the gossip key file is out of date (its primary key is not in the persisted keyring, which wins): write the current keys into it")
			}
		}
		return keys, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("%w: read %s: %w", ErrGossipKeyFile, path, err)
	}
	if n.cfg.GossipKeyFile == "" {
		n.log.Warn().Msg("gossip is neither encrypted nor authenticated: any host that reaches the gossip port can join (--gossip-key-file)")
		return nil, nil
	}
	keys, err := readKeyFile(n.cfg.GossipKeyFile)
	if err != nil {
		return nil, err
	}
	n.logKeys("key file", keys)
	return keys, nil
}

func (n *Node) logKeys(from string, keys [][]byte) {
	n.log.Info().Str("from", from).Str("primary", gossip.KeyFingerprint(keys[0])).Int("keys", len(keys)).
		Msg("gossip is encrypted")
}

// readAll reads a whole file of fs.
func readAll(fs vfs.FS, path string) ([]byte, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxKeyFileSize))
}

// persistGossipKeys writes the live keyring to the data directory unless
// it is what was written last: a temporary file (mode 0600), fsynced, then
// renamed over the old one, and the directory fsynced.
// n.gossipKeys.mu must be held.
func (n *Node) persistGossipKeys(keys [][]byte) error {
	b := formatGossipKeys(keys)
	if bytes.Equal(b, n.gossipKeys.saved) {
		return nil
	}
	fs := n.fs()
	path := filepath.Join(n.cfg.DataDir, gossipKeysFile)
	tmp := path + ".tmp"
	_ = fs.Remove(tmp) // a leftover may have other permissions
	var f interface {
		io.WriteCloser
		Sync() error
	}
	var err error
	if n.cfg.FS == nil {
		f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	} else {
		f, err = fs.Create(tmp, vfs.WriteCategoryUnspecified)
	}
	if err != nil {
		return fmt.Errorf("persist gossip keys: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(fs, n.cfg.DataDir)
	}
	if err != nil {
		_ = fs.Remove(tmp)
		return fmt.Errorf("persist gossip keys: %w", err)
	}
	n.gossipKeys.saved = b
	return nil
}

func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// localGossipKeys lists this node's keys.
func (n *Node) localGossipKeys() NodeGossipKeys {
	out := NodeGossipKeys{Node: n.cfg.ID, Keys: []string{}}
	for i, k := range n.gossip.Keys() {
		fp := gossip.KeyFingerprint(k)
		if i == 0 {
			out.Primary = fp
		}
		out.Keys = append(out.Keys, fp)
	}
	return out
}

// changeGossipKey applies one key operation to this node and persists the
// keyring, returning the keys it then holds.
func (n *Node) changeGossipKey(op string, k []byte) (NodeGossipKeys, error) {
	n.gossipKeys.mu.Lock()
	defer n.gossipKeys.mu.Unlock()
	var err error
	switch op {
	case keyList:
		return n.localGossipKeys(), nil
	case keyInstall:
		err = n.gossip.InstallKey(k)
	case keyUse:
		err = n.gossip.UseKey(k)
	case keyRemove:
		err = n.gossip.RemoveKey(k)
	default:
		return NodeGossipKeys{}, fmt.Errorf("node: unknown gossip key operation %q", op)
	}
	if err != nil {
		return NodeGossipKeys{}, err
	}
	if err := n.persistGossipKeys(n.gossip.Keys()); err != nil {
		// Live, but a restart would bring the old keyring back.
		n.log.Error().Err(err).Str("op", op).Msg("gossip key changed but not persisted")
		return NodeGossipKeys{}, err
	}
	n.log.Info().Str("op", op).Str("key", gossip.KeyFingerprint(k)).Str("primary", gossip.KeyFingerprint(n.gossip.Keys()[0])).
		Msg("gossip keyring changed")
	return n.localGossipKeys(), nil
}

// serveGossipKeys serves rpcGossipKeys.
func (n *Node) serveGossipKeys(body []byte) ([]byte, error) {
	var req gossipKeyRequest
	if err := msgpack.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("node: decode gossip key request: %w", err)
	}
	out, err := n.changeGossipKey(req.Op, req.Key)
	if err != nil {
		return nil, err
	}
	return msgpack.Marshal(&out)
}

// callGossipKeys asks member id to apply a key operation (or list).
func (n *Node) callGossipKeys(ctx context.Context, id string, req gossipKeyRequest) (NodeGossipKeys, error) {
	m, ok := n.meta(id)
	if !ok {
		return NodeGossipKeys{}, fmt.Errorf("node: unknown member %q", id)
	}
	body, err := msgpack.Marshal(&req)
	if err != nil {
		return NodeGossipKeys{}, err
	}
	out, err := n.tr.CallNode(ctx, id, m.RPCAddr, rpcGossipKeys, body)
	if err != nil {
		var re *transport.RemoteError
		if errors.As(err, &re) {
			return NodeGossipKeys{}, errors.New(re.Message)
		}
		return NodeGossipKeys{}, err
	}
	if err := wire.Check(out); err != nil {
		return NodeGossipKeys{}, fmt.Errorf("node: gossip keys of %s: %w", id, err)
	}
	var nk NodeGossipKeys
	if err := msgpack.Unmarshal(out, &nk); err != nil {
		return NodeGossipKeys{}, fmt.Errorf("node: decode gossip keys of %s: %w", id, err)
	}
	return nk, nil
}

// fanOutGossipKeys applies req to this node and, in parallel, to every
// other member (removed ones aside), and returns each one's answer sorted
// by ID, with the IDs of those that failed.
func (n *Node) fanOutGossipKeys(ctx context.Context, req gossipKeyRequest) ([]NodeGossipKeys, []string) {
	ctx, cancel := context.WithTimeout(ctx, internalTimeout)
	defer cancel()
	members := n.gossip.Members() // sorted by ID
	out := make([]NodeGossipKeys, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		id := m.Meta.ID
		wg.Add(1)
		go func() {
			defer wg.Done()
			var nk NodeGossipKeys
			var err error
			if id == n.cfg.ID {
				nk, err = n.changeGossipKey(req.Op, req.Key)
			} else {
				nk, err = n.callGossipKeys(ctx, id, req)
			}
			if err != nil {
				nk = NodeGossipKeys{Node: id, Keys: []string{}, Error: err.Error()}
			}
			out[i] = nk
		}()
	}
	wg.Wait()
	var failed []string
	for _, nk := range out {
		if nk.Error != "" {
			failed = append(failed, nk.Node)
		}
	}
	return out, failed
}

func (n *Node) gossipKeyRoutes(mux *routes) {
	mux.HandleFunc("GET /v1/cluster/gossip-keys", n.handleGossipKeys)
	mux.HandleFunc("/v1/cluster/gossip-keys", methodNotAllowed("GET, HEAD"))
	for _, op := range []string{keyInstall, keyUse, keyRemove} {
		mux.HandleFunc("POST /v1/cluster/gossip-keys/"+op, n.handleGossipKeyChange(op))
		mux.HandleFunc("/v1/cluster/gossip-keys/"+op, methodNotAllowed("POST"))
	}
}

// handleGossipKeys lists every member's keys; members that could not be
// asked carry an error.
func (n *Node) handleGossipKeys(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		writeError(w, http.StatusBadRequest, CodeBadParameter, "this endpoint takes no parameters")
		return
	}
	nodes, _ := n.fanOutGossipKeys(r.Context(), gossipKeyRequest{Op: keyList})
	writeJSON(w, http.StatusOK, GossipKeys{Nodes: nodes})
}

// handleGossipKeyChange serves POST /v1/cluster/gossip-keys/{op}: it
// checks the key, and unless forced that every member can take the
// change, then applies it on every member.
func (n *Node) handleGossipKeyChange(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if len(r.URL.Query()) > 0 {
			writeError(w, http.StatusBadRequest, CodeBadParameter, "this endpoint takes no parameters; send a JSON body")
			return
		}
		var in gossipKeyBody
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			writeError(w, http.StatusBadRequest, CodeBadBody, `the body must be JSON such as {"key": "<base64>"}, with an optional "force"`)
			return
		}
		k, err := DecodeGossipKey(in.Key)
		if err != nil {
			writeError(w, http.StatusBadRequest, CodeBadGossipKey, "the key must be standard base64 of 16, 24 or 32 bytes (quorumkv gossip-key generate makes one)")
			return
		}
		if n.gossip.Keys() == nil {
			writeError(w, http.StatusConflict, CodeConflict, gossip.ErrNoKeyring.Error()+": restart every node with --gossip-key-file")
			return
		}
		fp := gossip.KeyFingerprint(k)
		if !in.Force && op != keyInstall {
			if msg := n.gossipKeyPreflight(r.Context(), op, fp); msg != "" {
				writeError(w, http.StatusConflict, CodeConflict, msg+`; or repeat with "force": true`)
				return
			}
		}
		nodes, failed := n.fanOutGossipKeys(r.Context(), gossipKeyRequest{Op: op, Key: k})
		out := GossipKeys{Op: op, Key: fp, Nodes: nodes}
		if len(failed) == 0 {
			writeJSON(w, http.StatusOK, out)
			return
		}
		out.Code = CodeGossipKeyIncomplete
		var why []string
		for _, nk := range nodes {
			if nk.Error != "" {
				why = append(why, nk.Node+": "+nk.Error)
			}
		}
		out.Error = fmt.Sprintf("gossip key %s %s failed on %d of %d members (%s); the others applied it: repeat the request", op, fp, len(failed), len(nodes), strings.Join(why, "; "))
		writeJSON(w, http.StatusBadGateway, out)
	}
}

// gossipKeyPreflight checks that every member can take op on the key with
// fingerprint fp without losing touch with the others: for use, every
// member has it; for remove, none sends with it. It returns what stands in
// the way, or "".
func (n *Node) gossipKeyPreflight(ctx context.Context, op, fp string) string {
	nodes, _ := n.fanOutGossipKeys(ctx, gossipKeyRequest{Op: keyList})
	var problems []string
	for _, nk := range nodes {
		switch {
		case nk.Error != "":
			problems = append(problems, fmt.Sprintf("%s could not be asked (%s)", nk.Node, nk.Error))
		case op == keyUse && !slices.Contains(nk.Keys, fp):
			problems = append(problems, fmt.Sprintf("%s has not installed %s: install it everywhere first", nk.Node, fp))
		case op == keyRemove && nk.Primary == fp:
			problems = append(problems, fmt.Sprintf("%s still sends with %s: use the new key everywhere first", nk.Node, fp))
		}
	}
	return strings.Join(problems, "; ")
}
