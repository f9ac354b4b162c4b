// Command quorumkv runs a quorumkv node, a local development cluster, the
// client commands and the load benchmark.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "quorumkv:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "quorumkv",
		Short:         "A Dynamo-style leaderless key-value database",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServerCmd(), newDevCmd(), newGetCmd(), newPutCmd(), newDeleteCmd(),
		newStatusCmd(), newAntiEntropyCmd(), newClusterCmd(), newBenchCmd(), newCertsCmd(), newGossipKeyCmd())
	return root
}
