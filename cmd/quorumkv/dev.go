package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/quorumkv/quorumkv/internal/devcert"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/quorum"
)

// devCluster is a local cluster of nodes in this process, on loopback,
// with data on disk.
type devCluster struct {
	nodes []*node.Node
}

// startDevCluster starts count nodes with data under dir. Node i listens on
// HTTP basePort+i, RPC basePort-1000+i and gossip basePort-1000+100+i; a
// basePort of 0 picks free ports.
func startDevCluster(base node.Config, count int, dir string, basePort int, log zerolog.Logger, secrets string) (*devCluster, error) {
	c := &devCluster{}
	for i := 0; i < count; i++ {
		cfg := base
		cfg.ID = fmt.Sprintf("n%d", i+1)
		if secrets != "" {
			cfg.TLSCertFile, cfg.TLSKeyFile = devcert.NodeFiles(secrets, cfg.ID)
		}
		cfg.DataDir = filepath.Join(dir, cfg.ID)
		port := func(p int) string {
			if basePort == 0 {
				return "127.0.0.1:0"
			}
			return fmt.Sprintf("127.0.0.1:%d", p)
		}
		cfg.HTTPAddr = port(basePort + 1 + i)
		cfg.RPCAddr = port(basePort - 1000 + 1 + i)
		cfg.GossipAddr = port(basePort - 1000 + 101 + i)
		cfg.FastGossip = true
		cfg.Join = nil
		if i > 0 {
			cfg.Join = []string{c.nodes[0].GossipAddr()}
		}
		n, err := node.Open(cfg, log)
		if err != nil {
			return nil, errors.Join(err, c.Close())
		}
		c.nodes = append(c.nodes, n)
	}
	return c, nil
}

// HTTPAddrs lists the nodes' HTTP addresses.
func (c *devCluster) HTTPAddrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.HTTPAddr()
	}
	return out
}

// Close stops every node.
func (c *devCluster) Close() error {
	var errs []error
	for i := len(c.nodes) - 1; i >= 0; i-- {
		errs = append(errs, c.nodes[i].Close())
	}
	c.nodes = nil
	return errors.Join(errs...)
}

// startLocalCluster backs `bench --local N`: free ports, quiet logs.
func startLocalCluster(ctx context.Context, nodes int, dir string, sync bool, fanout quorum.Fanout) ([]string, func() error, error) {
	cfg := node.DefaultConfig()
	cfg.Sync = sync
	cfg.ReadFanout = fanout
	c, err := startDevCluster(cfg, nodes, dir, 0, zerolog.Nop(), "")
	if err != nil {
		return nil, nil, err
	}
	return c.HTTPAddrs(), c.Close, nil
}

// devSecrets creates (or reuses) the secrets of a secure dev cluster in
// DIR/secrets and points every node's configuration at them. It returns
// the directory and the admin token.
func devSecrets(cfg *node.Config, dir string, count int) (string, string, error) {
	sdir := filepath.Join(dir, "secrets")
	ids := make([]string, count)
	for i := range ids {
		ids[i] = fmt.Sprintf("n%d", i+1)
	}
	res, err := writeSecrets(secretsSpec{dir: sdir, nodes: ids, hosts: []string{"localhost", "127.0.0.1", "::1"}, validity: 365 * 24 * time.Hour}, rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("dev secrets: %w", err)
	}
	admin := res.adminToken
	if admin == "" {
		if admin, err = adminTokenFrom(filepath.Join(sdir, certsTokenFile)); err != nil {
			return "", "", err
		}
	}
	cfg.GossipKeyFile = filepath.Join(sdir, certsGossipFile)
	cfg.TLSCAFile = filepath.Join(sdir, certsCAFile)
	cfg.TokenFile = filepath.Join(sdir, certsTokenFile)
	return sdir, admin, nil
}

// adminTokenFrom returns the first admin token of a token file.
func adminTokenFrom(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "admin" {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("%s: no admin token", path)
}

func newDevCmd() *cobra.Command {
	var f nodeFlags
	var count, basePort int
	var dir string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local cluster on loopback with data on disk",
		Long: `dev starts a local cluster in this process: --nodes nodes on 127.0.0.1, each
with its data under --dir, joined through gossip. It prints each node's
address, the admin token and curl examples, and runs until interrupted.
Data survives restarts of dev.

The cluster is secure: dev creates a CA, node certificates, a gossip key
and a token file in DIR/secrets (reused on later runs), so the nodes talk
mutual TLS, gossip encrypted, and serve HTTPS that needs a token. With
--insecure it runs plain HTTP without tokens instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(cmd, f.config); err != nil {
				return err
			}
			if count < 1 {
				return fmt.Errorf("--nodes %d: a cluster needs at least one node", count)
			}
			log, err := f.logger()
			if err != nil {
				return err
			}
			var sdir, admin string
			if !f.insecure {
				if sdir, admin, err = devSecrets(&f.cfg, dir, count); err != nil {
					return err
				}
			}
			c, err := startDevCluster(f.cfg, count, dir, basePort, log, sdir)
			if err != nil {
				return err
			}
			printDevBanner(cmd.OutOrStdout(), c.HTTPAddrs(), dir, sdir, admin)
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
			<-sig
			return c.Close()
		},
	}
	f.register(cmd, false)
	cmd.Flags().IntVar(&count, "nodes", 3, "number of nodes")
	cmd.Flags().StringVar(&dir, "dir", "quorumkv-dev", "data directory; node i keeps its data in DIR/n<i>, the cluster's secrets in DIR/secrets")
	cmd.Flags().IntVar(&basePort, "base-port", 8080, "node i serves HTTP on base+i, RPC on base-1000+i, gossip on base-900+i (0: free ports)")
	return cmd
}

// printDevBanner tells the user where the nodes are and how to reach
// them: with the CA and the admin token when sdir is set.
func printDevBanner(out io.Writer, addrs []string, dir, sdir, admin string) {
	scheme, curl := "http", "curl"
	fmt.Fprintf(out, "quorumkv: %d nodes running, data in %s\n", len(addrs), dir)
	if sdir != "" {
		scheme = "https"
		ca := filepath.Join(sdir, certsCAFile)
		curl = fmt.Sprintf("curl --cacert %s -H \"Authorization: Bearer $QUORUMKV_TOKEN\"", ca)
		fmt.Fprintf(out, "secure: mutual TLS between nodes, encrypted gossip, HTTPS with tokens (secrets in %s)\n", sdir)
		fmt.Fprintf(out, "admin token: %s\n", admin)
		fmt.Fprintf(out, "\n  export QUORUMKV_TOKEN=%s QUORUMKV_CACERT=%s QUORUMKV_NODE=https://%s\n", admin, ca, addrs[0])
	} else {
		fmt.Fprintf(out, "INSECURE: plain HTTP and RPC, no tokens; anyone who reaches these ports can read, write and join\n")
	}
	fmt.Fprintln(out)
	for i, a := range addrs {
		fmt.Fprintf(out, "  n%d  %s://%s\n", i+1, scheme, a)
	}
	a := addrs[0]
	fmt.Fprintf(out, "\nTry:\n  %s -i -X PUT -H 'Content-Type: text/plain' --data 'hello' %s://%s/v1/kv/demo/greeting\n", curl, scheme, a)
	fmt.Fprintf(out, "  %s -i %s://%s/v1/kv/demo/greeting\n", curl, scheme, addrs[len(addrs)-1])
	fmt.Fprintf(out, "  %s -s %s://%s/v1/cluster\n\nPress Ctrl-C to stop.\n", curl, scheme, a)
}
