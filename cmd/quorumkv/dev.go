package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

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
func startDevCluster(base node.Config, count int, dir string, basePort int, log zerolog.Logger) (*devCluster, error) {
	c := &devCluster{}
	for i := 0; i < count; i++ {
		cfg := base
		cfg.ID = fmt.Sprintf("n%d", i+1)
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
	c, err := startDevCluster(cfg, nodes, dir, 0, zerolog.Nop())
	if err != nil {
		return nil, nil, err
	}
	return c.HTTPAddrs(), c.Close, nil
}

func newDevCmd() *cobra.Command {
	var f nodeFlags
	var count, basePort int
	var dir string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local cluster on loopback with data on disk",
		Long: `dev starts a local cluster in this process: --nodes nodes on 127.0.0.1, each
with its data under --dir, joined through gossip. It prints each node's HTTP
address and a curl example, and runs until interrupted. Data survives
restarts of dev.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if count < 1 {
				return fmt.Errorf("--nodes %d: a cluster needs at least one node", count)
			}
			log, err := f.logger()
			if err != nil {
				return err
			}
			c, err := startDevCluster(f.cfg, count, dir, basePort, log)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "quorumkv: %d nodes running, data in %s\n", count, dir)
			for i, a := range c.HTTPAddrs() {
				fmt.Fprintf(out, "  n%d  http://%s\n", i+1, a)
			}
			a := c.HTTPAddrs()[0]
			fmt.Fprintf(out, "\nTry:\n  curl -i -X PUT -H 'Content-Type: text/plain' --data 'hello' http://%s/v1/kv/demo/greeting\n", a)
			fmt.Fprintf(out, "  curl -i http://%s/v1/kv/demo/greeting\n", c.HTTPAddrs()[len(c.HTTPAddrs())-1])
			fmt.Fprintf(out, "  curl -s http://%s/v1/cluster\n\nPress Ctrl-C to stop.\n", a)
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
			<-sig
			return c.Close()
		},
	}
	f.register(cmd, false)
	cmd.Flags().IntVar(&count, "nodes", 3, "number of nodes")
	cmd.Flags().StringVar(&dir, "dir", "quorumkv-dev", "data directory; node i keeps its data in DIR/n<i>")
	cmd.Flags().IntVar(&basePort, "base-port", 8080, "node i serves HTTP on base+i, RPC on base-1000+i, gossip on base-900+i (0: free ports)")
	return cmd
}
