package testcluster

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"path/filepath"
	"time"

	"github.com/quorumkv/quorumkv/internal/devcert"
	"github.com/quorumkv/quorumkv/node"
)

// makeCA makes the test's CA when Options.TLS is set, and points Client
// at it; nil otherwise.
func (c *Cluster) makeCA() *devcert.CA {
	if !c.opts.TLS {
		return nil
	}
	c.TLSDir = c.t.TempDir()
	ca, err := devcert.NewCA("testcluster CA", time.Hour)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := devcert.WriteCA(c.TLSDir, ca); err != nil {
		c.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())
	c.Client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
	return ca
}

// certify writes a certificate for cfg.ID and sets cfg's TLS files.
func (c *Cluster) certify(ca *devcert.CA, cfg *node.Config) {
	cert, key, err := devcert.WriteNode(c.TLSDir, ca, cfg.ID, nil, time.Hour)
	if err != nil {
		c.t.Fatal(err)
	}
	cfg.TLSCertFile, cfg.TLSKeyFile = cert, key
	cfg.TLSCAFile = filepath.Join(c.TLSDir, devcert.CAFile)
}
