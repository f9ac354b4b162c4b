package httpclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"
)

// Errors of New.
var (
	// ErrBadToken is a token with characters a header cannot carry
	// (spaces, control characters, non-ASCII).
	ErrBadToken = errors.New("httpclient: the token has characters a bearer token cannot have")
	// ErrNoCert is a CA file without a PEM certificate.
	ErrNoCert = errors.New("httpclient: no PEM certificate in the CA file")
	// ErrCrossHostRedirect is a redirect to another host, which would
	// carry the token there.
	ErrCrossHostRedirect = errors.New("httpclient: refusing a redirect to another host")
)

// Config configures a client.
type Config struct {
	// Token is sent as "Authorization: Bearer <Token>" on every request.
	// Default "": no Authorization header.
	Token string
	// CAFile is a PEM file of the CA certificates that an https:// node's
	// certificate must chain to. Default "": the system's roots.
	CAFile string
	// Timeout bounds each request, as http.Client.Timeout. Default 0: no
	// limit (contexts still apply).
	Timeout time.Duration
	// Transport is cloned as the client's transport, so its pool sizes
	// and timeouts apply. Default nil: a clone of http.DefaultTransport.
	Transport *http.Transport
}

// New returns a client configured by cfg.
func New(cfg Config) (*http.Client, error) {
	for i := 0; i < len(cfg.Token); i++ {
		if c := cfg.Token[i]; c <= ' ' || c >= 0x7f {
			return nil, ErrBadToken
		}
	}
	base := cfg.Transport
	if base == nil {
		base = http.DefaultTransport.(*http.Transport)
	}
	tr := base.Clone()
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("httpclient: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: %s", ErrNoCert, cfg.CAFile)
		}
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{}
		}
		tr.TLSClientConfig.RootCAs = pool
		tr.TLSClientConfig.MinVersion = tls.VersionTLS12
	}
	c := &http.Client{Transport: tr, Timeout: cfg.Timeout, CheckRedirect: sameHost}
	if cfg.Token != "" {
		c.Transport = &bearer{base: tr, header: "Bearer " + cfg.Token}
	}
	return c, nil
}

// sameHost follows at most 10 redirects, all to the first request's host.
func sameHost(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("httpclient: stopped after 10 redirects")
	}
	if req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
		return fmt.Errorf("%w: %s", ErrCrossHostRedirect, req.URL.Host)
	}
	return nil
}

// bearer adds the Authorization header to every request.
type bearer struct {
	base   http.RoundTripper
	header string
}

func (b *bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	// A RoundTripper must not change the caller's request.
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", b.header)
	return b.base.RoundTrip(r)
}

// CloseIdleConnections closes the idle connections of the transport
// underneath (http.Client.CloseIdleConnections calls it).
func (b *bearer) CloseIdleConnections() {
	if c, ok := b.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
