package main

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// readCert parses the first certificate of a PEM file.
func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("%s holds no certificate", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// certs writes a CA, a certificate per node naming its ID and signed by
// the CA for client and server auth, a gossip key and a token file, with
// the keys private; a second run keeps everything, and a run for a new
// node issues its certificate from the same CA.
func TestCertsCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	out, err := run(t, "certs", "--dir", dir, "--nodes", "n1,n2,n3", "--hosts", "localhost,127.0.0.1,db.example.net")
	if err != nil {
		t.Fatalf("certs: %v\n%s", err, out)
	}
	ca := readCert(t, filepath.Join(dir, "ca.pem"))
	if !ca.IsCA {
		t.Fatal("ca.pem is not a CA certificate")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, id := range []string{"n1", "n2", "n3"} {
		c := readCert(t, filepath.Join(dir, id+".pem"))
		if c.Subject.CommonName != id {
			t.Fatalf("%s.pem names %q", id, c.Subject.CommonName)
		}
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Fatalf("%s.pem does not verify for usage %v: %v", id, usage, err)
			}
		}
		if err := c.VerifyHostname("db.example.net"); err != nil {
			t.Fatalf("%s.pem: %v", id, err)
		}
		if err := c.VerifyHostname("127.0.0.1"); err != nil {
			t.Fatalf("%s.pem: %v", id, err)
		}
	}
	for _, name := range []string{"ca-key.pem", "n1-key.pem", "gossip.key", "tokens"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v, want 0600", name, st.Mode().Perm())
		}
	}
	gk, err := os.ReadFile(filepath.Join(dir, "gossip.key"))
	if err != nil {
		t.Fatal(err)
	}
	var keys [][]byte
	for _, l := range strings.Split(string(gk), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			k, err := base64.StdEncoding.DecodeString(l)
			if err != nil {
				t.Fatalf("gossip.key: %v", err)
			}
			keys = append(keys, k)
		}
	}
	if len(keys) != 1 || len(keys[0]) != 32 {
		t.Fatalf("gossip.key holds %d keys (first %d bytes), want one of 32 bytes", len(keys), len(keys[0]))
	}
	tokens, _ := os.ReadFile(filepath.Join(dir, "tokens"))
	var roles []string
	seen := map[string]bool{}
	for _, l := range strings.Split(string(tokens), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		roles = append(roles, f[0])
		if len(f[1]) < 32 || seen[f[1]] {
			t.Fatalf("token for %s is short or repeated", f[0])
		}
		seen[f[1]] = true
	}
	if !slices.Equal(roles, []string{"admin", "write", "read"}) {
		t.Fatalf("token roles %v", roles)
	}
	if strings.Contains(out, strings.Fields(strings.Split(string(tokens), "\n")[1])[1]) {
		t.Fatal("certs printed a token")
	}

	// Again, plus a new node: everything kept, n4 from the same CA.
	before, _ := os.ReadFile(filepath.Join(dir, "n1.pem"))
	out, err = run(t, "certs", "--dir", dir, "--nodes", "n1,n4")
	if err != nil {
		t.Fatalf("certs again: %v\n%s", err, out)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "n1.pem"))
	if string(before) != string(after) {
		t.Fatal("a second run replaced n1's certificate without --force")
	}
	if tk, _ := os.ReadFile(filepath.Join(dir, "tokens")); string(tk) != string(tokens) {
		t.Fatal("a second run replaced the token file")
	}
	if _, err := readCert(t, filepath.Join(dir, "n4.pem")).Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("n4 is not signed by the existing CA: %v", err)
	}
	if _, err := run(t, "certs", "--dir", dir, "--nodes", "n1", "--force"); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "n1.pem")); string(again) == string(before) {
		t.Fatal("--force kept n1's certificate")
	}

	// Bad node names never become paths outside the directory.
	for _, bad := range []string{"../x", "a/b", "ca"} {
		if _, err := run(t, "certs", "--dir", dir, "--nodes", bad); err == nil {
			t.Fatalf("certs --nodes %q succeeded", bad)
		}
	}
	// A CA certificate without its key is refused, not replaced.
	lone := t.TempDir()
	if err := os.WriteFile(filepath.Join(lone, "ca.pem"), before, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "certs", "--dir", lone, "--nodes", "n1"); err == nil || !strings.Contains(err.Error(), "without the other") {
		t.Fatalf("certs with a lone ca.pem: %v", err)
	}
}

// A server without secrets refuses to start and names what is missing;
// the error says how to make them and that --insecure exists.
func TestServerRefusesToStartWithoutSecrets(t *testing.T) {
	dir := t.TempDir()
	base := []string{"server", "--id", "n1", "--data", dir, "--http", "127.0.0.1:0", "--rpc", "127.0.0.1:0", "--gossip", "127.0.0.1:0"}
	_, err := run(t, base...)
	if !errors.Is(err, errNoSecrets) {
		t.Fatalf("server without secrets: %v, want %v", err, errNoSecrets)
	}
	for _, want := range []string{"--gossip-key-file", "--tls-cert", "--token-file", "quorumkv certs", "--insecure"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("the refusal %q does not mention %s", err, want)
		}
	}
	_, err = run(t, append(base, "--token-file", filepath.Join(dir, "tokens"))...)
	if !errors.Is(err, errNoSecrets) || strings.Contains(err.Error(), "--token-file") || !strings.Contains(err.Error(), "--gossip-key-file") {
		t.Fatalf("server with only a token file: %v, want a refusal naming the rest", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a refused server wrote %d entries into its data directory", len(entries))
	}
}

// version and --version print the binary's build information.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, err := run(t, args...)
		if err != nil || !strings.HasPrefix(out, "quorumkv ") || !strings.Contains(out, "go1.") {
			t.Fatalf("%v: %q %v", args, out, err)
		}
	}
	out, err := run(t, "version", "--json")
	var bi struct {
		Version   string `json:"version"`
		GoVersion string `json:"go_version"`
	}
	if err != nil || json.Unmarshal([]byte(out), &bi) != nil || bi.Version == "" || !strings.HasPrefix(bi.GoVersion, "go1.") {
		t.Fatalf("version --json: %q %v", out, err)
	}
}
