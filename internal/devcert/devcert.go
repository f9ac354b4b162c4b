package devcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

// DefaultValidity is a year: long enough for a development cluster, short
// enough that a forgotten certificate expires.
const DefaultValidity = 365 * 24 * time.Hour

// backdate is how far NotBefore is set in the past, so that a certificate
// is valid at once on a host whose clock is slightly behind.
const backdate = time.Hour

// defaultHosts backs DefaultHosts; never modified.
var defaultHosts = []string{"localhost", "127.0.0.1", "::1"}

// DefaultHosts returns the hosts a node certificate covers by default:
// "localhost", "127.0.0.1" and "::1" (the node ID is added by Issue when it
// is a valid DNS label).
func DefaultHosts() []string { return append([]string(nil), defaultHosts...) }

// Errors.
var (
	// ErrBadPEM: a PEM input holds no block of the expected type, or one
	// that does not parse.
	ErrBadPEM = errors.New("devcert: bad PEM")
	// ErrNotCA: LoadCA got a certificate that may not sign certificates,
	// or a key that does not match it.
	ErrNotCA = errors.New("devcert: not a CA")
	// ErrBadRequest: an empty node ID or common name, a non-positive
	// validity, or an empty host.
	ErrBadRequest = errors.New("devcert: bad request")
)

// CA is a certificate authority: a certificate and its private key. It is
// safe for concurrent use.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
}

// NewCA makes a self-signed CA named commonName, valid for validity from
// now (backdated an hour for clock skew).
func NewCA(commonName string, validity time.Duration) (*CA, error) {
	if commonName == "" || validity <= 0 {
		return nil, fmt.Errorf("%w: CA needs a name and a positive validity", ErrBadRequest)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devcert: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // signs leaves only
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("devcert: sign CA: %w", err)
	}
	return newCA(der, key)
}

func newCA(der []byte, key *ecdsa.PrivateKey) (*CA, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("devcert: parse CA: %w", err)
	}
	return &CA{cert: cert, certPEM: pemBlock("CERTIFICATE", der), key: key}, nil
}

// LoadCA reads a CA back from its PEM certificate and key (as CertPEM and
// KeyPEM wrote them, or any ECDSA CA in PKCS #8 or SEC 1 form).
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	der, err := pemDER(certPEM, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	kder, err := pemDER(keyPEM, "PRIVATE KEY", "EC PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	key, err := parseECKey(kder)
	if err != nil {
		return nil, err
	}
	ca, err := newCA(der, key)
	if err != nil {
		return nil, err
	}
	if !ca.cert.IsCA || ca.cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%w: %q may not sign certificates", ErrNotCA, ca.cert.Subject.CommonName)
	}
	if !key.PublicKey.Equal(ca.cert.PublicKey) {
		return nil, fmt.Errorf("%w: the key does not match the certificate", ErrNotCA)
	}
	return ca, nil
}

func parseECKey(der []byte) (*ecdsa.PrivateKey, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		if ek, ok := k.(*ecdsa.PrivateKey); ok {
			return ek, nil
		}
		return nil, fmt.Errorf("%w: key is %T, want ECDSA", ErrBadPEM, k)
	}
	k, err := x509.ParseECPrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: key: %w", ErrBadPEM, err)
	}
	return k, nil
}

// Certificate returns the CA's parsed certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM returns the CA certificate in PEM form: what nodes trust.
func (ca *CA) CertPEM() []byte { return append([]byte(nil), ca.certPEM...) }

// KeyPEM returns the CA's private key in PEM (PKCS #8) form.
func (ca *CA) KeyPEM() ([]byte, error) { return encodeKey(ca.key) }

// Issue makes a key and a certificate for node nodeID, signed by ca and
// valid for validity from now: CommonName nodeID, usable by a TLS server
// and client, with a SAN for each of hosts (an IP address or a DNS name).
// nil hosts means DefaultHosts. nodeID is added as a DNS name when it is a
// valid DNS label.
func (ca *CA) Issue(nodeID string, hosts []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if nodeID == "" || validity <= 0 {
		return nil, nil, fmt.Errorf("%w: a node certificate needs an ID and a positive validity", ErrBadRequest)
	}
	if hosts == nil {
		hosts = defaultHosts
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("devcert: generate key for %s: %w", nodeID, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: nodeID},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if err := addHosts(tmpl, hosts, nodeID); err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("devcert: sign certificate for %s: %w", nodeID, err)
	}
	kp, err := encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemBlock("CERTIFICATE", der), kp, nil
}

// addHosts fills the SANs of tmpl: an IP for each host that parses as one,
// a DNS name for the others, and nodeID when it is a DNS label not listed.
func addHosts(tmpl *x509.Certificate, hosts []string, nodeID string) error {
	seen := make(map[string]bool, len(hosts)+1)
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		switch {
		case h == "":
			return fmt.Errorf("%w: empty host", ErrBadRequest)
		case seen[h]:
			continue
		}
		seen[h] = true
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if isDNSLabel(nodeID) && !seen[nodeID] {
		tmpl.DNSNames = append(tmpl.DNSNames, nodeID)
	}
	return nil
}

// isDNSLabel reports whether s is a valid DNS label (RFC 1123): 1 to 63
// letters, digits and hyphens, neither first nor last a hyphen.
func isDNSLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// newSerial returns a random 128-bit serial number.
func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("devcert: serial: %w", err)
	}
	return n, nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("devcert: encode key: %w", err)
	}
	return pemBlock("PRIVATE KEY", der), nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// pemDER returns the bytes of the first PEM block in b of one of types.
func pemDER(b []byte, types ...string) ([]byte, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%w: no %s block", ErrBadPEM, strings.Join(types, " or "))
		}
		for _, t := range types {
			if blk.Type == t {
				return blk.Bytes, nil
			}
		}
	}
}
