package devcert

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// File names in a certificate directory.
const (
	CAFile    = "ca.pem"     // the CA certificate
	CAKeyFile = "ca-key.pem" // the CA's private key
)

// File modes: keys are readable by their owner only.
const (
	certMode os.FileMode = 0o644
	keyMode  os.FileMode = 0o600
)

// NodeFiles returns the paths of node id's certificate and key in dir:
// <id>.pem and <id>-key.pem.
func NodeFiles(dir, id string) (certFile, keyFile string) {
	return filepath.Join(dir, id+".pem"), filepath.Join(dir, id+"-key.pem")
}

// WriteCA writes ca's certificate and key to dir (CAFile, CAKeyFile),
// creating dir if needed.
func WriteCA(dir string, ca *CA) error {
	kp, err := ca.KeyPEM()
	if err != nil {
		return err
	}
	return writePair(dir, filepath.Join(dir, CAFile), ca.certPEM, filepath.Join(dir, CAKeyFile), kp)
}

// ReadCA loads the CA that WriteCA wrote to dir.
func ReadCA(dir string) (*CA, error) {
	c, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, fmt.Errorf("devcert: %w", err)
	}
	k, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("devcert: %w", err)
	}
	return LoadCA(c, k)
}

// WriteNode issues a certificate for node id (see Issue) and writes it and
// its key to dir (see NodeFiles), creating dir if needed. It returns the
// paths written.
func WriteNode(dir string, ca *CA, id string, hosts []string, validity time.Duration) (certFile, keyFile string, err error) {
	cp, kp, err := ca.Issue(id, hosts, validity)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = NodeFiles(dir, id)
	if err := writePair(dir, certFile, cp, keyFile, kp); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// writePair writes a certificate and its key; the key's file mode is set
// even when the file existed with a looser one.
func writePair(dir, certFile string, certPEM []byte, keyFile string, keyPEM []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("devcert: %w", err)
	}
	if err := os.WriteFile(keyFile, keyPEM, keyMode); err != nil {
		return fmt.Errorf("devcert: %w", err)
	}
	if err := os.Chmod(keyFile, keyMode); err != nil {
		return fmt.Errorf("devcert: %w", err)
	}
	if err := os.WriteFile(certFile, certPEM, certMode); err != nil {
		return fmt.Errorf("devcert: %w", err)
	}
	return nil
}

// WriteCluster makes a new CA named "quorumkv development CA" and a
// certificate for each of nodes (all covering hosts; nil means
// DefaultHosts), and writes them all to dir. It refuses to overwrite an
// existing CA key, so a second run cannot orphan the certificates of the
// first.
func WriteCluster(dir string, nodes, hosts []string, validity time.Duration) (*CA, error) {
	if _, err := os.Stat(filepath.Join(dir, CAKeyFile)); err == nil {
		return nil, fmt.Errorf("devcert: %w: %s", os.ErrExist, filepath.Join(dir, CAKeyFile))
	}
	ca, err := NewCA("quorumkv development CA", validity)
	if err != nil {
		return nil, err
	}
	if err := WriteCA(dir, ca); err != nil {
		return nil, err
	}
	for _, id := range nodes {
		if _, _, err := WriteNode(dir, ca, id, hosts, validity); err != nil {
			return nil, err
		}
	}
	return ca, nil
}
