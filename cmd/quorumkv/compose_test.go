package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// docker-compose.yml cannot be run here (no Docker engine), so this test
// parses it and checks that it describes a working cluster: three nodes
// with distinct IDs, data on their own volumes, only the documented node
// flags, and every other node joining the first one's gossip address.
func TestComposeFileDescribesACluster(t *testing.T) {
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]struct {
			Command []string `yaml:"command"`
			Ports   []string `yaml:"ports"`
			Volumes []string `yaml:"volumes"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("docker-compose.yml does not parse: %v", err)
	}
	if len(f.Services) != 3 {
		t.Fatalf("%d services, want 3", len(f.Services))
	}
	stable := []string{"--id", "--data", "--http", "--rpc", "--gossip", "--join"}
	ids := map[string]bool{}
	gossip := map[string]string{}
	joins := map[string]string{}
	for name, s := range f.Services {
		if len(s.Command) == 0 || s.Command[0] != "server" {
			t.Fatalf("%s: command %v does not run a server", name, s.Command)
		}
		flags := map[string]string{}
		for i := 1; i < len(s.Command); i += 2 {
			if !slices.Contains(stable, s.Command[i]) || i+1 >= len(s.Command) {
				t.Fatalf("%s: %q is not one of the documented node flags %v", name, s.Command[i], stable)
			}
			flags[s.Command[i]] = s.Command[i+1]
		}
		for _, req := range stable[:5] {
			if flags[req] == "" {
				t.Fatalf("%s: missing %s", name, req)
			}
		}
		if ids[flags["--id"]] {
			t.Fatalf("duplicate node ID %s", flags["--id"])
		}
		ids[flags["--id"]] = true
		gossip[name] = flags["--gossip"]
		joins[name] = flags["--join"]
		if len(s.Volumes) != 1 || !strings.HasSuffix(s.Volumes[0], ":"+flags["--data"]) {
			t.Fatalf("%s: data %s is not on its own volume: %v", name, flags["--data"], s.Volumes)
		}
		vol, _, _ := strings.Cut(s.Volumes[0], ":")
		if _, ok := f.Volumes[vol]; !ok {
			t.Fatalf("%s: volume %s is not declared", name, vol)
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Fatalf("%s: port %s is published beyond loopback", name, p)
			}
		}
	}
	seeds := 0
	for name, j := range joins {
		if j == "" {
			seeds++
			continue
		}
		found := false
		for other, g := range gossip {
			found = found || (other != name && g == j)
		}
		if !found {
			t.Fatalf("%s joins %s, which is no other node's gossip address", name, j)
		}
	}
	if seeds != 1 {
		t.Fatalf("%d nodes without --join, want exactly one seed", seeds)
	}
}
