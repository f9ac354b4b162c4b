// Package devcert makes a development certificate authority and the node
// certificates it signs, with crypto/x509 alone.
//
// A CA is an ECDSA P-256 key and a self-signed certificate allowed to sign
// certificates and nothing else. A node certificate names its node ID as
// its Subject CommonName (transport.CommonNameID reads it back), may
// authenticate both a server and a client (mutual TLS), and lists the
// host names and IP addresses it may be reached at:
//
//	ca, _ := devcert.NewCA("quorumkv dev CA", devcert.DefaultValidity)
//	_ = devcert.WriteCA(dir, ca)                      // ca.pem, ca-key.pem
//	_ = devcert.WriteNode(dir, ca, "n1", nil, devcert.DefaultValidity) // n1.pem, n1-key.pem
//
// Key files are written with mode 0600 and certificates with 0644. The
// CA is for development and tests: its key sits next to the certificates
// it signs. Production clusters bring their own CA.
package devcert
