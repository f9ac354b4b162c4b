package node

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/devcert"
)

// loadTLS accepts a certificate naming the node and refuses one naming
// another node or files that do not load, each with a clear error.
func TestLoadTLS(t *testing.T) {
	dir := t.TempDir()
	if _, err := devcert.WriteCluster(dir, []string{"n1", "n2"}, nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, devcert.CAFile)
	files := func(certID, keyID string) Config {
		c := DefaultConfig()
		c.ID = "n1"
		c.TLSCertFile, _ = devcert.NodeFiles(dir, certID)
		_, c.TLSKeyFile = devcert.NodeFiles(dir, keyID)
		c.TLSCAFile = ca
		return c
	}
	if got, err := loadTLS(DefaultConfig()); got != nil || err != nil {
		t.Fatalf("no TLS files: %v, %v; want nil, nil", got, err)
	}
	got, err := loadTLS(files("n1", "n1"))
	if err != nil || got == nil {
		t.Fatalf("n1's own certificate: %v", err)
	}
	if h := httpsConfig(got); h.ClientCAs != nil || h.ClientAuth != 0 || len(h.Certificates) != 1 {
		t.Fatalf("HTTPS config asks clients for certificates: %+v", h.ClientAuth)
	}
	missing := files("n1", "n1")
	missing.TLSCAFile = filepath.Join(dir, "absent.pem")
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"another node's certificate", files("n2", "n2"), `names node "n2", not this node "n1"`},
		{"a key of another certificate", files("n1", "n2"), "key pair"},
		{"no CA file", missing, "tls CA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := loadTLS(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("loadTLS = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
