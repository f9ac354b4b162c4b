package node

import (
	"crypto/tls"
	"fmt"

	"github.com/quorumkv/quorumkv/transport"
)

// loadTLS reads the node's certificate, key and CA (Config.TLSCertFile and
// the others) into a mutual TLS config, or returns nil when none is set.
// The certificate must name the node: peers would refuse it otherwise.
func loadTLS(cfg Config) (*tls.Config, error) {
	if cfg.TLSCertFile == "" {
		return nil, nil
	}
	c, err := transport.MutualTLS(cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSCAFile)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	id, err := transport.CommonNameID(c.Certificates[0].Leaf)
	if err != nil {
		return nil, fmt.Errorf("node: %s: %w", cfg.TLSCertFile, err)
	}
	if id != cfg.ID {
		return nil, fmt.Errorf("node: %s names node %q, not this node %q", cfg.TLSCertFile, id, cfg.ID)
	}
	return c, nil
}

// httpsConfig is the HTTP API's side of the node's TLS config: the same
// certificate, no client certificate asked (clients use tokens).
func httpsConfig(c *tls.Config) *tls.Config {
	h := c.Clone()
	h.ClientAuth = tls.NoClientCert
	h.ClientCAs = nil
	return h
}

// currentMember reports whether id is a member of the cluster as gossip
// knows it now: this node, or one in the gossip table that is not
// removed. A joining node is one as soon as gossip knows it, so that
// transfers to it work.
func (n *Node) currentMember(id string) bool {
	if id == n.cfg.ID {
		return true
	}
	if _, ok := n.meta(id); ok {
		return true // the address book holds the members that are not removed
	}
	m, ok := n.gossip.Member(id)
	return ok && !m.Meta.Removed()
}
