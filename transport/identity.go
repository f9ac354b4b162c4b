package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// CommonNameID is the default TCPConfig.Identify: a node certificate's
// Subject CommonName is its node ID (as internal/devcert issues them). An
// empty CommonName is refused with ErrUnauthenticated.
func CommonNameID(cert *x509.Certificate) (string, error) {
	if cert == nil || cert.Subject.CommonName == "" {
		return "", fmt.Errorf("%w: certificate names no node (empty CommonName)", ErrUnauthenticated)
	}
	return cert.Subject.CommonName, nil
}

// MutualTLS loads this node's certificate and key and the cluster CA from
// PEM files into a TCPConfig.TLS: TLS 1.3, the certificate presented on
// both sides, client certificates required and verified against the CA,
// servers verified against it too.
func MutualTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("transport: tls certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("transport: tls key: %w", err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("transport: tls CA: %w", err)
	}
	return MutualTLSPEM(certPEM, keyPEM, caPEM)
}

// MutualTLSPEM is MutualTLS from PEM bytes.
func MutualTLSPEM(certPEM, keyPEM, caPEM []byte) (*tls.Config, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("transport: tls key pair: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("transport: tls CA: no certificate in PEM")
	}
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// serverTLS is the listener's side of cfg.TLS: a client certificate is
// required and verified against ClientCAs whatever cfg says.
func serverTLS(cfg *tls.Config) *tls.Config {
	s := cfg.Clone()
	s.ClientAuth = tls.RequireAndVerifyClientCert
	return s
}

// clientTLS is the dialling side of cfg.TLS. Nodes are dialled by address,
// so the server's certificate is checked against RootCAs for the server
// usage and for naming a node (identify), not for the host name.
func clientTLS(cfg *tls.Config, identify func(*x509.Certificate) (string, error)) *tls.Config {
	c := cfg.Clone()
	c.InsecureSkipVerify = true // the chain is verified by VerifyConnection below
	c.ServerName = ""
	roots := cfg.RootCAs
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		_, err := verifyPeer(cs.PeerCertificates, roots, x509.ExtKeyUsageServerAuth, identify)
		return err
	}
	return c
}

// verifyPeer verifies a peer's chain (leaf first) against roots for usage
// and returns the node its leaf names.
func verifyPeer(chain []*x509.Certificate, roots *x509.CertPool, usage x509.ExtKeyUsage, identify func(*x509.Certificate) (string, error)) (string, error) {
	if len(chain) == 0 {
		return "", fmt.Errorf("%w: peer sent no certificate", ErrUnauthenticated)
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{usage}}
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := chain[0].Verify(opts); err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	return identify(chain[0])
}

// peerID returns the node a handshaken TLS connection's peer is, from its
// leaf certificate (already verified by the handshake).
func peerID(tc *tls.Conn, identify func(*x509.Certificate) (string, error)) (string, error) {
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return "", fmt.Errorf("%w: peer sent no certificate", ErrUnauthenticated)
	}
	id, err := identify(certs[0])
	if err == nil && id == "" {
		err = fmt.Errorf("%w: certificate names no node", ErrUnauthenticated)
	}
	return id, err
}
