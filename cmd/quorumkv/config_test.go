package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// A flag's value comes from the command line, else the environment, else
// the --config file, else its default.
func TestConfigSources(t *testing.T) {
	file := filepath.Join(t.TempDir(), "node.yaml")
	body := "timeout: 9s\nmax-siblings: 50\njoin: [a:7946, b:7946]\nlog-level: debug\nsync: false\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("QUORUMKV_TIMEOUT", "7s")
	cmd := newServerCmd()
	if err := cmd.ParseFlags([]string{"--max-siblings", "60", "--config", file}); err != nil {
		t.Fatal(err)
	}
	cfgFile, _ := cmd.Flags().GetString("config")
	if err := applyConfig(cmd, cfgFile); err != nil {
		t.Fatal(err)
	}
	for flag, want := range map[string]string{
		"timeout":      "7s", // the environment beats the file
		"max-siblings": "60", // the command line beats the file
		"join":         "a:7946,b:7946",
		"log-level":    "debug", // the file beats the default
		"sync":         "false",
		"partitions":   "256", // nobody set it
	} {
		if got := cmd.Flags().Lookup(flag).Value.String(); got != want {
			t.Errorf("--%s = %q, want %q", flag, got, want)
		}
	}

	// Mistakes are refused with where they are.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("no-such-flag: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd = newServerCmd()
	if err := applyConfig(cmd, bad); !errors.Is(err, errConfig) || !strings.Contains(err.Error(), "no-such-flag") {
		t.Fatalf("unknown key: %v", err)
	}
	t.Setenv("QUORUMKV_PARTITIONS", "many")
	cmd = newServerCmd()
	if err := applyConfig(cmd, ""); !errors.Is(err, errConfig) || !strings.Contains(err.Error(), "QUORUMKV_PARTITIONS") {
		t.Fatalf("bad environment value: %v", err)
	}
}

// Every server flag is in the README's configuration table, with its
// environment variable.
func TestReadmeListsEveryServerFlag(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	newServerCmd().Flags().VisitAll(func(f *pflag.Flag) {
		row := "| `--" + f.Name + "` | `" + envName(f.Name) + "` |"
		if !strings.Contains(readme, row) {
			t.Errorf("the README's configuration table lacks %s", row)
		}
	})
}
