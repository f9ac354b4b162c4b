package httpclient

import (
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secret = "client-secret-0123456789"

// echoAuth answers with the Authorization header it got.
func echoAuth(w http.ResponseWriter, r *http.Request) {
	_, _ = io.WriteString(w, r.Header.Get("Authorization"))
}

// caFile writes srv's certificate as a PEM CA file.
func caFile(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func get(t *testing.T, c *http.Client, url string) (string, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestTokenAndCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(echoAuth))
	defer srv.Close()
	ca := caFile(t, srv)
	for _, tc := range []struct {
		name    string
		cfg     Config
		want    string
		wantErr string
	}{
		{name: "token over TLS verified by the CA", cfg: Config{Token: secret, CAFile: ca}, want: "Bearer " + secret},
		{name: "no token", cfg: Config{CAFile: ca}, want: ""},
		{name: "no CA: the test server's certificate is unknown", cfg: Config{Token: secret}, wantErr: "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseIdleConnections()
			got, err := get(t, c, srv.URL+"/v1/cluster")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), secret) {
					t.Fatalf("err = %v, want one about the %s, without the token", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("server saw Authorization %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(empty, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		err  error
	}{
		{"token with a newline", Config{Token: secret + "\r\nX-Evil: 1"}, ErrBadToken},
		{"token with a space", Config{Token: "two words-0123456789"}, ErrBadToken},
		{"token with non-ASCII", Config{Token: secret + "é"}, ErrBadToken},
		{"CA file without a certificate", Config{CAFile: empty}, ErrNoCert},
		{"missing CA file", Config{CAFile: filepath.Join(t.TempDir(), "none.pem")}, os.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if tc.cfg.Token != "" && strings.Contains(err.Error(), tc.cfg.Token[:8]) {
				t.Fatalf("err %q shows the token", err)
			}
		})
	}
}

// The token follows a redirect on the same node, never one to another
// host.
func TestRedirects(t *testing.T) {
	var leaked atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(r.Header.Get("Authorization") != "")
	}))
	defer other.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("/same", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/echo", http.StatusFound) })
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusFound)
	})
	mux.HandleFunc("/echo", echoAuth)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, err := New(Config{Token: secret})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	if got, err := get(t, c, srv.URL+"/same"); err != nil || got != "Bearer "+secret {
		t.Fatalf("same-host redirect: %q %v", got, err)
	}
	if _, err := get(t, c, srv.URL+"/away"); !errors.Is(err, ErrCrossHostRedirect) {
		t.Fatalf("cross-host redirect: %v", err)
	}
	if leaked.Load() {
		t.Fatal("the token went to another host")
	}
}

// The caller's request is not changed by the client.
func TestRequestUntouched(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(echoAuth))
	defer srv.Close()
	c, err := New(Config{Token: secret})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	req, err := http.NewRequest("GET", srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := req.Header.Get("Authorization"); h != "" {
		t.Fatalf("the caller's request now has Authorization %q", h)
	}
}
