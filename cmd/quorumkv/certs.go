package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorumkv/quorumkv/internal/devcert"
)

// The files quorumkv certs writes into its directory, besides a
// certificate (<id>.pem) and key (<id>-key.pem) per node.
const (
	certsCAFile     = devcert.CAFile
	certsGossipFile = "gossip.key"
	certsTokenFile  = "tokens"
)

// secretsSpec says what writeSecrets creates.
type secretsSpec struct {
	dir      string
	nodes    []string
	hosts    []string
	validity time.Duration
	force    bool // replace node certificates that exist
}

// secretsResult lists what writeSecrets wrote and what it kept.
type secretsResult struct {
	written, kept []string
	adminToken    string // set only when the token file was created now
}

// writeSecrets creates, in spec.dir, what a secure cluster needs: a CA
// (kept when the directory has one, so that certificates for new nodes
// come from the same CA), a certificate and key per node, a gossip key and
// a token file with one token per role. Files that exist are kept, except
// node certificates with force; keys are written with mode 0600.
func writeSecrets(spec secretsSpec, rnd io.Reader) (secretsResult, error) {
	var res secretsResult
	if len(spec.nodes) == 0 {
		return res, errors.New("--nodes: name at least one node")
	}
	for _, id := range spec.nodes {
		if id == "" || strings.ContainsAny(id, `/\`) || id == "." || id == ".." || id == "ca" {
			return res, fmt.Errorf("--nodes: %q cannot name a node's certificate file", id)
		}
	}
	if err := os.MkdirAll(spec.dir, 0o700); err != nil {
		return res, err
	}
	path := func(name string) string { return filepath.Join(spec.dir, name) }
	ca, err := loadOrCreateCA(spec.dir, spec.validity, &res)
	if err != nil {
		return res, err
	}
	for _, id := range spec.nodes {
		certPath, keyPath := devcert.NodeFiles(spec.dir, id)
		if !spec.force && exists(certPath) && exists(keyPath) {
			res.kept = append(res.kept, certPath, keyPath)
			continue
		}
		if _, _, err := devcert.WriteNode(spec.dir, ca, id, spec.hosts, spec.validity); err != nil {
			return res, fmt.Errorf("certificate for %s: %w", id, err)
		}
		res.written = append(res.written, certPath, keyPath)
	}
	if gk := path(certsGossipFile); exists(gk) {
		res.kept = append(res.kept, gk)
	} else {
		key, err := randomBytes(rnd, 32)
		if err != nil {
			return res, err
		}
		body := "# quorumkv gossip key (AES-256); the first key is the primary\n" + base64.StdEncoding.EncodeToString(key) + "\n"
		if err := writeFileAtomic(gk, []byte(body), 0o600); err != nil {
			return res, err
		}
		res.written = append(res.written, gk)
	}
	if tf := path(certsTokenFile); exists(tf) {
		res.kept = append(res.kept, tf)
	} else {
		var b strings.Builder
		b.WriteString("# quorumkv client tokens: ROLE TOKEN [NAME]; roles read, write, admin\n")
		for _, role := range []string{"admin", "write", "read"} {
			raw, err := randomBytes(rnd, 32)
			if err != nil {
				return res, err
			}
			tok := base64.RawURLEncoding.EncodeToString(raw)
			if role == "admin" {
				res.adminToken = tok
			}
			fmt.Fprintf(&b, "%s %s %s\n", role, tok, role)
		}
		if err := writeFileAtomic(tf, []byte(b.String()), 0o600); err != nil {
			return res, err
		}
		res.written = append(res.written, tf)
	}
	return res, nil
}

// loadOrCreateCA loads the CA in dir, or creates one when dir has
// neither its certificate nor its key.
func loadOrCreateCA(dir string, validity time.Duration, res *secretsResult) (*devcert.CA, error) {
	certPath, keyPath := filepath.Join(dir, devcert.CAFile), filepath.Join(dir, devcert.CAKeyFile)
	certOK, keyOK := exists(certPath), exists(keyPath)
	switch {
	case certOK && keyOK:
		ca, err := devcert.ReadCA(dir)
		if err != nil {
			return nil, err
		}
		res.kept = append(res.kept, certPath, keyPath)
		return ca, nil
	case certOK || keyOK:
		return nil, fmt.Errorf("%s and %s: one exists without the other; move it away or restore its pair", certPath, keyPath)
	}
	ca, err := devcert.NewCA("quorumkv development CA", validity)
	if err != nil {
		return nil, err
	}
	if err := devcert.WriteCA(dir, ca); err != nil {
		return nil, err
	}
	res.written = append(res.written, certPath, keyPath)
	return ca, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}

func randomBytes(rnd io.Reader, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return nil, fmt.Errorf("random bytes: %w", err)
	}
	return b, nil
}

// writeFileAtomic writes data to a temporary file beside path, syncs it
// and renames it over path, so that a crash leaves the old file or the new
// one, never a part.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func newCertsCmd() *cobra.Command {
	var (
		spec  secretsSpec
		nodes string
		hosts string
	)
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Create a development CA, node certificates, a gossip key and a token file",
		Long: `certs writes into --dir what a secure cluster needs:

  ca.pem, ca-key.pem      a certificate authority (kept if --dir has one)
  <id>.pem, <id>-key.pem  a certificate per node, naming the node ID as its
                          Common Name, valid for server and client auth
  gossip.key              a 32-byte gossip encryption key
  tokens                  one client token per role: admin, write, read

Files that exist are kept (node certificates are replaced with --force),
so running it again with new --nodes issues certificates for new nodes
from the same CA. Keys are written with mode 0600. The CA key signs
certificates for the whole cluster: keep it off the nodes in production,
or use your own CA (see the README).`,
		Example: `  quorumkv certs --dir ./secrets --nodes n1,n2,n3
  quorumkv certs --dir ./secrets --nodes n4 --hosts db4.example.net,10.0.0.4`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec.nodes = splitList(nodes)
			spec.hosts = splitList(hosts)
			res, err := writeSecrets(spec, rand.Reader)
			out := cmd.OutOrStdout()
			for _, p := range res.written {
				fmt.Fprintf(out, "wrote %s\n", p)
			}
			for _, p := range res.kept {
				fmt.Fprintf(out, "kept  %s\n", p)
			}
			if err != nil {
				return err
			}
			d := spec.dir
			id := spec.nodes[0]
			cert, key := devcert.NodeFiles(d, id)
			fmt.Fprintf(out, "\nStart a node with:\n  quorumkv server --id %s --data DATA --gossip-key-file %s --tls-cert %s --tls-key %s --tls-ca %s --token-file %s ...\n",
				id, filepath.Join(d, certsGossipFile), cert, key, filepath.Join(d, certsCAFile), filepath.Join(d, certsTokenFile))
			fmt.Fprintf(out, "The admin token is the line starting with \"admin\" in %s.\n", filepath.Join(d, certsTokenFile))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&spec.dir, "dir", "", "directory to write into (created if missing; required)")
	fl.StringVar(&nodes, "nodes", "", "node IDs, comma separated (required)")
	fl.StringVar(&hosts, "hosts", "localhost,127.0.0.1,::1", "host names and IP addresses clients use to reach the nodes, put in every node certificate")
	fl.DurationVar(&spec.validity, "validity", 365*24*time.Hour, "how long the certificates are valid")
	fl.BoolVar(&spec.force, "force", false, "replace node certificates that exist (the CA, gossip key and tokens are always kept)")
	_ = cmd.MarkFlagRequired("dir")
	_ = cmd.MarkFlagRequired("nodes")
	return cmd
}
