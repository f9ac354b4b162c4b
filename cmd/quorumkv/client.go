package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/quorumkv/quorumkv/handoff"
	"github.com/quorumkv/quorumkv/internal/httpclient"
	"github.com/quorumkv/quorumkv/quorum"
)

// clientFlags are the flags of the commands that talk to a node over HTTP.
// clientGrace is how much longer than --timeout the CLI waits for a node's
// answer.
const clientGrace = 2 * time.Second

type clientFlags struct {
	node    string
	conn    connFlags
	context string
	r, w, n string
	timeout time.Duration
	json    bool
	sloppy  bool
	// httpc is the client of conn, built at the first request.
	httpc *http.Client
}

// connFlags say how to reach a node's API: its token and the CA that
// verifies an https:// node. The CLI and the benchmark share them.
type connFlags struct {
	token, caFile string
}

// Environment variables of the connection flags.
const (
	envToken  = "QUORUMKV_TOKEN"
	envCACert = "QUORUMKV_CACERT"
)

func (c *connFlags) register(fl *pflag.FlagSet) {
	// The token's default is not shown in --help: it is read from the
	// environment when the flag is not given.
	fl.StringVar(&c.token, "token", "", "bearer token for the node's API (env "+envToken+"); see the server's --token-file")
	fl.StringVar(&c.caFile, "cacert", envOr(envCACert, ""), "PEM file of the CA that verifies an https:// node (env "+envCACert+"; default: the system's roots)")
}

// bearer returns --token, else $QUORUMKV_TOKEN.
func (c *connFlags) bearer() string {
	if c.token != "" {
		return c.token
	}
	return os.Getenv(envToken)
}

// client returns an HTTP client that sends the token and trusts the CA.
func (c *connFlags) client() (*http.Client, error) {
	return httpclient.New(httpclient.Config{Token: c.bearer(), CAFile: c.caFile})
}

// registerAdmin registers the flags of commands that are not reads or
// writes of a key: the node and a client-side timeout.
func (f *clientFlags) registerAdmin(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.node, "node", envOr("QUORUMKV_NODE", "http://127.0.0.1:8081"), "node to talk to (env QUORUMKV_NODE)")
	f.conn.register(fl)
	fl.DurationVar(&f.timeout, "timeout", 0, "give up after this long (0: wait for the answer)")
}

func (f *clientFlags) register(cmd *cobra.Command, read bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.node, "node", envOr("QUORUMKV_NODE", "http://127.0.0.1:8081"), "node to talk to (env QUORUMKV_NODE)")
	f.conn.register(fl)
	fl.DurationVar(&f.timeout, "timeout", 0, "request timeout (server default when 0)")
	fl.StringVarP(&f.n, "n", "n", "", "replicas for this request (at most the bucket's n)")
	fl.BoolVar(&f.sloppy, "sloppy", true, "let fallbacks for down primaries count (sloppy quorum); --sloppy=false counts primaries only")
	if read {
		fl.StringVarP(&f.r, "r", "r", "", "replies to wait for: a number, one, quorum or all")
		fl.BoolVar(&f.json, "json", false, "print the JSON envelope with every sibling")
	} else {
		fl.StringVarP(&f.w, "w", "w", "", "acks to wait for: a number, one, quorum or all")
		fl.StringVar(&f.context, "context", "", "causal context (X-Context) from an earlier read")
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func (f *clientFlags) url(bucket, key string) string {
	q := url.Values{}
	for name, v := range map[string]string{"r": f.r, "w": f.w, "n": f.n} {
		if v != "" {
			q.Set(name, v)
		}
	}
	if f.timeout > 0 {
		q.Set("timeout", f.timeout.String())
	}
	if !f.sloppy {
		q.Set("sloppy", "false")
	}
	u := strings.TrimRight(f.node, "/") + "/v1/kv/" + url.PathEscape(bucket) + "/" + url.PathEscape(key)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

func (f *clientFlags) do(ctx context.Context, method, u string, body io.Reader, hdr map[string]string) (*http.Response, []byte, error) {
	if f.timeout > 0 {
		// A key request passes the timeout to the node, which answers
		// within it; the grace covers the network. An admin request has
		// no server-side timeout, so this is its limit.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.timeout+clientGrace)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range hdr {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	if f.httpc == nil {
		if f.httpc, err = f.conn.client(); err != nil {
			return nil, nil, err
		}
	}
	resp, err := f.httpc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// write sends a PUT or DELETE of args' bucket and key, expects 204, and
// reports the new context and the receipt.
func (f *clientFlags) write(cmd *cobra.Command, method string, args []string, body io.Reader, hdr map[string]string) error {
	resp, b, err := f.do(cmd.Context(), method, f.url(args[0], args[1]), body, hdr)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusNoContent {
		return httpError(resp, b)
	}
	report(cmd, resp)
	return nil
}

// admin calls a node endpoint that answers 200 with JSON. A non-nil in
// is sent as the JSON body of the request.
func (f *clientFlags) admin(ctx context.Context, method, path string, in any) ([]byte, error) {
	var req io.Reader
	var hdr map[string]string
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		req, hdr = bytes.NewReader(b), map[string]string{"Content-Type": "application/json"}
	}
	resp, body, err := f.do(ctx, method, strings.TrimRight(f.node, "/")+path, req, hdr)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, httpError(resp, body)
	}
	return body, nil
}

// report prints the context and receipt to stderr, so stdout holds only
// the value.
func report(cmd *cobra.Command, resp *http.Response) {
	w := cmd.ErrOrStderr()
	if c := resp.Header.Get("X-Context"); c != "" {
		fmt.Fprintf(w, "context: %s\n", c)
	}
	r := quorum.ParseReceipt(resp.Header)
	if len(r.Replicas) > 0 {
		fmt.Fprintf(w, "replicas: %s", strings.Join(r.Replicas, ","))
		if len(r.Fallbacks) > 0 {
			fmt.Fprintf(w, "  fallbacks: %v", r.Fallbacks)
		}
		if len(r.Hinted) > 0 {
			fmt.Fprintf(w, "  hinted: %s", strings.Join(r.Hinted, ","))
		}
		if r.Versions > 0 {
			fmt.Fprintf(w, "  versions: %d", r.Versions)
		}
		if len(r.Repaired) > 0 {
			fmt.Fprintf(w, "  repaired: %s", strings.Join(r.Repaired, ","))
		}
		fmt.Fprintln(w)
	}
}

func httpError(resp *http.Response, body []byte) error {
	var e struct{ Error, Code string }
	msg := fmt.Sprintf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	if json.Unmarshal(body, &e) == nil && e.Code != "" {
		msg = fmt.Sprintf("%s (%s, HTTP %d)", e.Error, e.Code, resp.StatusCode)
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("the node refused the token: %s; pass --token or set %s", msg, envToken)
	case http.StatusForbidden:
		return fmt.Errorf("the node refused the token: %s; this needs a token with a larger role", msg)
	}
	return errors.New(msg)
}

func newGetCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "get BUCKET KEY",
		Short: "Read a key; siblings are printed as a JSON envelope",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			hdr := map[string]string{}
			if f.json {
				hdr["Accept"] = "application/json"
			}
			resp, body, err := f.do(cmd.Context(), http.MethodGet, f.url(args[0], args[1]), nil, hdr)
			if err != nil {
				return err
			}
			report(cmd, resp)
			switch resp.StatusCode {
			case http.StatusOK, http.StatusMultipleChoices:
				if resp.StatusCode == http.StatusMultipleChoices {
					fmt.Fprintln(cmd.ErrOrStderr(), "siblings: resolve them by writing with the context above")
				}
				_, err = cmd.OutOrStdout().Write(body)
				return err
			}
			return httpError(resp, body)
		},
	}
	f.register(cmd, true)
	return cmd
}

func newPutCmd() *cobra.Command {
	var f clientFlags
	var contentType, file string
	cmd := &cobra.Command{
		Use:   "put BUCKET KEY [VALUE]",
		Short: "Write a key (the value comes from the argument, --file, or stdin)",
		Args:  cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			var body io.Reader
			switch {
			case len(args) == 3:
				body = strings.NewReader(args[2])
			case file != "":
				fh, err := os.Open(file)
				if err != nil {
					return err
				}
				defer fh.Close()
				body = fh
			default:
				body = cmd.InOrStdin()
			}
			return f.write(cmd, http.MethodPut, args, body, map[string]string{"Content-Type": contentType, "X-Context": f.context})
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringVar(&contentType, "content-type", "application/octet-stream", "content type stored with the value")
	cmd.Flags().StringVar(&file, "file", "", "read the value from this file")
	return cmd
}

func newDeleteCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "delete BUCKET KEY",
		Short: "Delete a key (writes a tombstone)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.write(cmd, http.MethodDelete, args, nil, map[string]string{"X-Context": f.context})
		},
	}
	f.register(cmd, false)
	return cmd
}

func newStatusCmd() *cobra.Command {
	var f clientFlags
	var raw bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster's members, their state and ring shares",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := f.admin(cmd.Context(), http.MethodGet, "/v1/cluster", nil)
			if err != nil {
				return err
			}
			if raw {
				_, err := cmd.OutOrStdout().Write(body)
				return err
			}
			var st struct {
				Node, Cluster string
				Partitions    int
				PhiThreshold  float64 `json:"phi_threshold"`
				Members       []struct {
					ID        string  `json:"id"`
					HTTPAddr  string  `json:"http_addr"`
					Gossip    string  `json:"gossip_status"`
					Reachable bool    `json:"reachable"`
					Phi       float64 `json:"phi"`
					Share     float64 `json:"ring_share"`
				}
				Hints map[string]handoff.HintOwnerStats
			}
			if err := json.Unmarshal(body, &st); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "cluster %s, seen from %s, %d partitions, phi threshold %.1f\n\n", st.Cluster, st.Node, st.Partitions, st.PhiThreshold)
			fmt.Fprintf(w, "%-12s %-22s %-8s %-10s %6s %7s\n", "ID", "HTTP", "GOSSIP", "REACHABLE", "PHI", "SHARE")
			for _, m := range st.Members {
				fmt.Fprintf(w, "%-12s %-22s %-8s %-10v %6.2f %6.1f%%\n", m.ID, m.HTTPAddr, m.Gossip, m.Reachable, m.Phi, 100*m.Share)
			}
			for owner, h := range st.Hints {
				fmt.Fprintf(w, "\nhints for %s: %d (%d bytes), %d overflowed", owner, h.PendingHints, h.PendingBytes, h.Overflowed)
			}
			fmt.Fprintln(w)
			return nil
		},
	}
	f.registerAdmin(cmd)
	cmd.Flags().BoolVar(&raw, "raw", false, "print the raw JSON of GET /v1/cluster")
	return cmd
}

func newAntiEntropyCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "antientropy",
		Short: "Run a Merkle anti-entropy round on a node now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := f.admin(cmd.Context(), http.MethodPost, "/v1/antientropy/run", nil)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(body)
			return err
		},
	}
	f.registerAdmin(cmd)
	return cmd
}
