package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quorumkv/quorumkv/node"
)

// The `quorumkv gossip-key ...` commands: make a gossip encryption key,
// list every member's keys, and rotate the cluster's key without downtime
// (install the new key, use it, remove the old one). They call the node's
// /v1/cluster/gossip-keys endpoints (node/gossipkeys.go), which apply each
// step on every member. Keys are printed only by generate; everything else
// names them by fingerprint.

// generatedKeySize is the size of a generated key: AES-256.
const generatedKeySize = 32

func newGossipKeyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gossip-key",
		Short: "Make gossip encryption keys and rotate the cluster's key",
		Long: `Gossip is encrypted and authenticated with the keys of --gossip-key-file.
To rotate the key without downtime, on any node:

  quorumkv gossip-key generate > new.key
  quorumkv gossip-key install - < new.key   # every member accepts it
  quorumkv gossip-key use - < new.key       # every member sends with it
  quorumkv gossip-key remove OLD-KEY        # the old key admits no one

Each step applies to every member; if one fails, the command names the
members that did not take it: repeat it. Each node keeps its keyring in its
data directory across restarts; update the key files too, for new nodes.
Pass KEY as - to read it from stdin and keep it out of shell history.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newGossipKeyGenerateCmd(), newGossipKeyListCmd(),
		newGossipKeyChangeCmd("install", "Install a key on every member: each accepts messages encrypted with it", false),
		newGossipKeyChangeCmd("use", "Make an installed key every member's primary: each sends with it", true),
		newGossipKeyChangeCmd("remove", "Remove a key from every member: messages encrypted with it are refused", true),
	)
	return cmd
}

func newGossipKeyGenerateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "generate",
		Short: "Print a new random 32-byte key in base64 (a line of a key file)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k := make([]byte, generatedKeySize)
			if _, err := rand.Read(k); err != nil {
				return err
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), base64.StdEncoding.EncodeToString(k))
			return err
		},
	}
}

func newGossipKeyListCmd() *cobra.Command {
	var f clientFlags
	var raw bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every member's gossip keys by fingerprint, the primary first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := f.admin(cmd.Context(), http.MethodGet, "/v1/cluster/gossip-keys", nil)
			if err != nil {
				return err
			}
			return printGossipKeys(cmd.OutOrStdout(), body, raw)
		},
	}
	f.registerAdmin(cmd)
	cmd.Flags().BoolVar(&raw, "json", false, "print the node's JSON")
	return cmd
}

// newGossipKeyChangeCmd returns the command of one rotation step; a
// forceable step gets --force.
func newGossipKeyChangeCmd(op, short string, forceable bool) *cobra.Command {
	var f clientFlags
	var raw, force bool
	cmd := &cobra.Command{
		Use:   op + " KEY|-",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := keyArg(cmd.InOrStdin(), args[0])
			if err != nil {
				return err
			}
			in := struct {
				Key   string `json:"key"`
				Force bool   `json:"force"`
			}{key, force}
			body, err := f.admin(cmd.Context(), http.MethodPost, "/v1/cluster/gossip-keys/"+op, in)
			if err != nil {
				return err
			}
			return printGossipKeys(cmd.OutOrStdout(), body, raw)
		},
	}
	f.registerAdmin(cmd)
	cmd.Flags().BoolVar(&raw, "json", false, "print the node's JSON")
	if forceable {
		cmd.Flags().BoolVar(&force, "force", false, "skip the check that no member would be cut off (a member that is down for good)")
	}
	return cmd
}

// keyArg returns the key an argument names (- reads one line of r), checked
// before it goes anywhere.
func keyArg(r io.Reader, arg string) (string, error) {
	if arg == "-" {
		b, err := io.ReadAll(io.LimitReader(r, 4<<10))
		if err != nil {
			return "", fmt.Errorf("read the key from stdin: %w", err)
		}
		arg = string(b)
	}
	arg = strings.TrimSpace(arg)
	if _, err := node.DecodeGossipKey(arg); err != nil {
		return "", errors.New("the key must be standard base64 of 16, 24 or 32 bytes, as quorumkv gossip-key generate prints")
	}
	return arg, nil
}

// printGossipKeys prints an answer of the gossip key endpoints, as JSON
// with raw.
func printGossipKeys(w io.Writer, body []byte, raw bool) error {
	if raw {
		_, err := w.Write(body)
		return err
	}
	var gk node.GossipKeys
	if err := json.Unmarshal(body, &gk); err != nil {
		return fmt.Errorf("decode the answer: %w", err)
	}
	if gk.Op != "" {
		fmt.Fprintf(w, "%s %s: done on every member\n\n", gk.Op, gk.Key)
	}
	fmt.Fprintf(w, "%-12s %-9s %s\n", "NODE", "PRIMARY", "KEYS")
	for _, nk := range gk.Nodes {
		if nk.Error != "" {
			fmt.Fprintf(w, "%-12s %-9s error: %s\n", nk.Node, "?", nk.Error)
			continue
		}
		primary := nk.Primary
		if primary == "" {
			primary = "-" // not encrypted
		}
		fmt.Fprintf(w, "%-12s %-9s %s\n", nk.Node, primary, strings.Join(nk.Keys, ","))
	}
	return nil
}
