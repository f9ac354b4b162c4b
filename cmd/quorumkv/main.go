// Command quorumkv runs a quorumkv node, a local development cluster, the
// client commands and the load benchmark.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/quorumkv/quorumkv/internal/buildinfo"
)

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bi := buildinfo.Get()
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(bi)
			}
			fmt.Fprintln(cmd.OutOrStdout(), bi.String())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

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
		Version:       buildinfo.Get().String(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(newServerCmd(), newDevCmd(), newGetCmd(), newPutCmd(), newDeleteCmd(),
		newStatusCmd(), newAntiEntropyCmd(), newClusterCmd(), newBenchCmd(), newCertsCmd(), newGossipKeyCmd(), newVersionCmd())
	return root
}
