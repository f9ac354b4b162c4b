package devcert

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func mustCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func parseCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(certPEM)
	if blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate: %q", certPEM)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func verify(cert *x509.Certificate, ca *CA, usage x509.ExtKeyUsage) error {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())
	_, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err
}

func TestNewCA(t *testing.T) {
	ca := mustCA(t)
	c := parseCert(t, ca.CertPEM())
	if !c.IsCA || c.KeyUsage&x509.KeyUsageCertSign == 0 || c.Subject.CommonName != "test CA" {
		t.Fatalf("CA certificate: IsCA=%v usage=%b CN=%q", c.IsCA, c.KeyUsage, c.Subject.CommonName)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Fatalf("not self-signed: %v", err)
	}
	if _, err := NewCA("", time.Hour); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("NewCA without a name = %v, want ErrBadRequest", err)
	}
}

func TestIssue(t *testing.T) {
	ca := mustCA(t)
	tests := []struct {
		name    string
		id      string
		hosts   []string
		wantDNS []string
		wantIPs []string
	}{
		{"default hosts and the ID", "n1", nil, []string{"localhost", "n1"}, []string{"127.0.0.1", "::1"}},
		{"an ID that is no DNS label", "node_1", nil, []string{"localhost"}, []string{"127.0.0.1", "::1"}},
		{"explicit hosts, the ID listed once", "db-2", []string{"10.0.0.2", "db-2", "db-2.example.com", "10.0.0.2"}, []string{"db-2", "db-2.example.com"}, []string{"10.0.0.2"}},
		{"no hosts at all", "n3", []string{}, []string{"n3"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp, kp, err := ca.Issue(tt.id, tt.hosts, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			c := parseCert(t, cp)
			if c.Subject.CommonName != tt.id || c.IsCA {
				t.Fatalf("CN %q IsCA %v, want %q and false", c.Subject.CommonName, c.IsCA, tt.id)
			}
			if !slices.Equal(c.DNSNames, tt.wantDNS) {
				t.Fatalf("DNS SANs %v, want %v", c.DNSNames, tt.wantDNS)
			}
			var ips []string
			for _, ip := range c.IPAddresses {
				ips = append(ips, ip.String())
			}
			if !slices.Equal(ips, tt.wantIPs) {
				t.Fatalf("IP SANs %v, want %v", ips, tt.wantIPs)
			}
			for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
				if err := verify(c, ca, u); err != nil {
					t.Fatalf("does not verify for usage %v: %v", u, err)
				}
			}
			if _, err := tls.X509KeyPair(cp, kp); err != nil {
				t.Fatalf("certificate and key do not pair: %v", err)
			}
		})
	}
	if err := verifyOther(t, ca); err == nil {
		t.Fatal("a certificate verified against a CA that did not sign it")
	}
	for _, bad := range []struct {
		id    string
		hosts []string
	}{{"", nil}, {"n1", []string{""}}} {
		if _, _, err := ca.Issue(bad.id, bad.hosts, time.Hour); !errors.Is(err, ErrBadRequest) {
			t.Fatalf("Issue(%q, %q) = %v, want ErrBadRequest", bad.id, bad.hosts, err)
		}
	}
}

// verifyOther issues from another CA and verifies against ca.
func verifyOther(t *testing.T, ca *CA) error {
	cp, _, err := mustCA(t).Issue("n1", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return verify(parseCert(t, cp), ca, x509.ExtKeyUsageServerAuth)
}

// A CA read back from its PEM files signs certificates that the original
// CA certificate verifies.
func TestLoadCA(t *testing.T) {
	ca := mustCA(t)
	kp, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := LoadCA(ca.CertPEM(), kp)
	if err != nil {
		t.Fatal(err)
	}
	cp, _, err := back.Issue("n2", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(parseCert(t, cp), ca, x509.ExtKeyUsageClientAuth); err != nil {
		t.Fatalf("certificate of the reloaded CA: %v", err)
	}

	leafPEM, leafKey, err := ca.Issue("n1", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := mustCA(t).KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		cert, key []byte
		want      error
	}{
		{"a leaf is no CA", leafPEM, leafKey, ErrNotCA},
		{"another CA's key", ca.CertPEM(), otherKey, ErrNotCA},
		{"no certificate", kp, kp, ErrBadPEM},
		{"no key", ca.CertPEM(), ca.CertPEM(), ErrBadPEM},
		{"garbage", []byte("not pem"), kp, ErrBadPEM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := LoadCA(tt.cert, tt.key); !errors.Is(err, tt.want) {
				t.Fatalf("LoadCA = %v, want %v", err, tt.want)
			}
		})
	}
}

// WriteCluster writes the files under their names and modes, the node
// certificates serve a real mutual TLS handshake, and a second run does
// not replace the CA.
func TestWriteCluster(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	if _, err := WriteCluster(dir, []string{"n1", "n2"}, nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	want := map[string]os.FileMode{
		"ca.pem": 0o644, "ca-key.pem": 0o600,
		"n1.pem": 0o644, "n1-key.pem": 0o600,
		"n2.pem": 0o644, "n2-key.pem": 0o600,
	}
	for name, mode := range want {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Fatalf("%s has mode %v, want %v", name, st.Mode().Perm(), mode)
		}
	}
	if _, err := WriteCluster(dir, []string{"n3"}, nil, time.Hour); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second WriteCluster = %v, want os.ErrExist", err)
	}
	ca, err := ReadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := handshake(t, dir, ca); got != "n2" {
		t.Fatalf("server saw client %q, want n2", got)
	}
}

// handshake runs mutual TLS between n1 (server) and n2 (client) over
// loopback and returns the client's CommonName as the server saw it.
func handshake(t *testing.T, dir string, ca *CA) string {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())
	load := func(id string) tls.Certificate {
		c, k := NodeFiles(dir, id)
		pair, err := tls.LoadX509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return pair
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{load("n1")},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			got <- err.Error()
			return
		}
		got <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
		Certificates: []tls.Certificate{load("n2")},
		RootCAs:      pool,
		ServerName:   "127.0.0.1",
		MinVersion:   tls.VersionTLS13,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return <-got
}
