package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quorumkv/quorumkv/node"
)

// dev's cluster is secure by default: HTTPS with the secrets it made,
// a token needed, and the banner prints the admin token and the CA. A
// second start reuses the secrets.
func TestDevClusterIsSecure(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	dir := t.TempDir()
	cfg := node.DefaultConfig()
	cfg.FastGossip = true
	sdir, admin, err := devSecrets(&cfg, dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	c, err := startDevCluster(cfg, 2, dir, 0, zerolog.Nop(), sdir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var banner bytes.Buffer
	printDevBanner(&banner, c.HTTPAddrs(), dir, sdir, admin)
	ca := filepath.Join(sdir, certsCAFile)
	for _, want := range []string{"admin token: " + admin, "--cacert " + ca, "https://" + c.HTTPAddrs()[0]} {
		if !strings.Contains(banner.String(), want) {
			t.Fatalf("the banner lacks %q:\n%s", want, banner.String())
		}
	}
	base := "https://" + c.HTTPAddrs()[1]
	if code, body := secureDo(t, sdir, "", "GET", base+"/v1/cluster", ""); code != 401 {
		t.Fatalf("GET /v1/cluster without a token: %d %s", code, body)
	}
	waitUntil(t, 30*time.Second, "a write through the dev cluster", func() error {
		if code, body := secureDo(t, sdir, admin, "PUT", base+"/v1/kv/demo/greeting", "hello"); code != 204 {
			return fmt.Errorf("PUT: %d %s", code, body)
		}
		return nil
	})
	if code, body := secureDo(t, sdir, admin, "GET", "https://"+c.HTTPAddrs()[0]+"/v1/kv/demo/greeting", ""); code != 200 || body != "hello" {
		t.Fatalf("GET: %d %q", code, body)
	}
	again := node.DefaultConfig()
	if _, admin2, err := devSecrets(&again, dir, 2); err != nil || admin2 != admin {
		t.Fatalf("a second dev start made other secrets: %v (same admin token: %v)", err, admin2 == admin)
	}
}
