package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/internal/devcert"
)

func testCA(t testing.TB) *devcert.CA {
	t.Helper()
	ca, err := devcert.NewCA("transport test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// testTLS is the MutualTLS config of node id, certified by ca.
func testTLS(t testing.TB, ca *devcert.CA, id string) *tls.Config {
	t.Helper()
	cp, kp, err := ca.Issue(id, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := MutualTLSPEM(cp, kp, ca.CertPEM())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// withTLS sets cfg and a short dial timeout.
func withTLS(cfg *tls.Config) func(*TCPConfig) {
	return func(c *TCPConfig) { c.TLS = cfg; c.DialTimeout = 2 * time.Second }
}

// peerRecorder is a handler that counts its runs and records the Peer and
// From of each request.
type peerRecorder struct {
	runs atomic.Int32
	mu   sync.Mutex
	seen []string // "peer/from"
}

func (p *peerRecorder) handle(_ context.Context, req *Request) ([]byte, error) {
	p.runs.Add(1)
	p.mu.Lock()
	p.seen = append(p.seen, req.Peer+"/"+req.From)
	p.mu.Unlock()
	return []byte("ok"), nil
}

func (p *peerRecorder) seenList() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

func TestTCPMutualTLS(t *testing.T) {
	ca := testCA(t)
	var rec peerRecorder
	srv, srvLogs := newTCP(t, "srv", rec.handle, withTLS(testTLS(t, ca, "srv")))
	cli, _ := newTCP(t, "cli", nil, withTLS(testTLS(t, ca, "cli")))
	ctx := ctxTimeout(t, 10*time.Second)
	if out, err := cli.CallNode(ctx, "srv", srv.Addr(), "m", []byte("secret")); err != nil || string(out) != "ok" {
		t.Fatalf("TLS call: %q %v", out, err)
	}
	if got := rec.seenList(); len(got) != 1 || got[0] != "cli/cli" {
		t.Fatalf("handler saw peer/from %v, want [cli/cli]", got)
	}

	// A plaintext client cannot talk to the TLS server.
	plain, _ := newTCP(t, "plain", nil, nil)
	if _, err := plain.Call(ctx, srv.Addr(), "m", nil); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("plaintext call to TLS server: %v, want ErrUnreachable", err)
	}
	waitFor(t, "the handshake failure logged", func() bool {
		return strings.Count(srvLogs.String(), "tls handshake failed") >= 1
	})
	if m := srv.Metrics(); m.Served != 1 || rec.runs.Load() != 1 {
		t.Fatalf("served %d requests (handler ran %d times), want only the authenticated one", m.Served, rec.runs.Load())
	}
}

// Peers that cannot prove they are the node they say are refused, and the
// handler never runs for them; a good peer is served meanwhile.
func TestTCPTLSRefusesStrangers(t *testing.T) {
	ca := testCA(t)
	var rec peerRecorder
	srv, _ := newTCP(t, "n2", rec.handle, withTLS(testTLS(t, ca, "n2")))
	ctx := ctxTimeout(t, 10*time.Second)

	// A client with the cluster's CA as its roots, but no certificate.
	noCert := testTLS(t, ca, "n1").Clone()
	noCert.Certificates = nil
	// A client certified by another CA that trusts the cluster's.
	foreign := testTLS(t, testCA(t), "n1")
	foreign.RootCAs = noCert.RootCAs

	tests := []struct {
		name      string
		cfg       *tls.Config
		handshake bool // the server refuses the handshake itself
	}{
		{"no client certificate", noCert, true},
		{"certificate from another CA", foreign, true},
		{"certificate for n9, frames from n1", testTLS(t, ca, "n9"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := srv.Metrics()
			err := rawTLSCall(t, srv.Addr(), tt.cfg, "n1")
			if err == nil {
				t.Fatal("the request was answered")
			}
			// The server counts the refusal after the client sees it.
			if tt.handshake {
				waitFor(t, "the handshake failure counted", func() bool {
					return srv.Metrics().HandshakeFailures == before.HandshakeFailures+1
				})
			} else {
				if !errors.Is(err, ErrUnauthenticated) {
					t.Fatalf("err %v, want ErrUnauthenticated", err)
				}
				if after := srv.Metrics(); after.Unauthenticated != before.Unauthenticated+1 {
					t.Fatalf("Unauthenticated %d -> %d, want one more", before.Unauthenticated, after.Unauthenticated)
				}
			}
			if rec.runs.Load() != 0 {
				t.Fatalf("the handler ran %d times for a refused peer", rec.runs.Load())
			}
		})
	}

	// The same refusal through a transport: n1 holding n9's certificate.
	impostor, _ := newTCP(t, "n1", nil, withTLS(testTLS(t, ca, "n9")))
	_, err := impostor.CallNode(ctx, "n2", srv.Addr(), "m", nil)
	if !errors.Is(err, ErrUnauthenticated) || !errors.Is(err, ErrNotSent) {
		t.Fatalf("impostor call = %v, want ErrUnauthenticated and ErrNotSent", err)
	}
	good, _ := newTCP(t, "n1", nil, withTLS(testTLS(t, ca, "n1")))
	if out, err := good.CallNode(ctx, "n2", srv.Addr(), "m", nil); err != nil || string(out) != "ok" {
		t.Fatalf("good peer: %q %v", out, err)
	}
	if got := rec.seenList(); len(got) != 1 || got[0] != "n1/n1" {
		t.Fatalf("handler saw peer/from %v, want only [n1/n1]", got)
	}
}

// rawTLSCall dials addr with cfg, sends one request frame from `from` and
// returns the reply's error: a RemoteError mapped as the transport maps
// it, or the connection's failure.
func rawTLSCall(t *testing.T, addr string, cfg *tls.Config, from string) error {
	t.Helper()
	cfg = cfg.Clone()
	cfg.ServerName = "127.0.0.1"
	nc, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write(appendFrame(nil, &frame{ID: 1, Kind: kindRequest, Method: "m", From: from})); err != nil {
		return err
	}
	f, _, err := readFrame(bufioReader(nc), 1<<20)
	if err != nil {
		return err
	}
	if f.Kind != kindError {
		return nil
	}
	return refused(&RemoteError{Code: f.ErrCode, Message: f.ErrMsg})
}

// CallNode checks the server's certificate: a server whose certificate
// names another node than the one meant is not sent the request.
func TestTCPCallNodeChecksServerCertificate(t *testing.T) {
	ca := testCA(t)
	var rec peerRecorder
	// Serving as n2 with n3's certificate: n2's own check of To would let
	// a request for n2 through, so only the client's check can stop it.
	srv, _ := newTCP(t, "n2", rec.handle, withTLS(testTLS(t, ca, "n3")))
	cli, _ := newTCP(t, "n1", nil, withTLS(testTLS(t, ca, "n1")))
	ctx := ctxTimeout(t, 10*time.Second)
	_, err := cli.CallNode(ctx, "n2", srv.Addr(), "m", nil)
	if !errors.Is(err, ErrWrongNode) || !errors.Is(err, ErrNotSent) {
		t.Fatalf("CallNode to a server certified as n3 = %v, want ErrWrongNode and ErrNotSent", err)
	}
	if rec.runs.Load() != 0 || srv.Metrics().FramesIn != 0 {
		t.Fatalf("the request reached the server (%d frames, %d runs)", srv.Metrics().FramesIn, rec.runs.Load())
	}

	// A server certified by another CA is not even connected to.
	other, _ := newTCP(t, "n4", rec.handle, withTLS(testTLS(t, testCA(t), "n4")))
	_, err = cli.CallNode(ctx, "n4", other.Addr(), "m", nil)
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, ErrNotSent) {
		t.Fatalf("CallNode to a server of another CA = %v, want ErrUnreachable and ErrNotSent", err)
	}
	if !errors.As(err, new(x509.UnknownAuthorityError)) {
		t.Fatalf("CallNode to a server of another CA = %v, want an unknown-authority error", err)
	}
	if rec.runs.Load() != 0 {
		t.Fatalf("a handler ran %d times", rec.runs.Load())
	}
}

func TestCommonNameID(t *testing.T) {
	if _, err := CommonNameID(&x509.Certificate{}); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("empty CommonName: %v, want ErrUnauthenticated", err)
	}
	if _, err := CommonNameID(nil); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("no certificate: %v, want ErrUnauthenticated", err)
	}
	c := &x509.Certificate{}
	c.Subject.CommonName = "n7"
	if id, err := CommonNameID(c); id != "n7" || err != nil {
		t.Fatalf("CommonNameID = %q, %v; want n7", id, err)
	}
}

// The in-memory network is the test's own: Peer is From.
func TestMemPeerIsFrom(t *testing.T) {
	n := NewNetwork(clock.Real())
	a, b := n.NewTransport("a", "node-a"), n.NewTransport("b", "node-b")
	defer a.Close()
	defer b.Close()
	var rec peerRecorder
	if err := b.Serve(rec.handle); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Call(ctxTimeout(t, 5*time.Second), "b", "m", nil); err != nil {
		t.Fatal(err)
	}
	if got := rec.seenList(); len(got) != 1 || got[0] != "node-a/node-a" {
		t.Fatalf("handler saw peer/from %v, want [node-a/node-a]", got)
	}
}
