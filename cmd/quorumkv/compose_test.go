package main

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// docker-compose.yml cannot be run here (no Docker engine), so this test
// parses it and checks that it describes a working, secure cluster: a
// one-shot certs service, three nodes with distinct IDs, data on their own
// volumes, only documented node flags, every secret flag on every node
// naming a file that the certs service's own command creates (the test
// runs that command's code into a temporary directory to check), and
// every other node joining the first one's gossip address.
func TestComposeFileDescribesACluster(t *testing.T) {
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	type service struct {
		Command   []string       `yaml:"command"`
		Ports     []string       `yaml:"ports"`
		Volumes   []string       `yaml:"volumes"`
		DependsOn map[string]any `yaml:"depends_on"`
		Restart   string         `yaml:"restart"`
	}
	var f struct {
		Services map[string]service `yaml:"services"`
		Volumes  map[string]any     `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("docker-compose.yml does not parse: %v", err)
	}
	certs, ok := f.Services["certs"]
	if !ok || len(certs.Command) == 0 || certs.Command[0] != "certs" {
		t.Fatalf("no certs service running `quorumkv certs`: %+v", certs)
	}
	certFlags := pairs(t, "certs", certs.Command[1:], []string{"--dir", "--nodes", "--hosts"})
	secretsVol, secretsDir := mount(t, "certs", certs.Volumes, certFlags["--dir"])
	// What the certs service writes, made here with the same arguments.
	tmp := t.TempDir()
	if _, err := writeSecrets(secretsSpec{dir: tmp, nodes: splitList(certFlags["--nodes"]), hosts: splitList(certFlags["--hosts"]), validity: 24 * time.Hour}, rand.Reader); err != nil {
		t.Fatalf("certs %v: %v", certs.Command[1:], err)
	}

	nodes := 0
	stable := []string{"--id", "--data", "--http", "--rpc", "--gossip", "--join"}
	secret := []string{"--gossip-key-file", "--token-file", "--tls-cert", "--tls-key", "--tls-ca"}
	ids := map[string]bool{}
	gossip := map[string]string{}
	joins := map[string]string{}
	for name, s := range f.Services {
		if name == "certs" {
			continue
		}
		nodes++
		if len(s.Command) == 0 || s.Command[0] != "server" {
			t.Fatalf("%s: command %v does not run a server", name, s.Command)
		}
		flags := pairs(t, name, s.Command[1:], append(slices.Clone(stable), secret...))
		for _, req := range append(stable[:5:5], secret...) {
			if flags[req] == "" {
				t.Fatalf("%s: missing %s", name, req)
			}
		}
		id := flags["--id"]
		if ids[id] {
			t.Fatalf("duplicate node ID %s", id)
		}
		ids[id] = true
		if !slices.Contains(splitList(certFlags["--nodes"]), id) {
			t.Fatalf("%s: node %s gets no certificate from the certs service (--nodes %s)", name, id, certFlags["--nodes"])
		}
		if flags["--tls-cert"] != secretsDir+"/"+id+".pem" || flags["--tls-key"] != secretsDir+"/"+id+"-key.pem" {
			t.Fatalf("%s: --tls-cert %s --tls-key %s are not node %s's own files", name, flags["--tls-cert"], flags["--tls-key"], id)
		}
		for _, fl := range secret {
			rel, ok := strings.CutPrefix(flags[fl], secretsDir+"/")
			if !ok {
				t.Fatalf("%s: %s %s is outside the secrets directory %s", name, fl, flags[fl], secretsDir)
			}
			if _, err := os.Stat(filepath.Join(tmp, rel)); err != nil {
				t.Fatalf("%s: %s %s is not a file the certs service writes: %v", name, fl, flags[fl], err)
			}
		}
		if _, ok := s.DependsOn["certs"]; !ok {
			t.Fatalf("%s: does not wait for the certs service", name)
		}
		// A node that starts before its seed answers exits: the restart
		// policy is its retrying join.
		if s.Restart != "unless-stopped" && s.Restart != "on-failure" && s.Restart != "always" {
			t.Fatalf("%s: restart %q; a node whose join failed would stay down", name, s.Restart)
		}
		gossip[name] = flags["--gossip"]
		joins[name] = flags["--join"]
		if len(s.Volumes) != 2 {
			t.Fatalf("%s: volumes %v, want its data volume and the secrets", name, s.Volumes)
		}
		vol, _ := mount(t, name, s.Volumes[:1], flags["--data"])
		if vol == secretsVol {
			t.Fatalf("%s: data on the secrets volume", name)
		}
		if sv, _ := mount(t, name, s.Volumes[1:], secretsDir); sv != secretsVol || !strings.HasSuffix(s.Volumes[1], ":ro") {
			t.Fatalf("%s: secrets mount %s, want %s read-only", name, s.Volumes[1], secretsVol)
		}
		for _, v := range []string{vol, secretsVol} {
			if _, ok := f.Volumes[v]; !ok {
				t.Fatalf("%s: volume %s is not declared", name, v)
			}
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Fatalf("%s: port %s is published beyond loopback", name, p)
			}
		}
	}
	if nodes != 3 {
		t.Fatalf("%d node services, want 3", nodes)
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

// pairs reads "--flag value" pairs, allowing only the flags in allowed.
func pairs(t *testing.T, service string, args, allowed []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for i := 0; i < len(args); i += 2 {
		if !slices.Contains(allowed, args[i]) || i+1 >= len(args) {
			t.Fatalf("%s: %q is not one of the documented flags %v", service, args[i], allowed)
		}
		out[args[i]] = args[i+1]
	}
	return out
}

// mount finds the volume mounted at dir among volumes ("vol:/dir[:ro]").
func mount(t *testing.T, service string, volumes []string, dir string) (vol, at string) {
	t.Helper()
	for _, v := range volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == dir {
			return parts[0], parts[1]
		}
	}
	t.Fatalf("%s: nothing mounted at %s: %v", service, dir, volumes)
	return "", ""
}
